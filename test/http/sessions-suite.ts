import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { loadSettings } from '../../src/config/settings.js';
import { buildApp, type GatepassApp } from '../../src/http/app.js';
import { createTestApp, type Backend, type TestApp } from '../helpers/app.js';
import { assertError, claimsOf, get, login, post, register, send, signUp, type Tokens } from '../helpers/client.js';

/**
 * The signed-in user's own session management and account lifecycle (API.md, /auth and /users):
 * the session list, ending one session, logout-all and its per-user `iat` cutoff, password change,
 * data export, account deletion, and revocations outliving a restart. Real HTTP handling over
 * `app.inject`, a real database.
 */

const SESSION_KEYS = ['created_at', 'current', 'id', 'ip', 'last_used_at', 'user_agent'];
const EXPORT_KEYS = ['audit_events', 'exported_at', 'sessions', 'tasks', 'user'];
const EXPORTED_SESSION_KEYS = ['created_at', 'id', 'ip', 'last_used_at', 'revoked_at', 'revoked_reason', 'user_agent'];
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

const REVOKED = 'Token has been revoked';
const INVALID_REFRESH = 'Invalid refresh token';
const INCORRECT_LOGIN = 'Incorrect email or password';
/** light-my-request's User-Agent when a request sets none. */
const INJECT_USER_AGENT = 'lightMyRequest';
/** Access-token lifetime plus verification leeway, the defaults (API.md: 15 min, 30 s). */
const ACCESS_HONOURED_SECONDS = 900 + 30;

interface SessionBody {
  id: string;
  created_at: string;
  last_used_at: string;
  user_agent: string | null;
  ip: string | null;
  current: boolean;
}

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

interface ValidationItem {
  loc: (string | number)[];
  msg: string;
  type: string;
}

type Credentials = { email: string; password: string };

/** Logs in with an explicit User-Agent, as a browser or app would send it. */
async function loginAs(app: GatepassApp, credentials: Credentials, userAgent: string): Promise<Tokens> {
  const response = await app.inject({
    method: 'POST',
    url: '/auth/login',
    payload: { email: credentials.email, password: credentials.password },
    headers: { 'user-agent': userAgent },
  });
  assert.equal(response.statusCode, 200, response.body);
  return response.json<Tokens>();
}

function sidOf(token: string): string {
  const sid = claimsOf(token).sid;
  assert.equal(typeof sid, 'string', `token without a sid: ${JSON.stringify(claimsOf(token))}`);
  return sid as string;
}

function iatOf(token: string): number {
  const iat = claimsOf(token).iat;
  assert.equal(typeof iat, 'number');
  return iat as number;
}

/** A presented token refused: API.md's body and `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1). */
function assertTokenRejected(response: LightMyRequestResponse, detail: string, code: string): void {
  assertError(response, 401, detail, code);
  assert.equal(response.headers['www-authenticate'], 'Bearer error="invalid_token"');
}

function assertRevoked(response: LightMyRequestResponse): void {
  assertTokenRejected(response, REVOKED, 'token_revoked');
}

/** No token presented: plain `WWW-Authenticate: Bearer`. */
function assertNotAuthenticated(response: LightMyRequestResponse): void {
  assertError(response, 401, 'Not authenticated', 'not_authenticated');
  assert.equal(response.headers['www-authenticate'], 'Bearer');
}

/** FastAPI's 422, with one item at `loc` (of `type`, when given) and every item inside `loc`. */
function assertValidation(response: LightMyRequestResponse, loc: (string | number)[], type?: string): void {
  assert.equal(response.statusCode, 422, response.body);
  const body = response.json<{ detail: ValidationItem[]; code: string }>();
  assert.deepEqual(Object.keys(body).sort(), ['code', 'detail'], response.body);
  assert.equal(body.code, 'validation_error');
  assert.ok(Array.isArray(body.detail) && body.detail.length > 0, response.body);
  for (const item of body.detail) {
    assert.deepEqual(Object.keys(item).sort(), ['loc', 'msg', 'type'], response.body);
    assert.deepEqual(item.loc.slice(0, loc.length), loc, response.body);
  }
  const match = body.detail.find((item) => JSON.stringify(item.loc) === JSON.stringify(loc));
  assert.ok(match !== undefined, `no item at ${JSON.stringify(loc)}: ${response.body}`);
  if (type !== undefined) assert.equal(match.type, type, response.body);
}

