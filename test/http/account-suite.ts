import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { GatepassApp } from '../../src/http/app.js';
import { type Backend, createTestApp, type TestApp } from '../helpers/app.js';
import {
  assertError,
  claimsOf,
  get,
  ISO_UTC,
  login,
  loginAs,
  post,
  refresh,
  refreshed,
  register,
  send,
  signUp,
  type SignedUpUser,
  type Tokens,
} from '../helpers/client.js';
import { assertNotAuthenticated, assertRevoked, assertTokenRejected, assertValidation, assertWorks } from '../helpers/responses.js';
import { idsOf, listSessions, sidOf } from '../helpers/sessions.js';

/**
 * The signed-in user's account lifecycle (API.md, /auth/password/change and /users/me): password
 * change, data export and account deletion. Real HTTP handling over `app.inject`, a real database.
 */

const EXPORT_KEYS = ['audit_events', 'exported_at', 'external_identities', 'passkeys', 'sessions', 'tasks', 'two_factor', 'user'];
const EXPORTED_SESSION_KEYS = ['created_at', 'id', 'ip', 'last_used_at', 'revoked_at', 'revoked_reason', 'user_agent'];

const INVALID_REFRESH = 'Invalid refresh token';
const INCORRECT_LOGIN = 'Incorrect email or password';

interface ExportedSession {
  id: string;
  created_at: string;
  last_used_at: string;
  user_agent: string | null;
  ip: string | null;
  revoked_at: string | null;
  revoked_reason: string | null;
}

interface ExportBody {
  exported_at: string;
  user: Record<string, unknown>;
  sessions: ExportedSession[];
  tasks: Record<string, unknown>[];
}

async function createTask(app: GatepassApp, accessToken: string, title: string): Promise<Record<string, unknown>> {
  const response = await post(app, '/tasks', { title, description: `about ${title}` }, accessToken);
  assert.equal(response.statusCode, 201, response.body);
  return response.json<Record<string, unknown>>();
}

