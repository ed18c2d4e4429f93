import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { get, post, send, signUp, type Tokens } from '../helpers/client.js';

describe('logs never contain a token or a password', () => {
  let t: TestApp;
  let logText = '';
  before(async () => {
    const stream = new PassThrough();
    stream.on('data', (chunk: Buffer) => (logText += chunk.toString()));
    t = await createTestApp('sqlite', { LOG_LEVEL: 'trace' }, { logStream: stream });
  });
  after(() => t.close());

  it('a full flow logs requests, but none of the secrets it used', async () => {
    const secrets: string[] = [];
    const user = await signUp(t.app);
    secrets.push(user.password, user.tokens.access_token, user.tokens.refresh_token);
    const form = await t.app.inject({
      method: 'POST',
      url: '/login',
      payload: new URLSearchParams({ username: user.email, password: user.password }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: 'session=cookie-secret-value' },
    });
    const formTokens = form.json<Tokens>();
    secrets.push(formTokens.access_token, formTokens.refresh_token, 'cookie-secret-value');
    const refreshed = (await post(t.app, '/auth/refresh', { refresh_token: formTokens.refresh_token })).json<Tokens>();
    secrets.push(refreshed.access_token, refreshed.refresh_token);
    await get(t.app, '/users/me', refreshed.access_token);
    await post(t.app, '/auth/login', { email: user.email, password: 'Wrong-but-secret-Passw0rd' });
    secrets.push('Wrong-but-secret-Passw0rd');
    const newPassword = 'Brand-New-Secret-Passphrase-9';
    await post(t.app, '/auth/password/change', { current_password: user.password, new_password: newPassword }, refreshed.access_token);
    secrets.push(newPassword);
    await post(t.app, '/auth/refresh', { refresh_token: 'not-a-token.but-secret-looking.value' });
    secrets.push('not-a-token.but-secret-looking.value');
    await send(t.app, 'DELETE', '/users/me', { password: newPassword }, refreshed.access_token);

    assert.ok(logText.includes('"url":"/auth/login"'), 'the flow was logged');
    assert.equal(logText.split('\n').filter((line) => line.includes('request completed')).length, 9);
    for (const secret of secrets) assert.ok(!logText.includes(secret), `log contains a secret: ${secret.slice(0, 12)}…`);
    assert.ok(!logText.includes('$argon2'), 'log contains a password hash');
    assert.ok(!/eyJ[\w-]+\.eyJ/.test(logText), 'log contains something shaped like a JWT');
  });
});

describe('security headers and CORS', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp('sqlite');
  });
  after(() => t.close());

  it('every response carries the helmet headers, with frames forbidden and no HSTS outside production', async () => {
    for (const response of [await get(t.app, '/ping'), await get(t.app, '/users/me'), await get(t.app, '/nowhere')]) {
      assert.equal(response.headers['x-content-type-options'], 'nosniff');
      assert.match(String(response.headers['content-security-policy']), /frame-ancestors 'none'/);
      assert.match(String(response.headers['content-security-policy']), /default-src 'self'/);
      assert.equal(response.headers['x-frame-options'], 'SAMEORIGIN');
      assert.equal(response.headers['strict-transport-security'], undefined);
    }
  });

  it('without CORS_ORIGINS, no origin is allowed to read answers', async () => {
    const preflight = await t.app.inject({
      method: 'OPTIONS',
      url: '/auth/login',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(preflight.headers['access-control-allow-origin'], undefined);
    const simple = await t.app.inject({ method: 'GET', url: '/ping', headers: { origin: 'https://evil.example' } });
    assert.equal(simple.headers['access-control-allow-origin'], undefined);
  });
});

describe('CORS_ORIGINS and production headers', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp('sqlite', {
      NODE_ENV: 'production',
      JWT_SECRET: randomBytes(32).toString('hex'),
      JWT_REFRESH_SECRET: randomBytes(32).toString('hex'),
      CORS_ORIGINS: 'https://app.example.com, http://localhost:5173',
    });
  });
  after(() => t.close());

  it('allows exactly the listed origins', async () => {
    for (const origin of ['https://app.example.com', 'http://localhost:5173']) {
      const preflight = await t.app.inject({
        method: 'OPTIONS',
        url: '/auth/login',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
      });
      assert.equal(preflight.statusCode, 204);
      assert.equal(preflight.headers['access-control-allow-origin'], origin);
      assert.equal(preflight.headers['access-control-allow-credentials'], 'true');
    }
    const other = await t.app.inject({
      method: 'OPTIONS',
      url: '/auth/login',
      headers: { origin: 'https://app.example.com.evil.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  });

  it('sends HSTS in production', async () => {
    assert.match(String((await get(t.app, '/ping')).headers['strict-transport-security']), /max-age=31536000/);
  });
});