async function listSessions(app: GatepassApp, accessToken: string): Promise<SessionBody[]> {
  const response = await get(app, '/auth/sessions', accessToken);
  assert.equal(response.statusCode, 200, response.body);
  const body = response.json<SessionBody[]>();
  assert.ok(Array.isArray(body), response.body);
  return body;
}

function idsOf(sessions: { id: string }[]): string[] {
  return sessions.map((s) => s.id).sort();
}

function refresh(app: GatepassApp, refreshToken: string): Promise<LightMyRequestResponse> {
  return post(app, '/auth/refresh', { refresh_token: refreshToken });
}

async function refreshed(app: GatepassApp, refreshToken: string): Promise<Tokens> {
  const response = await refresh(app, refreshToken);
  assert.equal(response.statusCode, 200, response.body);
  return response.json<Tokens>();
}

function endSession(app: GatepassApp, id: string, accessToken: string): Promise<LightMyRequestResponse> {
  return send(app, 'DELETE', `/auth/sessions/${encodeURIComponent(id)}`, undefined, accessToken);
}

function logoutAll(app: GatepassApp, accessToken: string): Promise<LightMyRequestResponse> {
  return post(app, '/auth/logout-all', undefined, accessToken);
}

async function assertWorks(app: GatepassApp, accessToken: string, what: string): Promise<void> {
  const response = await get(app, '/users/me', accessToken);
  assert.equal(response.statusCode, 200, `${what}: ${response.statusCode} ${response.body}`);
}

async function createTask(app: GatepassApp, accessToken: string, title: string): Promise<Record<string, unknown>> {
  const response = await post(app, '/tasks', { title, description: `about ${title}` }, accessToken);
  assert.equal(response.statusCode, 201, response.body);
  return response.json<Record<string, unknown>>();
}