export function defineAccountSuite(backend: Backend): void {
  describe(`POST /auth/password/change (${backend})`, () => {
    let t: TestApp;
    let user: SignedUpUser;
    let other: Tokens;
    const newPassword = 'Fresh-Correct-Staple-9!';
    before(async () => {
      t = await createTestApp(backend);
      user = await signUp(t.app);
      other = await loginAs(t.app, user, 'the-other-device');
    });
    after(() => t.close());

    const change = (body: unknown, token = user.tokens.access_token) => post(t.app, '/auth/password/change', body, token);

    it('a wrong current password answers 401 Current password is incorrect, and nothing changes', async () => {
      const response = await change({ current_password: `${user.password}x`, new_password: newPassword });
      assertError(response, 401, 'Current password is incorrect', 'invalid_credentials');
      await assertWorks(t.app, other.access_token, 'the other session after a failed change');
      await assertWorks(t.app, user.tokens.access_token, 'the caller after a failed change');
    });

    it('a new password of 7 characters answers 422 at ["body","new_password"]', async () => {
      assertValidation(await change({ current_password: user.password, new_password: 'Zq7!vR2' }), {
        loc: ['body', 'new_password'],
        type: 'string_too_short',
      });
    });

    it('a very common new password (password123) answers 422 at ["body","new_password"]', async () => {
      assertValidation(await change({ current_password: user.password, new_password: 'password123' }), { loc: ['body', 'new_password'] });
      await assertWorks(t.app, other.access_token, 'the other session after a refused change');
    });

    it('answers 401 without a token', async () => {
      assertNotAuthenticated(await post(t.app, '/auth/password/change', { current_password: user.password, new_password: newPassword }));
    });

    it('success: 204; this session keeps working, every other one is revoked; only the new password logs in', async () => {
      const response = await change({ current_password: user.password, new_password: newPassword });
      assert.equal(response.statusCode, 204, response.body);
      assert.equal(response.body, '');

      await assertWorks(t.app, user.tokens.access_token, 'the caller after the change');
      assertRevoked(await get(t.app, '/users/me', other.access_token));
      assertRevoked(await get(t.app, '/tasks', other.access_token));
      assertTokenRejected(await refresh(t.app, other.refresh_token), INVALID_REFRESH, 'invalid_token');
      assert.deepEqual(idsOf(await listSessions(t.app, user.tokens.access_token)), [sidOf(user.tokens.access_token)]);
      const pair = await refreshed(t.app, user.tokens.refresh_token);
      await assertWorks(t.app, pair.access_token, "the caller's refreshed session");

      assertError(
        await post(t.app, '/auth/login', { email: user.email, password: user.password }),
        401,
        INCORRECT_LOGIN,
        'invalid_credentials',
      );
      const fresh = await login(t.app, { email: user.email, password: newPassword });
      await assertWorks(t.app, fresh.access_token, 'a login with the new password');
    });
  });

  describe(`GET /users/me/export (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    it('answers the user, every session (ended ones included) and the tasks, without any hash or token', async () => {
      const user = await register(t.app);
      const agent = 'export-test-agent/2.0';
      const current = await loginAs(t.app, user, agent);
      const ended = await login(t.app, user);
      const endedRotated = await refreshed(t.app, ended.refresh_token);
      assert.equal((await post(t.app, '/auth/logout', undefined, endedRotated.access_token)).statusCode, 204);
      const tasks = [await createTask(t.app, current.access_token, 'first'), await createTask(t.app, current.access_token, 'second')];
      const bob = await signUp(t.app);
      await createTask(t.app, bob.tokens.access_token, "bob's");
      const me = await get(t.app, '/users/me', current.access_token);
      assert.equal(me.statusCode, 200, me.body);

      const response = await get(t.app, '/users/me/export', current.access_token);
      assert.equal(response.statusCode, 200, response.body);
      const body = response.json<ExportBody>();
      assert.deepEqual(Object.keys(body).sort(), EXPORT_KEYS);
      assert.match(body.exported_at, ISO_UTC);
      assert.deepEqual(body.user, me.json());
      assert.deepEqual(body.tasks, tasks);

      assert.deepEqual(idsOf(body.sessions), [sidOf(current.access_token), sidOf(ended.access_token)].sort());
      for (const session of body.sessions) {
        assert.deepEqual(Object.keys(session).sort(), EXPORTED_SESSION_KEYS);
        assert.match(session.created_at, ISO_UTC);
        assert.match(session.last_used_at, ISO_UTC);
        assert.equal(session.ip, '127.0.0.1');
      }
      const live = body.sessions.find((s) => s.id === sidOf(current.access_token));
      const gone = body.sessions.find((s) => s.id === sidOf(ended.access_token));
      assert.ok(live !== undefined && gone !== undefined);
      assert.equal(live.user_agent, agent);
      assert.equal(live.revoked_at, null);
      assert.equal(live.revoked_reason, null);
      assert.ok(gone.revoked_at !== null, JSON.stringify(gone));
      assert.match(gone.revoked_at, ISO_UTC);
      assert.equal(gone.revoked_reason, 'logout');

      // Nothing secret in the raw body: no hash, no password, no token of any session.
      assert.ok(!response.body.includes('$argon2'), response.body);
      assert.ok(!response.body.includes(user.password), response.body);
      for (const token of [
        current.access_token,
        current.refresh_token,
        ended.access_token,
        ended.refresh_token,
        endedRotated.refresh_token,
      ]) {
        assert.ok(!response.body.includes(token), 'a token appears in the export');
      }
      assert.ok(!response.body.includes('eyJ'), response.body);
      assert.doesNotMatch(response.body, /password|hash|secret/i);
    });

    it('answers 401 without a token', async () => {
      assertNotAuthenticated(await get(t.app, '/users/me/export'));
    });
  });

  describe(`DELETE /users/me (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    const deleteMe = (body: unknown, token: string) => send(t.app, 'DELETE', '/users/me', body, token);

    it('a wrong password answers 401 Password is incorrect, and nothing is deleted', async () => {
      const user = await signUp(t.app);
      const task = await createTask(t.app, user.tokens.access_token, 'kept');
      assertError(
        await deleteMe({ password: `${user.password}x` }, user.tokens.access_token),
        401,
        'Password is incorrect',
        'invalid_credentials',
      );
      await assertWorks(t.app, user.tokens.access_token, 'the account after a refused deletion');
      const list = await get(t.app, '/tasks', user.tokens.access_token);
      assert.deepEqual(list.json(), [task]);
      await refreshed(t.app, user.tokens.refresh_token);
      await login(t.app, user);
    });

    it('a missing body or password answers 422', async () => {
      const user = await signUp(t.app);
      const bare = await t.app.inject({
        method: 'DELETE',
        url: '/users/me',
        headers: { authorization: `Bearer ${user.tokens.access_token}` },
      });
      assertValidation(bare, { loc: ['body'] });
      assertValidation(await deleteMe({}, user.tokens.access_token), { loc: ['body', 'password'], type: 'missing' });
      await assertWorks(t.app, user.tokens.access_token, 'the account after a 422');
    });

    it('success: 204; every token is refused (also on /tasks), login fails, the email can register again with nothing left', async () => {
      const bob = await signUp(t.app);
      const bobTask = await createTask(t.app, bob.tokens.access_token, "bob's");
      // Registered last, so that an id reused by the database would show.
      const user = await signUp(t.app);
      const other = await login(t.app, user);
      await createTask(t.app, user.tokens.access_token, 'to be erased');

      const response = await deleteMe({ password: user.password }, user.tokens.access_token);
      assert.equal(response.statusCode, 204, response.body);
      assert.equal(response.body, '');

      for (const tokens of [user.tokens, other]) {
        assertRevoked(await get(t.app, '/users/me', tokens.access_token));
        assertRevoked(await get(t.app, '/tasks', tokens.access_token));
        assertRevoked(await post(t.app, '/tasks', { title: 'ghost' }, tokens.access_token));
        assertTokenRejected(await refresh(t.app, tokens.refresh_token), INVALID_REFRESH, 'invalid_token');
      }
      assertError(
        await post(t.app, '/auth/login', { email: user.email, password: user.password }),
        401,
        INCORRECT_LOGIN,
        'invalid_credentials',
      );

      const again = await post(t.app, '/auth/register', { email: user.email, password: user.password });
      assert.equal(again.statusCode, 201, again.body);
      const newId = again.json<{ id: number }>().id;
      assert.notEqual(newId, user.id);
      const fresh = await login(t.app, user);
      assert.equal(claimsOf(fresh.access_token).sub, String(newId));
      const tasks = await get(t.app, '/tasks', fresh.access_token);
      assert.equal(tasks.statusCode, 200, tasks.body);
      assert.deepEqual(tasks.json(), []);
      assert.equal(tasks.headers['x-total-count'], '0');
      const exported = await get(t.app, '/users/me/export', fresh.access_token);
      assert.deepEqual(idsOf(exported.json<ExportBody>().sessions), [sidOf(fresh.access_token)]);
      // The old tokens stay refused for the new account too.
      assertRevoked(await get(t.app, '/tasks', user.tokens.access_token));

      // Another user is untouched.
      assert.deepEqual((await get(t.app, '/tasks', bob.tokens.access_token)).json(), [bobTask]);
    });

    it('answers 401 without a token', async () => {
      assertNotAuthenticated(await send(t.app, 'DELETE', '/users/me', { password: 'whatever-it-is' }));
    });
  });
}
