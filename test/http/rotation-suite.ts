import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestApp, type Backend, type TestApp } from '../helpers/app.js';
import { assertError, claimsOf, get, post, signUp, type Tokens } from '../helpers/client.js';

const REUSE_DETAIL = 'Refresh token reuse detected. The session has been revoked; please log in again.';

/** Refresh-token rotation, reuse detection and the grace window (seeds, Part 4.6), on one backend. */
export function defineRotationSuite(backend: Backend): void {
  describe(`refresh rotation without a grace window (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend, { REFRESH_REUSE_GRACE_SECONDS: '0' });
    });
    after(() => t.close());

    it('rotates: the new refresh token works once and belongs to the same session', async () => {
      const { tokens } = await signUp(t.app);
      const first = await post(t.app, '/auth/refresh', { refresh_token: tokens.refresh_token });
      assert.equal(first.statusCode, 200, first.body);
      const pair = first.json<Tokens>();
      assert.notEqual(pair.refresh_token, tokens.refresh_token);
      assert.equal(claimsOf(pair.refresh_token).sid, claimsOf(tokens.refresh_token).sid);
      const second = await post(t.app, '/auth/refresh', { refresh_token: pair.refresh_token });
      assert.equal(second.statusCode, 200, second.body);
    });

    it('reuse of a rotated token revokes the whole family, the heir included', async () => {
      const { tokens } = await signUp(t.app);
      const heir = (await post(t.app, '/auth/refresh', { refresh_token: tokens.refresh_token })).json<Tokens>();
      assertError(await post(t.app, '/auth/refresh', { refresh_token: tokens.refresh_token }), 401, REUSE_DETAIL, 'token_reused');
      // The thief's (or the victim's) heir is dead too, and so are the session's access tokens.
      const heirRefresh = await post(t.app, '/auth/refresh', { refresh_token: heir.refresh_token });
      assertError(heirRefresh, 401, 'Invalid refresh token', 'invalid_token');
      assertError(await get(t.app, '/users/me', heir.access_token), 401, 'Token has been revoked', 'token_revoked');
      assertError(await get(t.app, '/users/me', tokens.access_token), 401, 'Token has been revoked', 'token_revoked');
    });

    it('reuse ends only the affected session; another login of the same user keeps working', async () => {
      const user = await signUp(t.app);
      const other = (await post(t.app, '/auth/login', { email: user.email, password: user.password })).json<Tokens>();
      await post(t.app, '/auth/refresh', { refresh_token: user.tokens.refresh_token });
      assert.equal((await post(t.app, '/auth/refresh', { refresh_token: user.tokens.refresh_token })).statusCode, 401);
      assert.equal((await get(t.app, '/users/me', other.access_token)).statusCode, 200);
      assert.equal((await post(t.app, '/auth/refresh', { refresh_token: other.refresh_token })).statusCode, 200);
    });

    it('20 parallel refreshes of one token yield exactly one success', async () => {
      const { tokens } = await signUp(t.app);
      const responses = await Promise.all(
        Array.from({ length: 20 }, () => post(t.app, '/auth/refresh', { refresh_token: tokens.refresh_token })),
      );
      const statuses = responses.map((r) => r.statusCode);
      assert.equal(statuses.filter((s) => s === 200).length, 1, `statuses: ${statuses.join(',')}`);
      assert.equal(statuses.filter((s) => s === 401).length, 19, `statuses: ${statuses.join(',')}`);
      for (const r of responses.filter((r) => r.statusCode === 401)) assert.equal(r.json<{ code: string }>().code, 'token_reused');
    });
  });

  describe(`refresh rotation with a grace window (${backend})`, () => {
    let t: TestApp;
    let clock = Date.now();
    before(async () => {
      clock = Date.now();
      t = await createTestApp(backend, { REFRESH_REUSE_GRACE_SECONDS: '10' }, { now: () => clock });
    });
    after(() => t.close());

    it('a second use within the window answers a valid pair for the same session', async () => {
      const { tokens } = await signUp(t.app);
      const first = (await post(t.app, '/auth/refresh', { refresh_token: tokens.refresh_token })).json<Tokens>();
      clock += 5_000;
      const again = await post(t.app, '/auth/refresh', { refresh_token: tokens.refresh_token });
      assert.equal(again.statusCode, 200, again.body);
      const second = again.json<Tokens>();
      assert.equal(claimsOf(second.refresh_token).sid, claimsOf(first.refresh_token).sid);
      // Both tabs hold working tokens.
      assert.equal((await get(t.app, '/users/me', first.access_token)).statusCode, 200);
      assert.equal((await get(t.app, '/users/me', second.access_token)).statusCode, 200);
      assert.equal((await post(t.app, '/auth/refresh', { refresh_token: first.refresh_token })).statusCode, 200);
      assert.equal((await post(t.app, '/auth/refresh', { refresh_token: second.refresh_token })).statusCode, 200);
    });

    it('a use after the window is theft: 401 token_reused and the session ends', async () => {
      const { tokens } = await signUp(t.app);
      const heir = (await post(t.app, '/auth/refresh', { refresh_token: tokens.refresh_token })).json<Tokens>();
      clock += 11_000;
      assertError(await post(t.app, '/auth/refresh', { refresh_token: tokens.refresh_token }), 401, REUSE_DETAIL, 'token_reused');
      assert.equal((await post(t.app, '/auth/refresh', { refresh_token: heir.refresh_token })).statusCode, 401);
      assert.equal((await get(t.app, '/users/me', heir.access_token)).statusCode, 401);
    });

    it('parallel refreshes within the window all succeed and keep one session', async () => {
      const { tokens } = await signUp(t.app);
      const responses = await Promise.all(
        Array.from({ length: 10 }, () => post(t.app, '/auth/refresh', { refresh_token: tokens.refresh_token })),
      );
      assert.deepEqual(
        responses.map((r) => r.statusCode),
        Array.from({ length: 10 }, () => 200),
      );
      const sessions = new Set(responses.map((r) => claimsOf(r.json<Tokens>().refresh_token).sid));
      assert.deepEqual([...sessions], [claimsOf(tokens.refresh_token).sid]);
    });

    it('a logged-out session cannot be refreshed, even within the window', async () => {
      const { tokens } = await signUp(t.app);
      const heir = (await post(t.app, '/auth/refresh', { refresh_token: tokens.refresh_token })).json<Tokens>();
      const logout = await post(t.app, '/auth/logout', undefined, heir.access_token);
      assert.equal(logout.statusCode, 204);
      // The unused heir was revoked with its session; the used original is a replay.
      assertError(await post(t.app, '/auth/refresh', { refresh_token: heir.refresh_token }), 401, 'Invalid refresh token', 'invalid_token');
      assertError(await post(t.app, '/auth/refresh', { refresh_token: tokens.refresh_token }), 401, REUSE_DETAIL, 'token_reused');
    });
  });
}
