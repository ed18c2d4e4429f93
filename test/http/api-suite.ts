import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { createTestApp, type Backend, type TestApp } from '../helpers/app.js';
import { assertError, claimsOf, get, login, newCredentials, post, register, send, signUp, type Method, type Tokens } from '../helpers/client.js';
import type { GatepassApp } from '../../src/http/app.js';
import { createHmacKey, isHmacAlgorithm, signJws } from '../../src/tokens/jws.js';

/**
 * The HTTP contract of /work/shared/API.md, end to end over `app.inject` against a real database:
 * health and docs, registration, login, token claims, access-token failures, refresh, logout,
 * deactivation, the user's own profile, tasks, and robustness against bad input.
 */

const USER_KEYS = ['created_at', 'email', 'full_name', 'id', 'is_active', 'role'];
const TOKEN_KEYS = ['access_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'token_type'];
const TASK_KEYS = ['created_at', 'description', 'done', 'id', 'title', 'updated_at'];
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

const INVALID_CREDENTIALS = 'Incorrect email or password';
const INVALID_TOKEN = 'Could not validate credentials';
const INVALID_REFRESH = 'Invalid refresh token';
const REFRESH_EXPIRED = 'Refresh token has expired. Please log in again.';

interface UserBody {
  id: number;
  email: string;
  full_name: string | null;
  role: string;
  is_active: boolean;
  created_at: string;
}

interface TaskBody {
  id: number;
  title: string;
  description: string | null;
  done: boolean;
  created_at: string;
  updated_at: string;
}

interface ValidationItem {
  loc: (string | number)[];
  msg: string;
  type: string;
}

/** A request with a raw body and explicit headers, for the robustness checks. */
function raw(app: GatepassApp, method: Method, url: string, payload: string, headers: Record<string, string>): Promise<LightMyRequestResponse> {
  return app.inject({ method, url, payload, headers });
}

function form(app: GatepassApp, url: string, fields: Record<string, string>): Promise<LightMyRequestResponse> {
  return raw(app, 'POST', url, new URLSearchParams(fields).toString(), { 'content-type': 'application/x-www-form-urlencoded' });
}

/** An error from a rejected token: API.md's body plus `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750). */
function assertTokenRejected(response: LightMyRequestResponse, detail: string, code: string): void {
  assertError(response, 401, detail, code);
  assert.match(String(response.headers['www-authenticate']), /error="invalid_token"/);
}

/** A 401 where no token was presented: plain `WWW-Authenticate: Bearer`, no error parameter. */
function assertNotAuthenticated(response: LightMyRequestResponse): void {
  assertError(response, 401, 'Not authenticated', 'not_authenticated');
  assert.match(String(response.headers['www-authenticate']), /^Bearer\b/);
  assert.doesNotMatch(String(response.headers['www-authenticate']), /error=/);
}

/**
 * FastAPI's 422: `detail` is a non-empty list of exactly `{loc, msg, type}`, `code` is validation_error.
 * When `loc` is given, one item names it (with `type`, when given) and every item points inside `within`.
 */
function assertValidation(
  response: LightMyRequestResponse,
  expected?: { loc: (string | number)[]; type?: string; within?: (string | number)[] },
): ValidationItem[] {
  assert.equal(response.statusCode, 422, response.body);
  const body = response.json<{ detail: ValidationItem[]; code: string }>();
  assert.deepEqual(Object.keys(body).sort(), ['code', 'detail']);
  assert.equal(body.code, 'validation_error');
  assert.ok(Array.isArray(body.detail) && body.detail.length > 0, response.body);
  for (const item of body.detail) {
    assert.deepEqual(Object.keys(item).sort(), ['loc', 'msg', 'type'], response.body);
    assert.ok(Array.isArray(item.loc) && item.loc.length > 0, response.body);
    assert.equal(typeof item.msg, 'string');
    assert.ok(item.msg.length > 0);
    assert.equal(typeof item.type, 'string');
  }
  if (expected !== undefined) {
    const match = body.detail.find((item) => JSON.stringify(item.loc) === JSON.stringify(expected.loc));
    assert.ok(match !== undefined, `no item with loc ${JSON.stringify(expected.loc)} in ${response.body}`);
    if (expected.type !== undefined) assert.equal(match.type, expected.type, response.body);
    const within = expected.within ?? expected.loc;
    for (const item of body.detail) assert.deepEqual(item.loc.slice(0, within.length), within, response.body);
  }
  return body.detail;
}

function assertTokenResponse(response: LightMyRequestResponse): Tokens {
  assert.equal(response.statusCode, 200, response.body);
  assert.match(String(response.headers['cache-control']), /\bno-store\b/);
  const body = response.json<Tokens>();
  assert.deepEqual(Object.keys(body).sort(), TOKEN_KEYS);
  assert.equal(body.token_type, 'bearer');
  assert.equal(body.expires_in, 900);
  assert.equal(body.refresh_expires_in, 604800);
  assert.equal(typeof body.access_token, 'string');
  assert.equal(typeof body.refresh_token, 'string');
  assert.equal(body.access_token.split('.').length, 3);
  assert.equal(body.refresh_token.split('.').length, 3);
  return body;
}

function assertUserShape(body: UserBody): void {
  assert.deepEqual(Object.keys(body).sort(), USER_KEYS);
  assert.equal(typeof body.id, 'number');
  assert.ok(Number.isInteger(body.id) && body.id > 0);
  assert.match(body.created_at, ISO_UTC);
}

function assertTaskShape(body: TaskBody): void {
  assert.deepEqual(Object.keys(body).sort(), TASK_KEYS);
  assert.ok(Number.isInteger(body.id) && body.id > 0);
  assert.match(body.created_at, ISO_UTC);
  assert.match(body.updated_at, ISO_UTC);
}

function headerOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Signs claims with a secret of our choice, with the app's algorithm (HS256 by default). */
/**
 * Signs `claims` as the holder of `secret` would: the access secret stands for the app's access key
 * (a key pair with an asymmetric algorithm); any other secret signs with HMAC, as refresh tokens are.
 */
function forge(t: TestApp, secret: string, claims: Record<string, unknown>): string {
  const algorithm = t.settings.jwt.algorithm;
  if (secret === t.settings.jwt.accessSecret && !isHmacAlgorithm(algorithm)) return t.app.gatepass.tokens.signAccess(claims);
  return signJws(claims, createHmacKey(isHmacAlgorithm(algorithm) ? algorithm : 'HS256', secret));
}

function accessClaims(userId: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = nowSeconds();
  return { sub: String(userId), type: 'access', sid: randomUUID(), jti: randomUUID(), role: 'student', iat, exp: iat + 900, ...overrides };
}

function refreshClaims(userId: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = nowSeconds();
  return { sub: String(userId), type: 'refresh', sid: randomUUID(), jti: randomUUID(), iat, exp: iat + 604800, ...overrides };
}

/** A password of exactly `length` characters that is not on any common-password list. */
function passwordOfLength(length: number): string {
  return 'Zq7!vR2#kP9m'.repeat(Math.ceil(length / 12)).slice(0, length);
}

export function defineApiSuite(backend: Backend): void {
  describe(`health, docs and robustness (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    it('GET /ping answers exactly {"status":"ok","message":"pong"}', async () => {
      const response = await get(t.app, '/ping');
      assert.equal(response.statusCode, 200);
      assert.deepEqual(response.json(), { status: 'ok', message: 'pong' });
    });

    it('GET /health/ready answers 200 with status ok when the database answers', async () => {
      const response = await get(t.app, '/health/ready');
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.json<{ status: string }>().status, 'ok');
    });

    it('GET /.well-known/jwks.json publishes no key for HMAC, and only the public signing key for key pairs', async () => {
      const response = await get(t.app, '/.well-known/jwks.json');
      assert.equal(response.statusCode, 200);
      const { keys } = response.json<{ keys: Record<string, string>[] }>();
      if (isHmacAlgorithm(t.settings.jwt.algorithm)) assert.deepEqual(keys, []);
      else {
        assert.equal(keys.length, 1);
        assert.equal(keys[0]?.alg, t.settings.jwt.algorithm);
        assert.equal(keys[0]?.use, 'sig');
        for (const privateMember of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) assert.equal(keys[0]?.[privateMember], undefined, privateMember);
      }
      assert.ok(!response.body.includes(t.settings.jwt.accessSecret));
      assert.ok(!response.body.includes(t.settings.jwt.refreshSecret));
    });

    it('an unknown route answers 404 {"detail":"Not Found","code":"not_found"}', async () => {
      for (const [method, url] of [
        ['GET', '/no/such/route'],
        ['POST', '/auth/nothing'],
        ['DELETE', '/users'],
      ] as const) {
        const response = await send(t.app, method, url);
        assert.equal(response.statusCode, 404, `${method} ${url}: ${response.body}`);
        assert.deepEqual(response.json(), { detail: 'Not Found', code: 'not_found' });
      }
    });

    it('malformed JSON answers 422 json_invalid, not 500', async () => {
      for (const url of ['/auth/login', '/auth/register', '/auth/refresh']) {
        const response = await raw(t.app, 'POST', url, '{"email": "a@example.com", ', { 'content-type': 'application/json' });
        const detail = assertValidation(response);
        assert.ok(
          detail.some((item) => item.type === 'json_invalid'),
          `${url}: ${response.body}`,
        );
      }
    });

    it('a Content-Type other than JSON or form answers 415 unsupported_media_type', async () => {
      for (const contentType of ['text/plain', 'application/xml']) {
        const response = await raw(t.app, 'POST', '/auth/login', '{"email":"a@example.com","password":"whatever-pw"}', {
          'content-type': contentType,
        });
        assert.equal(response.statusCode, 415, `${contentType}: ${response.body}`);
        const body = response.json<{ detail: string; code: string }>();
        assert.deepEqual(Object.keys(body).sort(), ['code', 'detail']);
        assert.equal(body.code, 'unsupported_media_type');
        assert.ok(body.detail.length > 0);
      }
    });

    it('a JSON body over 16 KiB on /auth/login answers 413 payload_too_large', async () => {
      const payload = JSON.stringify({ email: 'big@example.com', password: 'x'.repeat(17 * 1024) });
      const response = await raw(t.app, 'POST', '/auth/login', payload, { 'content-type': 'application/json' });
      assert.equal(response.statusCode, 413, response.body);
      assert.deepEqual(response.json(), { detail: 'Request body is too large', code: 'payload_too_large' });
    });

    it('an empty JSON body answers 422', async () => {
      for (const url of ['/auth/login', '/auth/register', '/auth/refresh']) {
        const response = await raw(t.app, 'POST', url, '', { 'content-type': 'application/json' });
        assertValidation(response);
      }
    });

    it('a JSON array or scalar as the body answers 422', async () => {
      for (const payload of ['[]', '[{"email":"a@example.com","password":"whatever-pw"}]', '"text"', '42', 'null']) {
        const response = await raw(t.app, 'POST', '/auth/login', payload, { 'content-type': 'application/json' });
        assertValidation(response);
      }
    });

    it('GET /openapi.json is an OpenAPI 3 document of every route', async () => {
      const response = await get(t.app, '/openapi.json');
      assert.equal(response.statusCode, 200);
      const doc = response.json<{
        openapi: string;
        paths: Record<string, Record<string, { security?: unknown; requestBody?: { content?: Record<string, unknown> } }>>;
        components?: { securitySchemes?: Record<string, { type?: string; flows?: { password?: { tokenUrl?: string } } }> };
      }>();
      assert.match(doc.openapi, /^3\./);
      const expected: Record<string, string[]> = {
        '/ping': ['get'],
        '/health/ready': ['get'],
        '/.well-known/jwks.json': ['get'],
        '/auth/register': ['post'],
        '/register': ['post'],
        '/auth/login': ['post'],
        '/login': ['post'],
        '/auth/refresh': ['post'],
        '/auth/logout': ['post'],
        '/users/me': ['get', 'patch'],
        '/users/me/status': ['get'],
        '/users/me/deactivate': ['put'],
        '/tasks': ['get', 'post'],
        '/tasks/{id}': ['get', 'patch', 'delete'],
      };
      for (const [path, methods] of Object.entries(expected)) {
        const item = doc.paths[path];
        assert.ok(item !== undefined, `${path} missing from ${Object.keys(doc.paths).join(', ')}`);
        for (const method of methods) assert.ok(item[method] !== undefined, `${method.toUpperCase()} ${path} missing`);
      }
      const scheme = doc.components?.securitySchemes?.OAuth2PasswordBearer;
      assert.ok(scheme !== undefined, 'OAuth2PasswordBearer security scheme missing');
      assert.equal(scheme.type, 'oauth2');
      assert.equal(scheme.flows?.password?.tokenUrl, '/auth/login');
      // Protected routes name the scheme, so Swagger UI sends the token.
      assert.deepEqual(doc.paths['/users/me']?.get?.security, [{ OAuth2PasswordBearer: [] }]);
      assert.deepEqual(doc.paths['/tasks']?.post?.security, [{ OAuth2PasswordBearer: [] }]);
      const loginContent = doc.paths['/auth/login']?.post?.requestBody?.content ?? {};
      assert.ok('application/json' in loginContent, JSON.stringify(loginContent));
      assert.ok('application/x-www-form-urlencoded' in loginContent, JSON.stringify(loginContent));
      // No secret in the document.
      assert.ok(!response.body.includes(t.settings.jwt.accessSecret));
    });

    it('GET /docs serves the Swagger UI HTML (after a redirect, if any)', async () => {
      let url = '/docs';
      let response = await get(t.app, url);
      for (let hops = 0; hops < 5 && response.statusCode >= 300 && response.statusCode < 400; hops += 1) {
        const location = response.headers.location;
        assert.ok(typeof location === 'string', 'redirect without Location');
        const next = new URL(location, `http://localhost${url}`);
        url = next.pathname + next.search;
        response = await get(t.app, url);
      }
      assert.equal(response.statusCode, 200, `${url}: ${response.body.slice(0, 200)}`);
      assert.match(String(response.headers['content-type']), /^text\/html/);
      assert.match(response.body, /<html/i);
    });
  });

  describe(`registration (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    it('POST /auth/register answers 201 with the user object and no password or hash', async () => {
      const credentials = newCredentials();
      const response = await post(t.app, '/auth/register', { ...credentials, full_name: 'Reg Istered' });
      assert.equal(response.statusCode, 201, response.body);
      const user = response.json<UserBody>();
      assertUserShape(user);
      assert.equal(user.email, credentials.email);
      assert.equal(user.full_name, 'Reg Istered');
      assert.equal(user.role, 'student');
      assert.equal(user.is_active, true);
      assert.ok(Math.abs(Date.parse(user.created_at) - Date.now()) < 60_000, user.created_at);
      assert.ok(!response.body.includes(credentials.password), 'the password is in the response');
      assert.doesNotMatch(response.body, /\$argon2|\$2[aby]\$|password|hash/i);
    });

    it('full_name is optional and null by default', async () => {
      const response = await post(t.app, '/auth/register', newCredentials());
      assert.equal(response.statusCode, 201, response.body);
      assert.equal(response.json<UserBody>().full_name, null);
    });

    it('the alias POST /register works the same', async () => {
      const credentials = newCredentials();
      const response = await post(t.app, '/register', credentials);
      assert.equal(response.statusCode, 201, response.body);
      const user = response.json<UserBody>();
      assertUserShape(user);
      assert.equal(user.email, credentials.email);
      assert.equal(user.role, 'student');
      assert.equal(user.is_active, true);
      // One user store: the same email on the canonical route is taken.
      assertError(await post(t.app, '/auth/register', credentials), 409, 'Email already registered', 'email_taken');
    });

    it('normalises the email, and a differently-cased duplicate answers 409 email_taken', async () => {
      const password = passwordOfLength(16);
      const response = await post(t.app, '/auth/register', { email: '  Alice@Example.COM ', password });
      assert.equal(response.statusCode, 201, response.body);
      assert.equal(response.json<UserBody>().email, 'alice@example.com');
      const again = await post(t.app, '/auth/register', { email: 'ALICE@example.com', password: passwordOfLength(20) });
      assert.equal(again.statusCode, 409, again.body);
      assert.deepEqual(again.json(), { detail: 'Email already registered', code: 'email_taken' });
      // The stored (normalised) email is what /users/me shows, and login works in any case.
      const tokens = await login(t.app, { email: 'alice@EXAMPLE.com', password });
      const me = await get(t.app, '/users/me', tokens.access_token);
      assert.equal(me.json<UserBody>().email, 'alice@example.com');
    });

    it('a role or is_active in the body never takes effect', async () => {
      const credentials = newCredentials();
      const response = await post(t.app, '/auth/register', { ...credentials, role: 'admin', is_active: false });
      assert.equal(response.statusCode, 201, response.body);
      const user = response.json<UserBody>();
      assert.equal(user.role, 'student');
      assert.equal(user.is_active, true);
      const tokens = await login(t.app, credentials);
      assert.equal(claimsOf(tokens.access_token).role, 'student');
      const me = await get(t.app, '/users/me', tokens.access_token);
      assert.equal(me.statusCode, 200, me.body);
      assert.equal(me.json<UserBody>().role, 'student');
      assert.equal(me.json<UserBody>().is_active, true);
    });

    it('an invalid email answers 422 at loc ["body","email"]', async () => {
      for (const email of ['not-an-email', 'a@', '@example.com', 'a b@example.com', '']) {
        const response = await post(t.app, '/auth/register', { email, password: passwordOfLength(16) });
        assertValidation(response, { loc: ['body', 'email'] });
      }
    });

    it('a password of 7 characters answers 422 string_too_short', async () => {
      const response = await post(t.app, '/auth/register', { email: newCredentials().email, password: passwordOfLength(7) });
      assertValidation(response, { loc: ['body', 'password'], type: 'string_too_short' });
    });

    it('a password of 129 characters answers 422 string_too_long', async () => {
      const response = await post(t.app, '/auth/register', { email: newCredentials().email, password: passwordOfLength(129) });
      assertValidation(response, { loc: ['body', 'password'], type: 'string_too_long' });
    });

    it('a very common password answers 422 at loc ["body","password"]', async () => {
      for (const password of ['password123', 'Password123', 'qwertyuiop']) {
        const response = await post(t.app, '/auth/register', { email: newCredentials().email, password });
        assertValidation(response, { loc: ['body', 'password'] });
      }
    });

    it('a missing field answers 422 with loc ["body","password"] and type missing', async () => {
      const response = await post(t.app, '/auth/register', { email: newCredentials().email });
      assertValidation(response, { loc: ['body', 'password'], type: 'missing' });
      const noEmail = await post(t.app, '/auth/register', { password: passwordOfLength(16) });
      assertValidation(noEmail, { loc: ['body', 'email'], type: 'missing' });
    });

    it('a rejected registration creates no account', async () => {
      const credentials = newCredentials();
      assertValidation(await post(t.app, '/auth/register', { email: credentials.email, password: 'password123' }));
      // The email is still free.
      assert.equal((await post(t.app, '/auth/register', credentials)).statusCode, 201);
    });

    it('a password of exactly 128 characters is accepted, and logs in', async () => {
      const credentials = { email: newCredentials().email, password: passwordOfLength(128) };
      assert.equal(credentials.password.length, 128);
      const response = await post(t.app, '/auth/register', credentials);
      assert.equal(response.statusCode, 201, response.body);
      await login(t.app, credentials);
    });
  });

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
          const response = await form(t.app, url, { username: user.email, password: user.password, ...extra });
          const tokens = assertTokenResponse(response);
          assert.equal(claimsOf(tokens.access_token).sub, String(user.id), `${url} ${JSON.stringify(extra)}`);
        }
      }
    });

    it('the form with a wrong password answers the same 401 as JSON', async () => {
      const response = await form(t.app, '/auth/login', { username: user.email, password: 'wrong-password-1', grant_type: 'password' });
      assertError(response, 401, INVALID_CREDENTIALS, 'invalid_credentials');
    });

    it('the form with a grant_type other than password answers 422', async () => {
      const response = await form(t.app, '/auth/login', { username: user.email, password: user.password, grant_type: 'client_credentials' });
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
        assert.equal(JSON.parse(Buffer.from(tokens.access_token.split('.')[0] ?? '', 'base64url').toString()).alg, t.settings.jwt.algorithm);
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
    let user: { email: string; password: string; id: number; tokens: Tokens };
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
      for (const token of ['not-a-jwt', 'a.b.c', 'a.b', `${user.tokens.access_token}.extra`, '...', `${header}.${payload}`, `${header}.${payload}.`]) {
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

  describe(`refresh (${backend})`, () => {
    let t: TestApp;
    let user: { email: string; password: string; id: number; tokens: Tokens };
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
      assertTokenRejected(await post(t.app, '/auth/refresh', { refresh_token: user.tokens.refresh_token }), INVALID_REFRESH, 'invalid_token');
      // Logging out again with the same token is refused too.
      assertTokenRejected(await post(t.app, '/auth/logout', undefined, user.tokens.access_token), 'Token has been revoked', 'token_revoked');
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

      assertError(await post(t.app, '/auth/login', { email: user.email, password: user.password }), 403, 'Account is disabled', 'account_disabled');
      assertError(await form(t.app, '/login', { username: user.email, password: user.password }), 403, 'Account is disabled', 'account_disabled');
      assertError(await post(t.app, '/auth/login', { email: user.email, password: `${user.password}x` }), 401, INVALID_CREDENTIALS, 'invalid_credentials');
      // Registering the email again is not a way back in.
      assertError(await post(t.app, '/auth/register', { email: user.email, password: user.password }), 409, 'Email already registered', 'email_taken');
    });

    it("deactivation affects only that user", async () => {
      const alice = await signUp(t.app);
      const bob = await signUp(t.app);
      assert.equal((await send(t.app, 'PUT', '/users/me/deactivate', undefined, alice.tokens.access_token)).statusCode, 200);
      assert.equal((await get(t.app, '/users/me', bob.tokens.access_token)).statusCode, 200);
      await login(t.app, bob);
    });
  });

  describe(`the signed-in user (${backend})`, () => {
    let t: TestApp;
    let user: { email: string; password: string; id: number };
    let tokens: Tokens;
    let registered: UserBody;
    before(async () => {
      t = await createTestApp(backend);
      const credentials = newCredentials();
      const response = await post(t.app, '/auth/register', { ...credentials, full_name: 'Original Name' });
      assert.equal(response.statusCode, 201, response.body);
      registered = response.json<UserBody>();
      user = { ...credentials, id: registered.id };
      tokens = await login(t.app, user);
    });
    after(() => t.close());

    it('GET /users/me answers exactly the user object', async () => {
      const response = await get(t.app, '/users/me', tokens.access_token);
      assert.equal(response.statusCode, 200, response.body);
      assert.deepEqual(response.json(), {
        id: user.id,
        email: user.email,
        full_name: 'Original Name',
        role: 'student',
        is_active: true,
        created_at: registered.created_at,
      });
      assert.doesNotMatch(response.body, /password|hash|\$argon2/i);
    });

    it('GET /users/me/status answers {email, is_active, message}', async () => {
      const response = await get(t.app, '/users/me/status', tokens.access_token);
      assert.equal(response.statusCode, 200, response.body);
      assert.deepEqual(response.json(), {
        email: user.email,
        is_active: true,
        message: `Hello ${user.email}! Your account is active.`,
      });
    });

    it('PATCH /users/me {"full_name"} answers the updated user, and the change persists', async () => {
      const response = await send(t.app, 'PATCH', '/users/me', { full_name: 'New Name' }, tokens.access_token);
      assert.equal(response.statusCode, 200, response.body);
      assert.deepEqual(response.json(), { ...registered, full_name: 'New Name' });
      const me = await get(t.app, '/users/me', tokens.access_token);
      assert.equal(me.json<UserBody>().full_name, 'New Name');
    });

    it('PATCH /users/me ignores role, is_active and email', async () => {
      const response = await send(
        t.app,
        'PATCH',
        '/users/me',
        { full_name: 'Still Student', role: 'admin', is_active: false, email: 'other@example.com' },
        tokens.access_token,
      );
      assert.ok(response.statusCode === 200 || response.statusCode === 422, response.body);
      const me = await get(t.app, '/users/me', tokens.access_token);
      assert.equal(me.statusCode, 200, me.body);
      const body = me.json<UserBody>();
      assert.equal(body.role, 'student');
      assert.equal(body.is_active, true);
      assert.equal(body.email, user.email);
    });

    it('PATCH /users/me {"full_name": 5} answers 422', async () => {
      const before = (await get(t.app, '/users/me', tokens.access_token)).json<UserBody>();
      assertValidation(await send(t.app, 'PATCH', '/users/me', { full_name: 5 }, tokens.access_token), {
        loc: ['body', 'full_name'],
      });
      assert.deepEqual((await get(t.app, '/users/me', tokens.access_token)).json(), before);
    });
  });

  describe(`tasks (${backend})`, () => {
    let t: TestApp;
    let alice: { id: number; tokens: Tokens };
    let bob: { id: number; tokens: Tokens };
    const aliceTasks: TaskBody[] = [];
    let bobTask: TaskBody;
    before(async () => {
      t = await createTestApp(backend);
      alice = await signUp(t.app);
      bob = await signUp(t.app);
    });
    after(() => t.close());

    it('POST /tasks answers 201 with the task; description null and done false by default', async () => {
      const response = await post(t.app, '/tasks', { title: 'First' }, alice.tokens.access_token);
      assert.equal(response.statusCode, 201, response.body);
      const task = response.json<TaskBody>();
      assertTaskShape(task);
      assert.equal(task.title, 'First');
      assert.equal(task.description, null);
      assert.equal(task.done, false);
      assert.equal(task.updated_at, task.created_at);
      assert.ok(Math.abs(Date.parse(task.created_at) - Date.now()) < 60_000);
      aliceTasks.push(task);

      const full = await post(t.app, '/tasks', { title: 'Second', description: 'with text', done: true }, alice.tokens.access_token);
      assert.equal(full.statusCode, 201, full.body);
      const second = full.json<TaskBody>();
      assertTaskShape(second);
      assert.deepEqual(
        { title: second.title, description: second.description, done: second.done },
        { title: 'Second', description: 'with text', done: true },
      );
      assert.notEqual(second.id, task.id);
      aliceTasks.push(second);

      const third = await post(t.app, '/tasks', { title: 'Third' }, alice.tokens.access_token);
      assert.equal(third.statusCode, 201, third.body);
      aliceTasks.push(third.json<TaskBody>());

      const bobs = await post(t.app, '/tasks', { title: "Bob's secret" }, bob.tokens.access_token);
      assert.equal(bobs.statusCode, 201, bobs.body);
      bobTask = bobs.json<TaskBody>();
    });

    it("GET /tasks lists only the caller's tasks, in creation order, with X-Total-Count", async () => {
      const response = await get(t.app, '/tasks', alice.tokens.access_token);
      assert.equal(response.statusCode, 200, response.body);
      assert.deepEqual(response.json(), aliceTasks);
      assert.equal(response.headers['x-total-count'], '3');
      assert.ok(!response.body.includes("Bob's secret"));

      const bobs = await get(t.app, '/tasks', bob.tokens.access_token);
      assert.equal(bobs.statusCode, 200, bobs.body);
      assert.deepEqual(bobs.json(), [bobTask]);
      assert.equal(bobs.headers['x-total-count'], '1');
    });

    it('GET /tasks?limit=1&offset=1 paginates; X-Total-Count stays the total', async () => {
      const response = await get(t.app, '/tasks?limit=1&offset=1', alice.tokens.access_token);
      assert.equal(response.statusCode, 200, response.body);
      assert.deepEqual(response.json(), [aliceTasks[1]]);
      assert.equal(response.headers['x-total-count'], '3');
      const rest = await get(t.app, '/tasks?limit=2&offset=1', alice.tokens.access_token);
      assert.deepEqual(rest.json(), aliceTasks.slice(1));
      const beyond = await get(t.app, '/tasks?offset=10', alice.tokens.access_token);
      assert.equal(beyond.statusCode, 200);
      assert.deepEqual(beyond.json(), []);
      assert.equal(beyond.headers['x-total-count'], '3');
    });

    it('limit=0, limit=abc and a negative offset answer 422', async () => {
      assertValidation(await get(t.app, '/tasks?limit=0', alice.tokens.access_token), { loc: ['query', 'limit'] });
      assertValidation(await get(t.app, '/tasks?limit=abc', alice.tokens.access_token), { loc: ['query', 'limit'] });
      assertValidation(await get(t.app, '/tasks?offset=-1', alice.tokens.access_token), { loc: ['query', 'offset'] });
    });

    it('GET /tasks/{id} answers the owner the task', async () => {
      const task = aliceTasks[0];
      assert.ok(task !== undefined);
      const response = await get(t.app, `/tasks/${task.id}`, alice.tokens.access_token);
      assert.equal(response.statusCode, 200, response.body);
      assert.deepEqual(response.json(), task);
    });

    it('PATCH /tasks/{id} {"done":true} updates only what it names', async () => {
      const task = aliceTasks[0];
      assert.ok(task !== undefined);
      const response = await send(t.app, 'PATCH', `/tasks/${task.id}`, { done: true }, alice.tokens.access_token);
      assert.equal(response.statusCode, 200, response.body);
      const updated = response.json<TaskBody>();
      assertTaskShape(updated);
      assert.deepEqual({ ...updated, updated_at: task.updated_at }, { ...task, done: true });
      assert.ok(Date.parse(updated.updated_at) >= Date.parse(task.updated_at));
      assert.deepEqual((await get(t.app, `/tasks/${task.id}`, alice.tokens.access_token)).json(), updated);
      aliceTasks[0] = updated;

      const renamed = await send(t.app, 'PATCH', `/tasks/${task.id}`, { title: 'Renamed', description: 'now described' }, alice.tokens.access_token);
      assert.equal(renamed.statusCode, 200, renamed.body);
      const body = renamed.json<TaskBody>();
      assert.deepEqual({ title: body.title, description: body.description, done: body.done }, { title: 'Renamed', description: 'now described', done: true });
      aliceTasks[0] = body;
    });

    it("another user's task answers 404 Task not found for GET, PATCH and DELETE, and stays unchanged", async () => {
      const task = aliceTasks[1];
      assert.ok(task !== undefined);
      const notFound = { detail: 'Task not found', code: 'not_found' };
      const read = await get(t.app, `/tasks/${task.id}`, bob.tokens.access_token);
      assert.equal(read.statusCode, 404, read.body);
      assert.deepEqual(read.json(), notFound);
      const change = await send(t.app, 'PATCH', `/tasks/${task.id}`, { title: 'hijacked', done: false }, bob.tokens.access_token);
      assert.equal(change.statusCode, 404, change.body);
      assert.deepEqual(change.json(), notFound);
      const remove = await send(t.app, 'DELETE', `/tasks/${task.id}`, undefined, bob.tokens.access_token);
      assert.equal(remove.statusCode, 404, remove.body);
      assert.deepEqual(remove.json(), notFound);
      // Nothing of the task leaked, and nothing changed.
      for (const response of [read, change, remove]) assert.ok(!response.body.includes(task.title));
      const after = await get(t.app, `/tasks/${task.id}`, alice.tokens.access_token);
      assert.equal(after.statusCode, 200, after.body);
      assert.deepEqual(after.json(), task);
    });

    it('a task id that does not exist answers 404 Task not found', async () => {
      const response = await get(t.app, '/tasks/999999', alice.tokens.access_token);
      assert.equal(response.statusCode, 404, response.body);
      assert.deepEqual(response.json(), { detail: 'Task not found', code: 'not_found' });
    });

    it('DELETE /tasks/{id} answers 204, then GET answers 404', async () => {
      const task = aliceTasks[2];
      assert.ok(task !== undefined);
      const response = await send(t.app, 'DELETE', `/tasks/${task.id}`, undefined, alice.tokens.access_token);
      assert.equal(response.statusCode, 204, response.body);
      assert.equal(response.body, '');
      const gone = await get(t.app, `/tasks/${task.id}`, alice.tokens.access_token);
      assert.equal(gone.statusCode, 404, gone.body);
      assert.deepEqual(gone.json(), { detail: 'Task not found', code: 'not_found' });
      const again = await send(t.app, 'DELETE', `/tasks/${task.id}`, undefined, alice.tokens.access_token);
      assert.equal(again.statusCode, 404, again.body);
      aliceTasks.pop();
      const list = await get(t.app, '/tasks', alice.tokens.access_token);
      assert.deepEqual(list.json(), aliceTasks);
      assert.equal(list.headers['x-total-count'], String(aliceTasks.length));
    });

    it('/tasks/abc answers 422 for GET, PATCH and DELETE', async () => {
      for (const method of ['GET', 'PATCH', 'DELETE'] as const) {
        const response = await send(t.app, method, '/tasks/abc', method === 'PATCH' ? { done: true } : undefined, alice.tokens.access_token);
        assertValidation(response, { loc: ['path', 'id'] });
      }
    });

    it('a non-string title answers 422, not a coerced string', async () => {
      const response = await post(t.app, '/tasks', { title: 5 }, alice.tokens.access_token);
      // Should the server accept it, remove the task again so that the later tests see the expected list.
      if (response.statusCode === 201) await send(t.app, 'DELETE', `/tasks/${response.json<TaskBody>().id}`, undefined, alice.tokens.access_token);
      assertValidation(response, { loc: ['body', 'title'] });
    });

    it('an empty or missing title answers 422', async () => {
      assertValidation(await post(t.app, '/tasks', { title: '' }, alice.tokens.access_token), { loc: ['body', 'title'] });
      assertValidation(await post(t.app, '/tasks', { description: 'no title' }, alice.tokens.access_token), {
        loc: ['body', 'title'],
        type: 'missing',
      });
      const task = aliceTasks[0];
      assert.ok(task !== undefined);
      assertValidation(await send(t.app, 'PATCH', `/tasks/${task.id}`, { title: '' }, alice.tokens.access_token), { loc: ['body', 'title'] });
      // Nothing was created by the refused requests.
      const list = await get(t.app, '/tasks', alice.tokens.access_token);
      assert.equal(list.headers['x-total-count'], String(aliceTasks.length));
    });

    it('without a token every task route answers 401 Not authenticated', async () => {
      const task = aliceTasks[0];
      assert.ok(task !== undefined);
      assertNotAuthenticated(await get(t.app, '/tasks'));
      assertNotAuthenticated(await post(t.app, '/tasks', { title: 'anonymous' }));
      assertNotAuthenticated(await get(t.app, `/tasks/${task.id}`));
      assertNotAuthenticated(await send(t.app, 'PATCH', `/tasks/${task.id}`, { done: false }));
      assertNotAuthenticated(await send(t.app, 'DELETE', `/tasks/${task.id}`));
      assert.equal((await get(t.app, `/tasks/${task.id}`, alice.tokens.access_token)).statusCode, 200);
    });

    it('a JSON body with text/plain on POST /tasks answers 415, not 500', async () => {
      const response = await t.app.inject({
        method: 'POST',
        url: '/tasks',
        payload: '{"title":"plain"}',
        headers: { 'content-type': 'text/plain', authorization: `Bearer ${alice.tokens.access_token}` },
      });
      assert.equal(response.statusCode, 415, response.body);
      assert.equal(response.json<{ code: string }>().code, 'unsupported_media_type');
    });
  });
}
