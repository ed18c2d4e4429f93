import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Backend, createTestApp, type TestApp } from '../helpers/app.js';
import { assertError, claimsOf, get, login, post, postForm, send, signUp, type SignedUpUser, type UserBody } from '../helpers/client.js';
import { forge, nowSeconds, refreshClaims } from '../helpers/forge.js';
import { assertNotAuthenticated, assertTokenRejected, assertTokenResponse, assertValidation } from '../helpers/responses.js';

/**
 * The end of a token's life (API.md /auth/refresh, /auth/logout): refresh and its failures, logout
 * (also with a moving clock), and deactivation of the account.
 */

const INVALID_CREDENTIALS = 'Incorrect email or password';
const INVALID_REFRESH = 'Invalid refresh token';

const REFRESH_EXPIRED = 'Refresh token has expired. Please log in again.';

export function defineRefreshLogoutSuite(backend: Backend): void {
  describe(`refresh (${backend})`, () => {
    let t: TestApp;
    let user: SignedUpUser;
    before(async () => {
      t = await createTestApp(backend);
      user = await signUp(t.app);
    });
    after(() => t.close());

    it('POST /auth/refresh answers a new pair with Cache-Control: no-store, in the same session', async () => {
      const tokens = await login(t.app, user);
      const response = await post(t.app, '/auth/refresh', { refresh_token: tokens.refresh_token });
      const pair = assertTokenResponse(response);
      assert.notEqual(pair.access_token, tokens.access_token);
      assert.notEqual(pair.refresh_token, tokens.refresh_token);
      assert.equal(claimsOf(pair.access_token).sid, claimsOf(tokens.access_token).sid);
      assert.equal(claimsOf(pair.access_token).sub, String(user.id));
      assert.equal(claimsOf(pair.refresh_token).type, 'refresh');
      const me = await get(t.app, '/users/me', pair.access_token);
      assert.equal(me.statusCode, 200, me.body);
      assert.equal(me.json<UserBody>().id, user.id);
      // The new refresh token works in turn.
      assertTokenResponse(await post(t.app, '/auth/refresh', { refresh_token: pair.refresh_token }));
    });

    it('a garbage refresh token answers 401 Invalid refresh token', async () => {
      for (const token of ['garbage', 'a.b.c', user.tokens.refresh_token.slice(0, -2)]) {
        assertTokenRejected(await post(t.app, '/auth/refresh', { refresh_token: token }), INVALID_REFRESH, 'invalid_token');
      }
    });

    it('an expired refresh token answers 401 token_expired', async () => {
      const iat = nowSeconds() - 604800 - 120;
      const token = forge(t, t.settings.jwt.refreshSecret, refreshClaims(user.id, { iat, exp: iat + 604800 }));
      assertTokenRejected(await post(t.app, '/auth/refresh', { refresh_token: token }), REFRESH_EXPIRED, 'token_expired');
    });

    it('a refresh-secret token with type access answers 401 Invalid token type', async () => {
      const token = forge(t, t.settings.jwt.refreshSecret, refreshClaims(user.id, { type: 'access', role: 'student' }));
      assertTokenRejected(await post(t.app, '/auth/refresh', { refresh_token: token }), 'Invalid token type', 'invalid_token_type');
    });

    it('a well-signed refresh token the server never issued answers 401 Invalid refresh token', async () => {
      const token = forge(t, t.settings.jwt.refreshSecret, refreshClaims(user.id));
      assertTokenRejected(await post(t.app, '/auth/refresh', { refresh_token: token }), INVALID_REFRESH, 'invalid_token');
      // A genuine token's identifiers with the subject changed: still not a record of ours.
      const genuine = claimsOf((await login(t.app, user)).refresh_token);
      const moved = forge(t, t.settings.jwt.refreshSecret, { ...genuine, sub: String(user.id + 1000) });
      assertTokenRejected(await post(t.app, '/auth/refresh', { refresh_token: moved }), INVALID_REFRESH, 'invalid_token');
    });

    it('a missing refresh_token field answers 422', async () => {
      assertValidation(await post(t.app, '/auth/refresh', {}), { loc: ['body', 'refresh_token'], type: 'missing' });
      assertValidation(await post(t.app, '/auth/refresh', { refresh_token: '' }), { loc: ['body', 'refresh_token'] });
    });

    it('a non-string refresh_token answers 422, not a coerced string', async () => {
      assertValidation(await post(t.app, '/auth/refresh', { refresh_token: 5 }), { loc: ['body', 'refresh_token'] });
    });
  });

  describe(`logout (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    it('without a token answers 401 Not authenticated', async () => {
      assertNotAuthenticated(await post(t.app, '/auth/logout'));
      assertNotAuthenticated(await post(t.app, '/auth/logout', { refresh_token: 'x' }));
    });

    it('with a token answers 204; that access token and that refresh token stop working, another session does not', async () => {
      const user = await signUp(t.app);
      const other = await login(t.app, user);
      const response = await post(t.app, '/auth/logout', undefined, user.tokens.access_token);
      assert.equal(response.statusCode, 204, response.body);
      assert.equal(response.body, '');
      assertTokenRejected(await get(t.app, '/users/me', user.tokens.access_token), 'Token has been revoked', 'token_revoked');
      assertTokenRejected(
        await post(t.app, '/auth/refresh', { refresh_token: user.tokens.refresh_token }),
        INVALID_REFRESH,
        'invalid_token',
      );
      // Logging out again with the same token is refused too.
      assertTokenRejected(
        await post(t.app, '/auth/logout', undefined, user.tokens.access_token),
        'Token has been revoked',
        'token_revoked',
      );
      // The user's other session is untouched.
      assert.equal((await get(t.app, '/users/me', other.access_token)).statusCode, 200);
      const refreshed = assertTokenResponse(await post(t.app, '/auth/refresh', { refresh_token: other.refresh_token }));
      assert.equal((await get(t.app, '/users/me', refreshed.access_token)).statusCode, 200);
    });

    it('with a JSON body of {} answers 204', async () => {
      const user = await signUp(t.app);
      const response = await post(t.app, '/auth/logout', {}, user.tokens.access_token);
      assert.equal(response.statusCode, 204, response.body);
      assertTokenRejected(await get(t.app, '/users/me', user.tokens.access_token), 'Token has been revoked', 'token_revoked');
    });

    it('an access token refreshed from the ended session is refused too', async () => {
      const user = await signUp(t.app);
      const pair = assertTokenResponse(await post(t.app, '/auth/refresh', { refresh_token: user.tokens.refresh_token }));
      assert.equal((await post(t.app, '/auth/logout', undefined, pair.access_token)).statusCode, 204);
      // Both access tokens of the session (before and after rotation) are dead.
      assertTokenRejected(await get(t.app, '/users/me', user.tokens.access_token), 'Token has been revoked', 'token_revoked');
      assertTokenRejected(await get(t.app, '/users/me', pair.access_token), 'Token has been revoked', 'token_revoked');
      assert.equal((await post(t.app, '/auth/refresh', { refresh_token: pair.refresh_token })).statusCode, 401);
    });

    it('an optional {"refresh_token"} of another session of the same user ends that session too', async () => {
      const user = await signUp(t.app);
      const second = await login(t.app, user);
      const third = await login(t.app, user);
      const response = await post(t.app, '/auth/logout', { refresh_token: second.refresh_token }, user.tokens.access_token);
      assert.equal(response.statusCode, 204, response.body);
      assertTokenRejected(await get(t.app, '/users/me', user.tokens.access_token), 'Token has been revoked', 'token_revoked');
      assertTokenRejected(await get(t.app, '/users/me', second.access_token), 'Token has been revoked', 'token_revoked');
      assertTokenRejected(await post(t.app, '/auth/refresh', { refresh_token: second.refresh_token }), INVALID_REFRESH, 'invalid_token');
      // A session not named stays alive.
      assert.equal((await get(t.app, '/users/me', third.access_token)).statusCode, 200);
    });

    it("a refresh_token of another user's session in the body does not end that user's session", async () => {
      const alice = await signUp(t.app);
      const bob = await signUp(t.app);
      const response = await post(t.app, '/auth/logout', { refresh_token: bob.tokens.refresh_token }, alice.tokens.access_token);
      assert.equal(response.statusCode, 204, response.body);
      assert.equal((await get(t.app, '/users/me', bob.tokens.access_token)).statusCode, 200);
      assertTokenResponse(await post(t.app, '/auth/refresh', { refresh_token: bob.tokens.refresh_token }));
    });
  });

  describe(`logout with a moving clock (${backend})`, () => {
    let t: TestApp;
    let clock = Date.now();
    before(async () => {
      clock = Date.now();
      t = await createTestApp(backend, {}, { now: () => clock });
    });
    after(() => t.close());

    it('a logged-out access token stays refused until it is expired, leeway included', async () => {
      const user = await signUp(t.app);
      const other = await login(t.app, user);
      assert.equal((await post(t.app, '/auth/logout', undefined, user.tokens.access_token)).statusCode, 204);
      // 10 s past exp: within the 30 s leeway, so an unrevoked token of the same age is still accepted...
      clock += 910_000;
      assert.equal((await get(t.app, '/users/me', other.access_token)).statusCode, 200);
      // ...but the logged-out one must not come back to life (API.md: "rejected from now on").
      const response = await get(t.app, '/users/me', user.tokens.access_token);
      assert.equal(response.statusCode, 401, `a logged-out access token was accepted again: ${response.statusCode} ${response.body}`);
      const { code } = response.json<{ code: string }>();
      assert.ok(code === 'token_revoked' || code === 'token_expired', response.body);
    });
  });

  describe(`deactivation (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    it('PUT /users/me/deactivate ends every session; login then answers 403 only after the right password', async () => {
      const user = await signUp(t.app);
      const other = await login(t.app, user);
      const response = await send(t.app, 'PUT', '/users/me/deactivate', undefined, user.tokens.access_token);
      assert.equal(response.statusCode, 200, response.body);
      assert.deepEqual(response.json(), { message: 'Account deactivated successfully' });

      for (const tokens of [user.tokens, other]) {
        assertTokenRejected(await get(t.app, '/users/me', tokens.access_token), 'Token has been revoked', 'token_revoked');
        assertTokenRejected(await get(t.app, '/users/me/status', tokens.access_token), 'Token has been revoked', 'token_revoked');
        const refresh = await post(t.app, '/auth/refresh', { refresh_token: tokens.refresh_token });
        assert.equal(refresh.statusCode, 401, refresh.body);
        assert.match(String(refresh.headers['www-authenticate']), /^Bearer\b/);
      }

      assertError(
        await post(t.app, '/auth/login', { email: user.email, password: user.password }),
        403,
        'Account is disabled',
        'account_disabled',
      );
      assertError(
        await postForm(t.app, '/login', { username: user.email, password: user.password }),
        403,
        'Account is disabled',
        'account_disabled',
      );
      assertError(
        await post(t.app, '/auth/login', { email: user.email, password: `${user.password}x` }),
        401,
        INVALID_CREDENTIALS,
        'invalid_credentials',
      );
      // Registering the email again is not a way back in.
      assertError(
        await post(t.app, '/auth/register', { email: user.email, password: user.password }),
        409,
        'Email already registered',
        'email_taken',
      );
    });

    it('deactivation affects only that user', async () => {
      const alice = await signUp(t.app);
      const bob = await signUp(t.app);
      assert.equal((await send(t.app, 'PUT', '/users/me/deactivate', undefined, alice.tokens.access_token)).statusCode, 200);
      assert.equal((await get(t.app, '/users/me', bob.tokens.access_token)).statusCode, 200);
      await login(t.app, bob);
    });
  });
}
