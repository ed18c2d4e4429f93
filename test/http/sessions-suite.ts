import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { loadSettings } from '../../src/config/settings.js';
import { buildApp, type GatepassApp } from '../../src/http/app.js';
import { type Backend, createTestApp, sameDatabaseEnv, type TestApp } from '../helpers/app.js';
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
} from '../helpers/client.js';
import { assertNotAuthenticated, assertRevoked, assertTokenRejected, assertWorks } from '../helpers/responses.js';
import { idsOf, listSessions, sidOf } from '../helpers/sessions.js';

/**
 * The signed-in user's own sessions (API.md, /auth/sessions and /auth/logout-all): the session list,
 * ending one session, logout-all and its per-user `iat` cutoff, and revocations outliving a restart.
 * Real HTTP handling over `app.inject`, a real database.
 */

const SESSION_KEYS = ['created_at', 'current', 'id', 'ip', 'last_used_at', 'user_agent'];
const INVALID_REFRESH = 'Invalid refresh token';

/** light-my-request's User-Agent when a request sets none. */
const INJECT_USER_AGENT = 'lightMyRequest';

/** Access-token lifetime plus verification leeway, the defaults (API.md: 15 min, 30 s). */
const ACCESS_HONOURED_SECONDS = 900 + 30;

function iatOf(token: string): number {
  const iat = claimsOf(token).iat;
  assert.equal(typeof iat, 'number');
  return iat as number;
}

function endSession(app: GatepassApp, id: string, accessToken: string): Promise<LightMyRequestResponse> {
  return send(app, 'DELETE', `/auth/sessions/${encodeURIComponent(id)}`, undefined, accessToken);
}

function logoutAll(app: GatepassApp, accessToken: string): Promise<LightMyRequestResponse> {
  return post(app, '/auth/logout-all', undefined, accessToken);
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
      assert.deepEqual(
        idsOf(await listSessions(t.app, bob.tokens.access_token)),
        [sidOf(bob.tokens.access_token), sidOf(bobAgain.access_token)].sort(),
      );
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

    it('ending your other session: 204, then its access token is revoked and its refresh token refused; the current one keeps working', async () => {
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

    it('ending a rotated session also refuses the access tokens issued before the rotation', async () => {
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
      assertError(
        await endSession(t.app, '00000000-0000-4000-8000-000000000000', user.tokens.access_token),
        404,
        'Session not found',
        'not_found',
      );
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
        assert.equal(
          me.statusCode,
          401,
          `${name}'s token (iat ${iatOf(token)}), issued before a logout-all at ${clock / 1000}, was accepted: ${me.body}`,
        );
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

      const settings = loadSettings(sameDatabaseEnv(t, {}), { cwd: t.cwd });
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
