import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { isHmacAlgorithm } from '../../src/tokens/jws.js';
import { type Backend, createTestApp, type TestApp } from '../helpers/app.js';
import {
  assertError,
  claimsOf,
  get,
  login,
  type Method,
  post,
  postForm,
  register,
  send,
  signUp,
  type SignedUpUser,
  type UserBody,
} from '../helpers/client.js';
import { accessClaims, forge, nowSeconds } from '../helpers/forge.js';
import { assertNotAuthenticated, assertTokenRejected, assertTokenResponse, assertValidation } from '../helpers/responses.js';

/**
 * Login and the tokens it issues (API.md /auth/login, /login): JSON and form logins, the claims of
 * both tokens, and every way an access token is refused on a protected route.
 */

const INVALID_CREDENTIALS = 'Incorrect email or password';
const INVALID_TOKEN = 'Could not validate credentials';

const INVALID_REFRESH = 'Invalid refresh token';

function headerOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

export function defineLoginSuite(backend: Backend): void {
  describe(`login and token claims (${backend})`, () => {
    let t: TestApp;
    let user: { email: string; password: string; id: number };
    before(async () => {
      t = await createTestApp(backend);
      user = await register(t.app);
    });
    after(() => t.close());

    it('JSON login on /auth/login and /login answers the token response with Cache-Control: no-store', async () => {
      for (const url of ['/auth/login', '/login']) {
        const response = await post(t.app, url, { email: user.email, password: user.password });
        const tokens = assertTokenResponse(response);
        assert.ok(!response.body.includes(user.password));
        assert.equal((await get(t.app, '/users/me', tokens.access_token)).statusCode, 200, url);
      }
    });

    it('OAuth2 password form (username=&password=) works with and without grant_type=password', async () => {
      for (const url of ['/auth/login', '/login']) {
        for (const extra of [{}, { grant_type: 'password' }] as Record<string, string>[]) {
          const response = await postForm(t.app, url, { username: user.email, password: user.password, ...extra });
          const tokens = assertTokenResponse(response);
          assert.equal(claimsOf(tokens.access_token).sub, String(user.id), `${url} ${JSON.stringify(extra)}`);
        }
      }
    });

    it('the form with a wrong password answers the same 401 as JSON', async () => {
      const response = await postForm(t.app, '/auth/login', { username: user.email, password: 'wrong-password-1', grant_type: 'password' });
      assertError(response, 401, INVALID_CREDENTIALS, 'invalid_credentials');
    });

    it('the form with a grant_type other than password answers 422', async () => {
      const response = await postForm(t.app, '/auth/login', {
        username: user.email,
        password: user.password,
        grant_type: 'client_credentials',
      });
      assertValidation(response, { loc: ['body', 'grant_type'] });
    });

    it('unknown email and wrong password answer the identical 401 with WWW-Authenticate: Bearer', async () => {
      const unknown = await post(t.app, '/auth/login', { email: 'nobody-here@example.com', password: user.password });
      const wrong = await post(t.app, '/auth/login', { email: user.email, password: `${user.password}x` });
      for (const response of [unknown, wrong]) {
        assert.equal(response.statusCode, 401, response.body);
        assert.deepEqual(response.json(), { detail: INVALID_CREDENTIALS, code: 'invalid_credentials' });
        assert.match(String(response.headers['www-authenticate']), /^Bearer\b/);
        assert.doesNotMatch(String(response.headers['www-authenticate']), /error=/);
      }
      assert.equal(unknown.body, wrong.body);
      assert.equal(unknown.headers['www-authenticate'], wrong.headers['www-authenticate']);
      assert.equal(unknown.headers['content-type'], wrong.headers['content-type']);
    });

    it('login with a missing field answers 422', async () => {
      assertValidation(await post(t.app, '/auth/login', { email: user.email }), { loc: ['body', 'password'], type: 'missing' });
    });

    it('the access token carries sub (the user id as a string), type, jti, sid, role, iat, exp = iat + 900; header alg/typ (and kid for key pairs)', async () => {
      const tokens = await login(t.app, user);
      const header = headerOf(tokens.access_token);
      assert.equal(header.alg, t.settings.jwt.algorithm);
      assert.equal(header.typ, 'JWT');
      assert.equal(typeof header.kid, isHmacAlgorithm(t.settings.jwt.algorithm) ? 'undefined' : 'string');
      const claims = claimsOf(tokens.access_token);
      assert.equal(claims.sub, String(user.id));
      assert.notEqual(claims.sub, user.email);
      assert.ok(!tokens.access_token.includes(Buffer.from(user.email).toString('base64url')));
      assert.equal(claims.type, 'access');
      assert.equal(claims.role, 'student');
      assert.equal(typeof claims.jti, 'string');
      assert.ok((claims.jti as string).length > 0);
      assert.equal(typeof claims.sid, 'string');
      assert.ok((claims.sid as string).length > 0);
      assert.equal(typeof claims.iat, 'number');
      assert.ok(Number.isInteger(claims.iat));
      assert.ok(Math.abs((claims.iat as number) - nowSeconds()) <= 5, `iat ${String(claims.iat)}`);
      assert.equal(claims.exp, (claims.iat as number) + 900);
      // No password or hash in the token.
      assert.doesNotMatch(JSON.stringify(claims), /password|argon|hash/i);
    });

    it('the refresh token has type refresh, the same sid and sub, its own jti, exp = iat + 7 days, and another secret', async () => {
      const tokens = await login(t.app, user);
      const access = claimsOf(tokens.access_token);
      const refresh = claimsOf(tokens.refresh_token);
      // Refresh tokens are HMAC-signed with the refresh secret, whatever signs access tokens.
      assert.equal(headerOf(tokens.refresh_token).alg, isHmacAlgorithm(t.settings.jwt.algorithm) ? t.settings.jwt.algorithm : 'HS256');
      assert.equal(refresh.type, 'refresh');
      assert.equal(refresh.sub, String(user.id));
      assert.equal(refresh.sid, access.sid);
      assert.equal(typeof refresh.jti, 'string');
      assert.notEqual(refresh.jti, access.jti);
      assert.equal(refresh.exp, (refresh.iat as number) + 604800);
      // Each login is its own session with unique ids.
      const second = await login(t.app, user);
      assert.notEqual(claimsOf(second.access_token).sid, access.sid);
      assert.notEqual(claimsOf(second.access_token).jti, access.jti);
      assert.notEqual(claimsOf(second.refresh_token).jti, refresh.jti);
    });

    it('the access token is refused at /auth/refresh, and the refresh token is refused as Bearer', async () => {
      const tokens = await login(t.app, user);
      assertTokenRejected(await post(t.app, '/auth/refresh', { refresh_token: tokens.access_token }), INVALID_REFRESH, 'invalid_token');
      assertTokenRejected(await get(t.app, '/users/me', tokens.refresh_token), INVALID_TOKEN, 'invalid_token');
      // Neither refusal harmed the session.
      assert.equal((await get(t.app, '/users/me', tokens.access_token)).statusCode, 200);
      assertTokenResponse(await post(t.app, '/auth/refresh', { refresh_token: tokens.refresh_token }));
    });

    it('the two kinds of token are signed with different secrets', async () => {
      const tokens = await login(t.app, user);
      if (!isHmacAlgorithm(t.settings.jwt.algorithm)) {
        // Key-pair signatures may be randomised (ES256, PS256): check with the verifiers instead.
        const { tokens: service } = t.app.gatepass;
        assert.equal(service.verifyAccessToken(tokens.access_token).sub, String(user.id));
        assert.equal(service.verifyRefreshToken(tokens.refresh_token).sub, String(user.id));
        assert.throws(() => service.verifyAccessToken(tokens.refresh_token));
        assert.throws(() => service.verifyRefreshToken(tokens.access_token));
        assert.equal(
          (JSON.parse(Buffer.from(tokens.access_token.split('.')[0] ?? '', 'base64url').toString()) as { alg: unknown }).alg,
          t.settings.jwt.algorithm,
        );
        return;
      }
      const [, , accessSignature] = tokens.access_token.split('.');
      const [, , refreshSignature] = tokens.refresh_token.split('.');
      // Re-signing each token's content with the other secret does not reproduce its signature.
      const access = claimsOf(tokens.access_token);
      const refresh = claimsOf(tokens.refresh_token);
      assert.equal(forge(t, t.settings.jwt.accessSecret, access).split('.')[2], accessSignature);
      assert.notEqual(forge(t, t.settings.jwt.refreshSecret, access).split('.')[2], accessSignature);
      assert.equal(forge(t, t.settings.jwt.refreshSecret, refresh).split('.')[2], refreshSignature);
      assert.notEqual(forge(t, t.settings.jwt.accessSecret, refresh).split('.')[2], refreshSignature);
    });
  });

  describe(`access-token errors on a protected route (${backend})`, () => {
    let t: TestApp;
    let user: SignedUpUser;
    before(async () => {
      t = await createTestApp(backend);
      user = await signUp(t.app);
    });
    after(() => t.close());

    it('control: the genuine token and a token we sign with the access secret are accepted', async () => {
      assert.equal((await get(t.app, '/users/me', user.tokens.access_token)).statusCode, 200);
      const forged = forge(t, t.settings.jwt.accessSecret, accessClaims(user.id));
      const response = await get(t.app, '/users/me', forged);
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.json<UserBody>().id, user.id);
    });

    it('no Authorization header answers 401 Not authenticated with WWW-Authenticate: Bearer', async () => {
      assertNotAuthenticated(await get(t.app, '/users/me'));
    });

    it('a non-Bearer scheme answers 401 Not authenticated', async () => {
      for (const authorization of ['Basic xyz', `Token ${user.tokens.access_token}`, 'Bearer', 'Bearer ']) {
        const response = await t.app.inject({ method: 'GET', url: '/users/me', headers: { authorization } });
        assertNotAuthenticated(response);
      }
    });

    it('a malformed token answers 401 invalid_token with error="invalid_token"', async () => {
      const [header, payload] = user.tokens.access_token.split('.');
      for (const token of [
        'not-a-jwt',
        'a.b.c',
        'a.b',
        `${user.tokens.access_token}.extra`,
        '...',
        `${header}.${payload}`,
        `${header}.${payload}.`,
      ]) {
        assertTokenRejected(await get(t.app, '/users/me', token), INVALID_TOKEN, 'invalid_token');
      }
    });

    it('a flipped character in the signature answers 401 invalid_token', async () => {
      const [header, payload, signature = ''] = user.tokens.access_token.split('.');
      const flipped = (signature[0] === 'A' ? 'B' : 'A') + signature.slice(1);
      assertTokenRejected(await get(t.app, '/users/me', `${header}.${payload}.${flipped}`), INVALID_TOKEN, 'invalid_token');
    });

    it('a changed payload with the original signature answers 401 invalid_token', async () => {
      const [header, , signature] = user.tokens.access_token.split('.');
      const payload = Buffer.from(JSON.stringify({ ...claimsOf(user.tokens.access_token), role: 'admin' })).toString('base64url');
      assertTokenRejected(await get(t.app, '/users/me', `${header}.${payload}.${signature}`), INVALID_TOKEN, 'invalid_token');
    });

    it('a token signed with a different secret answers 401 invalid_token', async () => {
      const token = forge(t, randomBytes(32).toString('hex'), accessClaims(user.id));
      assertTokenRejected(await get(t.app, '/users/me', token), INVALID_TOKEN, 'invalid_token');
      // The refresh secret does not make access tokens either.
      const withRefreshSecret = forge(t, t.settings.jwt.refreshSecret, accessClaims(user.id));
      assertTokenRejected(await get(t.app, '/users/me', withRefreshSecret), INVALID_TOKEN, 'invalid_token');
    });

    it('an alg "none" token answers 401 invalid_token', async () => {
      const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
      const payload = encode(accessClaims(user.id));
      for (const alg of ['none', 'None', 'NONE']) {
        const header = encode({ alg, typ: 'JWT' });
        assertTokenRejected(await get(t.app, '/users/me', `${header}.${payload}.`), INVALID_TOKEN, 'invalid_token');
      }
      // Nor with the genuine signature appended.
      const signature = user.tokens.access_token.split('.')[2];
      const genuinePayload = user.tokens.access_token.split('.')[1];
      const noneHeader = encode({ alg: 'none', typ: 'JWT' });
      assertTokenRejected(await get(t.app, '/users/me', `${noneHeader}.${genuinePayload}.${signature}`), INVALID_TOKEN, 'invalid_token');
    });

    it('a well-signed token of the wrong type answers 401 invalid_token', async () => {
      for (const type of ['refresh', 'reset', undefined]) {
        const token = forge(t, t.settings.jwt.accessSecret, accessClaims(user.id, { type }));
        assertTokenRejected(await get(t.app, '/users/me', token), INVALID_TOKEN, 'invalid_token');
      }
    });

    it('an expired token (120 s past exp, beyond the 30 s leeway) answers 401 Token expired', async () => {
      const iat = nowSeconds() - 1020;
      const token = forge(t, t.settings.jwt.accessSecret, accessClaims(user.id, { iat, exp: iat + 900 }));
      assertTokenRejected(await get(t.app, '/users/me', token), 'Token expired', 'token_expired');
    });

    it('a genuine token whose user does not exist answers 401 invalid_token', async () => {
      const token = forge(t, t.settings.jwt.accessSecret, accessClaims(987_654_321));
      assertTokenRejected(await get(t.app, '/users/me', token), INVALID_TOKEN, 'invalid_token');
      assertTokenRejected(await get(t.app, '/users/me/status', token), INVALID_TOKEN, 'invalid_token');
    });

    it('every protected route refuses a missing and a bad token', async () => {
      const bad = forge(t, randomBytes(32).toString('hex'), accessClaims(user.id));
      const routes: [Method, string, unknown][] = [
        ['GET', '/users/me', undefined],
        ['PATCH', '/users/me', { full_name: 'x' }],
        ['GET', '/users/me/status', undefined],
        ['PUT', '/users/me/deactivate', undefined],
        ['POST', '/auth/logout', undefined],
        ['GET', '/tasks', undefined],
        ['POST', '/tasks', { title: 'x' }],
        ['GET', '/tasks/1', undefined],
        ['PATCH', '/tasks/1', { done: true }],
        ['DELETE', '/tasks/1', undefined],
      ];
      for (const [method, url, body] of routes) {
        assertNotAuthenticated(await send(t.app, method, url, body));
        assertTokenRejected(await send(t.app, method, url, body, bad), INVALID_TOKEN, 'invalid_token');
      }
      // The user was not deactivated by any of this.
      assert.equal((await get(t.app, '/users/me', user.tokens.access_token)).statusCode, 200);
    });
  });
}