export function defineSessionsSuite(backend: Backend): void {
  describe(`GET /auth/sessions (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    it('lists both sessions of two logins with exactly the documented keys, current only for the caller', async () => {
      const user = await register(t.app);
      const agent = 'Mozilla/5.0 (X11; Linux x86_64) gatepass-sessions-test/1.0';
      const browser = await loginAs(t.app, user, agent);
      const plain = await login(t.app, user);

      const fromBrowser = await listSessions(t.app, browser.access_token);
      assert.equal(fromBrowser.length, 2, JSON.stringify(fromBrowser));
      for (const session of fromBrowser) {
        assert.deepEqual(Object.keys(session).sort(), SESSION_KEYS);
        assert.match(session.created_at, ISO_UTC);
        assert.match(session.last_used_at, ISO_UTC);
        assert.ok(Date.parse(session.last_used_at) >= Date.parse(session.created_at), JSON.stringify(session));
        assert.equal(session.ip, '127.0.0.1');
      }
      assert.deepEqual(idsOf(fromBrowser), [sidOf(browser.access_token), sidOf(plain.access_token)].sort());
      const browserSession = fromBrowser.find((s) => s.id === sidOf(browser.access_token));
      const plainSession = fromBrowser.find((s) => s.id === sidOf(plain.access_token));
      assert.ok(browserSession !== undefined && plainSession !== undefined);
      assert.equal(browserSession.current, true);
      assert.equal(plainSession.current, false);
      assert.equal(browserSession.user_agent, agent);
      assert.equal(plainSession.user_agent, INJECT_USER_AGENT);

      // Asked with the other token, the same two sessions, and `current` moves with the caller.
      const fromPlain = await listSessions(t.app, plain.access_token);
      assert.deepEqual(idsOf(fromPlain), idsOf(fromBrowser));
      for (const session of fromPlain) assert.equal(session.current, session.id === sidOf(plain.access_token), JSON.stringify(session));
      assert.equal(fromPlain.filter((s) => s.current).length, 1);
    });

    it('the session id is the sid of both tokens of the session, and stays the same across a refresh', async () => {
      const user = await signUp(t.app);
      assert.equal(sidOf(user.tokens.refresh_token), sidOf(user.tokens.access_token));
      const pair = await refreshed(t.app, user.tokens.refresh_token);
      const sessions = await listSessions(t.app, pair.access_token);
      assert.deepEqual(idsOf(sessions), [sidOf(user.tokens.access_token)]);
      assert.equal(sessions[0]?.current, true);
    });

    it('a logged-out session disappears from the list', async () => {
      const user = await signUp(t.app);
      const other = await login(t.app, user);
      assert.equal((await listSessions(t.app, user.tokens.access_token)).length, 2);
      const logout = await post(t.app, '/auth/logout', undefined, other.access_token);
      assert.equal(logout.statusCode, 204, logout.body);
      assert.deepEqual(idsOf(await listSessions(t.app, user.tokens.access_token)), [sidOf(user.tokens.access_token)]);
    });

    it("another user's sessions never appear", async () => {
      const alice = await signUp(t.app);
      const bob = await signUp(t.app);
      const bobAgain = await loginAs(t.app, bob, 'bob-phone');
      assert.deepEqual(idsOf(await listSessions(t.app, alice.tokens.access_token)), [sidOf(alice.tokens.access_token)]);
      assert.deepEqual(idsOf(await listSessions(t.app, bob.tokens.access_token)), [sidOf(bob.tokens.access_token), sidOf(bobAgain.access_token)].sort());
    });

    it('answers 401 Not authenticated without a token, and token_revoked with a logged-out one', async () => {
      assertNotAuthenticated(await get(t.app, '/auth/sessions'));
      const user = await signUp(t.app);
      assert.equal((await post(t.app, '/auth/logout', undefined, user.tokens.access_token)).statusCode, 204);
      assertRevoked(await get(t.app, '/auth/sessions', user.tokens.access_token));
    });
  });

  describe(`DELETE /auth/sessions/{id} (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    it("ending your other session: 204, then its access token is revoked and its refresh token refused; the current one keeps working", async () => {
      const user = await signUp(t.app);
      const laptop = await loginAs(t.app, user, 'laptop');
      const response = await endSession(t.app, sidOf(laptop.access_token), user.tokens.access_token);
      assert.equal(response.statusCode, 204, response.body);
      assert.equal(response.body, '');

      assertRevoked(await get(t.app, '/users/me', laptop.access_token));
      assertRevoked(await get(t.app, '/tasks', laptop.access_token));
      assertTokenRejected(await refresh(t.app, laptop.refresh_token), INVALID_REFRESH, 'invalid_token');

      await assertWorks(t.app, user.tokens.access_token, 'the current session after ending another');
      assert.deepEqual(idsOf(await listSessions(t.app, user.tokens.access_token)), [sidOf(user.tokens.access_token)]);
      const pair = await refreshed(t.app, user.tokens.refresh_token);
      await assertWorks(t.app, pair.access_token, 'the current session after a refresh');
    });

    it("ending a rotated session also refuses the access tokens issued before the rotation", async () => {
      const user = await signUp(t.app);
      const phone = await login(t.app, user);
      const rotated = await refreshed(t.app, phone.refresh_token);
      assert.equal((await endSession(t.app, sidOf(phone.access_token), user.tokens.access_token)).statusCode, 204);
      assertRevoked(await get(t.app, '/users/me', phone.access_token));
      assertRevoked(await get(t.app, '/users/me', rotated.access_token));
      assertTokenRejected(await refresh(t.app, rotated.refresh_token), INVALID_REFRESH, 'invalid_token');
    });

    it("another user's session id answers 404 Session not found, and that session keeps working", async () => {
      const alice = await signUp(t.app);
      const bob = await signUp(t.app);
      const response = await endSession(t.app, sidOf(bob.tokens.access_token), alice.tokens.access_token);
      assertError(response, 404, 'Session not found', 'not_found');
      await assertWorks(t.app, bob.tokens.access_token, "bob's session after alice tried to end it");
      assert.deepEqual(idsOf(await listSessions(t.app, bob.tokens.access_token)), [sidOf(bob.tokens.access_token)]);
      const pair = await refreshed(t.app, bob.tokens.refresh_token);
      await assertWorks(t.app, pair.access_token, "bob's refreshed session");
    });

    it('an unknown id answers 404 Session not found', async () => {
      const user = await signUp(t.app);
      assertError(await endSession(t.app, '00000000-0000-4000-8000-000000000000', user.tokens.access_token), 404, 'Session not found', 'not_found');
      assertError(await endSession(t.app, 'no-such-session', user.tokens.access_token), 404, 'Session not found', 'not_found');
      await assertWorks(t.app, user.tokens.access_token, 'the caller after a 404');
    });

    it('ending the current session: 204, and the token used is refused afterwards', async () => {
      const user = await signUp(t.app);
      const other = await login(t.app, user);
      const response = await endSession(t.app, sidOf(user.tokens.access_token), user.tokens.access_token);
      assert.equal(response.statusCode, 204, response.body);
      assertRevoked(await get(t.app, '/users/me', user.tokens.access_token));
      assertRevoked(await get(t.app, '/auth/sessions', user.tokens.access_token));
      assertTokenRejected(await refresh(t.app, user.tokens.refresh_token), INVALID_REFRESH, 'invalid_token');
      await assertWorks(t.app, other.access_token, 'the other session');
    });

    it('answers 401 without a token', async () => {
      assertNotAuthenticated(await send(t.app, 'DELETE', '/auth/sessions/whatever'));
    });
  });

  describe(`POST /auth/logout-all (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    it('204; every access and refresh token of the user issued before is refused; another user is unaffected', async () => {
      const user = await signUp(t.app);
      const second = await loginAs(t.app, user, 'tablet');
      const third = await login(t.app, user);
      const rotated = await refreshed(t.app, third.refresh_token);
      const bob = await signUp(t.app);

      const response = await logoutAll(t.app, second.access_token);
      assert.equal(response.statusCode, 204, response.body);
      assert.equal(response.body, '');

      for (const [name, token] of [
        ['first', user.tokens.access_token],
        ['second (the caller)', second.access_token],
        ['third, before rotation', third.access_token],
        ['third, after rotation', rotated.access_token],
      ] as const) {
        const me = await get(t.app, '/users/me', token);
        assert.equal(me.statusCode, 401, `${name}: ${me.body}`);
        assertRevoked(me);
        assertRevoked(await get(t.app, '/tasks', token));
      }
      for (const token of [user.tokens.refresh_token, second.refresh_token, rotated.refresh_token]) {
        assertTokenRejected(await refresh(t.app, token), INVALID_REFRESH, 'invalid_token');
      }
      // The already-rotated one is a replay on top of that; refused in any case.
      assert.equal((await refresh(t.app, third.refresh_token)).statusCode, 401);

      await assertWorks(t.app, bob.tokens.access_token, 'another user');
      await refreshed(t.app, bob.tokens.refresh_token);

      // Only a new login shows up afterwards.
      const fresh = await login(t.app, user);
      assert.deepEqual(idsOf(await listSessions(t.app, fresh.access_token)), [sidOf(fresh.access_token)]);
    });

    it('a login right after logout-all (same second) is accepted, five times in a row', async () => {
      const user = await signUp(t.app);
      let tokens = user.tokens;
      for (let round = 1; round <= 5; round += 1) {
        const previous = tokens;
        assert.equal((await logoutAll(t.app, previous.access_token)).statusCode, 204, `round ${round}`);
        tokens = await login(t.app, user);
        const me = await get(t.app, '/users/me', tokens.access_token);
        assert.equal(
          me.statusCode,
          200,
          `round ${round}: a login right after logout-all was refused (iat ${iatOf(tokens.access_token)}, now ${Date.now() / 1000}): ${me.body}`,
        );
        assert.equal((await get(t.app, '/tasks', tokens.access_token)).statusCode, 200, `round ${round}`);
        assertRevoked(await get(t.app, '/users/me', previous.access_token));
      }
    });

    it('a refresh right after logout-all, with a refresh token obtained after it, works', async () => {
      const user = await signUp(t.app);
      for (let round = 1; round <= 3; round += 1) {
        const current = await login(t.app, user);
        assert.equal((await logoutAll(t.app, current.access_token)).statusCode, 204);
        const later = await login(t.app, user);
        const pair = await refreshed(t.app, later.refresh_token);
        await assertWorks(t.app, pair.access_token, `round ${round}: the access token of a refresh right after logout-all`);
        assertRevoked(await get(t.app, '/users/me', current.access_token));
      }
    });

    it('answers 401 without a token', async () => {
      assertNotAuthenticated(await post(t.app, '/auth/logout-all'));
    });
  });

  describe(`logout-all cutoffs under a controlled clock (${backend})`, () => {
    let t: TestApp;
    // A whole second; each test starts further on, so the clock never goes back.
    const base = Math.ceil(Date.now() / 1000) * 1000;
    let clock = base;
    before(async () => {
      t = await createTestApp(backend, {}, { now: () => clock });
    });
    after(() => t.close());

    it('a token issued in the very instant of a logout-all on a whole second is refused too', async () => {
      clock = base;
      const user = await signUp(t.app);
      const other = await login(t.app, user);
      assert.equal((await logoutAll(t.app, user.tokens.access_token)).statusCode, 204);
      // "every access token of the user issued before now is rejected": both were issued before the request.
      for (const [name, token] of [
        ['the caller', user.tokens.access_token],
        ['another session', other.access_token],
      ] as const) {
        const me = await get(t.app, '/users/me', token);
        assert.equal(me.statusCode, 401, `${name}'s token (iat ${iatOf(token)}), issued before a logout-all at ${clock / 1000}, was accepted: ${me.body}`);
        assertRevoked(me);
      }
    });

    it('thirty-two logout-all and login cycles within one second: every fresh login is still accepted', async () => {
      clock = base + 10_500;
      const user = await signUp(t.app);
      let tokens = user.tokens;
      for (let round = 1; round <= 32; round += 1) {
        assert.equal((await logoutAll(t.app, tokens.access_token)).statusCode, 204, `round ${round}`);
        tokens = await login(t.app, user);
        const me = await get(t.app, '/users/me', tokens.access_token);
        assert.equal(
          me.statusCode,
          200,
          `round ${round}: a fresh login after logout-all was refused; its iat is ${iatOf(tokens.access_token) - clock / 1000} s ahead of the clock: ${me.body}`,
        );
      }
    });

    it('a logged-out access token stays refused until it expires, also when its iat was lifted past a cutoff', async () => {
      clock = base + 100_500;
      const user = await signUp(t.app);
      let tokens = user.tokens;
      for (let round = 1; round <= 5; round += 1) {
        assert.equal((await logoutAll(t.app, tokens.access_token)).statusCode, 204);
        tokens = await login(t.app, user);
      }
      await assertWorks(t.app, tokens.access_token, 'the last login');
      assert.equal((await post(t.app, '/auth/logout', undefined, tokens.access_token)).statusCode, 204);
      assertRevoked(await get(t.app, '/users/me', tokens.access_token));
      // One second before the token stops being honoured (exp plus leeway) it must still be refused.
      clock = (iatOf(tokens.access_token) + ACCESS_HONOURED_SECONDS - 1) * 1000;
      const late = await get(t.app, '/users/me', tokens.access_token);
      assert.equal(late.statusCode, 401, `a logged-out access token was accepted again before its expiry: ${late.statusCode} ${late.body}`);
      assertRevoked(late);
    });
  });

  describe(`POST /auth/password/change (${backend})`, () => {
    let t: TestApp;
    let user: { email: string; password: string; id: number; tokens: Tokens };
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
      assertValidation(await change({ current_password: user.password, new_password: 'Zq7!vR2' }), ['body', 'new_password'], 'string_too_short');
    });

    it('a very common new password (password123) answers 422 at ["body","new_password"]', async () => {
      assertValidation(await change({ current_password: user.password, new_password: 'password123' }), ['body', 'new_password']);
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

      assertError(await post(t.app, '/auth/login', { email: user.email, password: user.password }), 401, INCORRECT_LOGIN, 'invalid_credentials');
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
      for (const token of [current.access_token, current.refresh_token, ended.access_token, ended.refresh_token, endedRotated.refresh_token]) {
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
      assertError(await deleteMe({ password: `${user.password}x` }, user.tokens.access_token), 401, 'Password is incorrect', 'invalid_credentials');
      await assertWorks(t.app, user.tokens.access_token, 'the account after a refused deletion');
      const list = await get(t.app, '/tasks', user.tokens.access_token);
      assert.deepEqual(list.json(), [task]);
      await refreshed(t.app, user.tokens.refresh_token);
      await login(t.app, user);
    });

    it('a missing body or password answers 422', async () => {
      const user = await signUp(t.app);
      const bare = await t.app.inject({ method: 'DELETE', url: '/users/me', headers: { authorization: `Bearer ${user.tokens.access_token}` } });
      assertValidation(bare, ['body']);
      assertValidation(await deleteMe({}, user.tokens.access_token), ['body', 'password'], 'missing');
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
      assertError(await post(t.app, '/auth/login', { email: user.email, password: user.password }), 401, INCORRECT_LOGIN, 'invalid_credentials');

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

  describe(`revocations survive a restart (${backend})`, () => {
    let t: TestApp;
    let restarted: GatepassApp | undefined;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(async () => {
      await restarted?.close();
      await t.close();
    });

    it('a second app on the same database refuses what the first revoked and accepts the rest', async () => {
      const alice = await signUp(t.app);
      const aliceOther = await login(t.app, alice);
      assert.equal((await post(t.app, '/auth/logout', undefined, alice.tokens.access_token)).statusCode, 204);
      const carol = await signUp(t.app);
      assert.equal((await logoutAll(t.app, carol.tokens.access_token)).statusCode, 204);
      const dave = await signUp(t.app);
      const daveOther = await login(t.app, dave);
      assert.equal((await endSession(t.app, sidOf(daveOther.access_token), dave.tokens.access_token)).statusCode, 204);
      const erin = await signUp(t.app);
      assert.equal((await send(t.app, 'DELETE', '/users/me', { password: erin.password }, erin.tokens.access_token)).statusCode, 204);

      const settings = loadSettings(
        {
          NODE_ENV: 'test',
          JWT_SECRET: t.settings.jwt.accessSecret,
          JWT_REFRESH_SECRET: t.settings.jwt.refreshSecret,
          DATABASE_URL: t.databaseUrl,
          // As createTestApp: no per-IP login limit or lockout in the way of the test's logins.
          LOGIN_RATE_LIMIT_PER_MINUTE: '0',
          ACCOUNT_LOCKOUT_THRESHOLD: '0',
        },
        { cwd: t.cwd },
      );
      restarted = await buildApp(settings, { cwd: t.cwd });
      const app = restarted;

      assertRevoked(await get(app, '/users/me', alice.tokens.access_token));
      await assertWorks(app, aliceOther.access_token, "alice's live session on the second app");
      assertRevoked(await get(app, '/users/me', carol.tokens.access_token));
      assertRevoked(await get(app, '/users/me', daveOther.access_token));
      await assertWorks(app, dave.tokens.access_token, "dave's remaining session on the second app");
      // The deleted user's token on a route that never reads the user row.
      assertRevoked(await get(app, '/tasks', erin.tokens.access_token));

      // Refresh tokens too, and the cutoff is known at once: a login right away works.
      assertTokenRejected(await refresh(app, alice.tokens.refresh_token), INVALID_REFRESH, 'invalid_token');
      const carolAgain = await login(app, carol);
      await assertWorks(app, carolAgain.access_token, "carol's login on the second app right after her logout-all");
      const alicePair = await refreshed(app, aliceOther.refresh_token);
      await assertWorks(app, alicePair.access_token, "alice's refreshed session on the second app");
    });
  });
}
