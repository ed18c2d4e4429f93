/**
 * gatepass as a plugin: mounted with a prefix into a host Fastify app that has routes, an error
 * handler and a not-found answer of its own, and driven over a real socket. The core flow of API.md
 * works under the prefix, cookie mode scopes its cookie to `<prefix>/auth`, and the host's own
 * answers are untouched.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { loadSettings } from '../../src/config/settings.js';
import { gatepass } from '../../src/http/plugin.js';
import { REPO_ROOT, startInstance, type Instance } from '../helpers/instances.js';

const PREFIX = '/auth-api';
const CREDENTIALS = { email: 'host.user@example.com', password: 'Mounted-Plugin-Passphrase-1' };

describe('gatepass registered into a host Fastify app under a prefix', () => {
  let host: FastifyInstance;
  let base: string;
  let dir: string;
  let closedByHost = false;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'gatepass-plugin-'));
    const settings = loadSettings(
      {
        NODE_ENV: 'test',
        JWT_SECRET: randomBytes(32).toString('hex'),
        JWT_REFRESH_SECRET: randomBytes(32).toString('hex'),
        DATABASE_URL: 'sqlite:./data/test.db',
        LOGIN_RATE_LIMIT_PER_MINUTE: '0',
        ACCOUNT_LOCKOUT_THRESHOLD: '0',
        LOG_LEVEL: 'silent',
      },
      { cwd: dir },
    );
    host = Fastify();
    host.setErrorHandler((_error, _request, reply) => reply.code(418).send({ host: 'error handler' }));
    host.setNotFoundHandler((_request, reply) => reply.code(404).send({ host: 'not found' }));
    host.get('/hello', async () => ({ host: 'hello' }));
    host.get('/boom', async () => {
      throw new Error('host failure');
    });
    await host.register(gatepass, { settings, prefix: PREFIX, cwd: dir });
    host.addHook('onClose', async () => {
      closedByHost = true;
    });
    base = await host.listen({ host: '127.0.0.1', port: 0 });
  });

  after(async () => {
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function call(
    method: string,
    url: string,
    options: { body?: unknown; token?: string; headers?: Record<string, string> } = {},
  ): Promise<Response> {
    return fetch(`${base}${url}`, {
      method,
      headers: {
        ...(options.body !== undefined && { 'content-type': 'application/json' }),
        ...(options.token !== undefined && { authorization: `Bearer ${options.token}` }),
        ...options.headers,
      },
      ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
    });
  }

  async function login(headers: Record<string, string> = {}): Promise<Response> {
    const response = await call('POST', `${PREFIX}/auth/login`, { body: CREDENTIALS, headers });
    assert.equal(response.status, 200);
    return response;
  }

  it('decorates the host with the services', () => {
    assert.equal(typeof host.gatepass.tokens.verifyAccessToken, 'function');
  });

  it('runs register, login, /users/me, refresh, logout, and refuses the token after', async () => {
    const registered = await call('POST', `${PREFIX}/auth/register`, { body: CREDENTIALS });
    assert.equal(registered.status, 201);
    assert.equal(((await registered.json()) as { email: string }).email, CREDENTIALS.email);

    const first = (await (await login()).json()) as { access_token: string; refresh_token: string };
    const me = await call('GET', `${PREFIX}/users/me`, { token: first.access_token });
    assert.equal(me.status, 200);
    assert.equal(((await me.json()) as { email: string }).email, CREDENTIALS.email);

    const refreshed = await call('POST', `${PREFIX}/auth/refresh`, { body: { refresh_token: first.refresh_token } });
    assert.equal(refreshed.status, 200);
    const pair = (await refreshed.json()) as { access_token: string; refresh_token: string };
    assert.notEqual(pair.refresh_token, first.refresh_token);

    assert.equal((await call('POST', `${PREFIX}/auth/logout`, { token: pair.access_token })).status, 204);
    const afterLogout = await call('GET', `${PREFIX}/users/me`, { token: pair.access_token });
    assert.equal(afterLogout.status, 401);
    assert.deepEqual(await afterLogout.json(), { detail: 'Token has been revoked', code: 'token_revoked' });
    assert.equal(afterLogout.headers.get('www-authenticate'), 'Bearer error="invalid_token"');
  });

  it("answers gatepass's errors under the prefix: 401, 422, an unknown route", async () => {
    const anonymous = await call('GET', `${PREFIX}/users/me`);
    assert.equal(anonymous.status, 401);
    assert.deepEqual(await anonymous.json(), { detail: 'Not authenticated', code: 'not_authenticated' });
    const invalid = await call('POST', `${PREFIX}/auth/register`, { body: { email: 'not-an-email', password: 'x' } });
    assert.equal(invalid.status, 422);
    assert.equal(((await invalid.json()) as { code: string }).code, 'validation_error');
    const missing = await call('GET', `${PREFIX}/nowhere`);
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { detail: 'Not Found', code: 'not_found' });
    assert.match(String(missing.headers.get('content-security-policy')), /frame-ancestors 'none'/);
  });

  it('scopes the refresh cookie to <prefix>/auth and refreshes and logs out with it', async () => {
    const cookieMode = { 'x-gatepass-cookie': '1' };
    const response = await login(cookieMode);
    const setCookie = response.headers.getSetCookie().find((cookie) => cookie.startsWith('gatepass_refresh='));
    assert.ok(setCookie !== undefined, 'no refresh cookie');
    assert.match(setCookie, /Path=\/auth-api\/auth(;|$)/);
    assert.match(setCookie, /HttpOnly/);
    const body = (await response.json()) as { access_token: string; refresh_token?: string };
    assert.equal(body.refresh_token, undefined);

    const cookie = setCookie.split(';')[0]!;
    const refreshed = await call('POST', `${PREFIX}/auth/refresh`, { headers: { ...cookieMode, cookie } });
    assert.equal(refreshed.status, 200);
    const rotated = refreshed.headers.getSetCookie().find((value) => value.startsWith('gatepass_refresh='));
    assert.ok(rotated !== undefined && rotated !== setCookie);
    assert.match(rotated, /Path=\/auth-api\/auth(;|$)/);
    const { access_token: access } = (await refreshed.json()) as { access_token: string };

    const logout = await call('POST', `${PREFIX}/auth/logout`, {
      token: access,
      headers: { ...cookieMode, cookie: rotated.split(';')[0]! },
    });
    assert.equal(logout.status, 204);
    const cleared = logout.headers.getSetCookie().find((value) => value.startsWith('gatepass_refresh='));
    assert.ok(cleared !== undefined);
    assert.match(cleared, /Path=\/auth-api\/auth(;|$)/);
    assert.match(cleared, /Expires=Thu, 01 Jan 1970/);
  });

  it('serves its docs under the prefix, naming its own routes with the prefix', async () => {
    const document = (await (await call('GET', `${PREFIX}/openapi.json`)).json()) as {
      paths: Record<string, unknown>;
      components: { securitySchemes: { OAuth2PasswordBearer: { flows: { password: { tokenUrl: string } } } } };
    };
    assert.ok(`${PREFIX}/auth/login` in document.paths);
    assert.ok(!('/hello' in document.paths), "the host's routes are not gatepass's to document");
    assert.equal(document.components.securitySchemes.OAuth2PasswordBearer.flows.password.tokenUrl, `${PREFIX}/auth/login`);
    assert.equal((await call('GET', `${PREFIX}/docs`)).status, 200);
    assert.equal((await call('GET', `${PREFIX}/ping`)).status, 200);
  });

  it("leaves the host's routes, error handler and not-found answer alone", async () => {
    const hello = await call('GET', '/hello');
    assert.equal(hello.status, 200);
    assert.deepEqual(await hello.json(), { host: 'hello' });
    assert.equal(hello.headers.get('content-security-policy'), null, "gatepass's security headers stay on its own routes");
    const boom = await call('GET', '/boom');
    assert.equal(boom.status, 418);
    assert.deepEqual(await boom.json(), { host: 'error handler' });
    for (const url of ['/nowhere', '/auth/login', '/ping']) {
      const missing = await call('GET', url);
      assert.equal(missing.status, 404, url);
      assert.deepEqual(await missing.json(), { host: 'not found' });
    }
  });

  it('takes a prefix with a trailing slash, and closes its services when the host closes', async () => {
    const other = Fastify();
    const otherDir = mkdtempSync(path.join(tmpdir(), 'gatepass-plugin-'));
    const settings = loadSettings(
      {
        NODE_ENV: 'test',
        JWT_SECRET: randomBytes(32).toString('hex'),
        JWT_REFRESH_SECRET: randomBytes(32).toString('hex'),
        DATABASE_URL: 'sqlite:./data/test.db',
        LOG_LEVEL: 'silent',
      },
      { cwd: otherDir },
    );
    await other.register(gatepass, { settings, cwd: otherDir, prefix: '/other/' });
    assert.equal((await other.inject({ method: 'POST', url: '/other/auth/register', payload: CREDENTIALS })).statusCode, 201);
    const login = await other.inject({
      method: 'POST',
      url: '/other/auth/login',
      payload: CREDENTIALS,
      headers: { 'x-gatepass-cookie': '1' },
    });
    assert.match(String(login.headers['set-cookie']), /Path=\/other\/auth(;|$)/);
    const { database } = other.gatepass;
    await database.ping();
    await other.close();
    await assert.rejects(database.ping());
    rmSync(otherDir, { recursive: true, force: true });
    assert.equal(closedByHost, false, 'closing one app leaves another alone');
  });
});

describe('examples/mount-in-fastify as a process: its own routes beside gatepass under /auth-api', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gatepass-mount-example-'));
  let example: Instance | undefined;

  before(async () => {
    const rootExport = path.join(REPO_ROOT, 'dist', 'http', 'index.js');
    assert.ok(
      existsSync(rootExport),
      'dist/http/index.js is missing: run `npm run build` first (npm test does it); the example imports gatepass from dist/',
    );
    example = await startInstance(
      {
        JWT_SECRET: randomBytes(32).toString('hex'),
        JWT_REFRESH_SECRET: randomBytes(32).toString('hex'),
        DATABASE_URL: `sqlite:${path.join(dir, 'gatepass.db')}`,
        GATEPASS_DATA_DIR: path.join(dir, 'data'),
        OUTBOX_DIR: path.join(dir, 'outbox'),
      },
      ['--import', 'tsx', 'examples/mount-in-fastify/server.ts'],
      '/auth-api/health/ready',
    );
  });

  after(async () => {
    await example?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('signs up through /auth-api and reaches its own protected route with the token', async () => {
    const url = example?.url ?? '';
    const json = { 'content-type': 'application/json' };
    const body = JSON.stringify(CREDENTIALS);
    assert.equal((await fetch(`${url}/auth-api/auth/register`, { method: 'POST', headers: json, body })).status, 201);
    const login = await fetch(`${url}/auth-api/auth/login`, { method: 'POST', headers: json, body });
    const { access_token: token } = (await login.json()) as { access_token: string };
    const whoami = await fetch(`${url}/api/whoami`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(whoami.status, 200);
    assert.equal(((await whoami.json()) as { user: { role: string } }).user.role, 'student');
    const anonymous = await fetch(`${url}/api/whoami`);
    assert.equal(anonymous.status, 401);
    assert.deepEqual(await anonymous.json(), { detail: 'Not authenticated', code: 'not_authenticated' });
    assert.equal((await fetch(`${url}/`)).status, 200);
  });
});
