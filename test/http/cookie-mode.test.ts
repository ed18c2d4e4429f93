import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { assertError, claimsOf, get, register } from '../helpers/client.js';

interface CookieTokens {
  access_token: string;
  refresh_token?: string;
  token_type: string;
}

function refreshCookie(response: LightMyRequestResponse): { value: string; attributes: string } {
  const header = [response.headers['set-cookie']].flat().find((cookie) => cookie?.startsWith('gatepass_refresh='));
  assert.ok(header !== undefined, `no refresh cookie in ${JSON.stringify(response.headers['set-cookie'])}`);
  const [pair = '', ...attributes] = header.split(';').map((part) => part.trim());
  return { value: pair.slice('gatepass_refresh='.length), attributes: attributes.join('; ') };
}

describe('cookie mode (browser): refresh token in an HttpOnly cookie, CSRF defence', () => {
  let t: TestApp;
  let user: { email: string; password: string };
  before(async () => {
    t = await createTestApp('sqlite', { CORS_ORIGINS: 'https://app.example.com' });
    user = await register(t.app);
  });
  after(() => t.close());

  function login(how: 'query' | 'header'): Promise<LightMyRequestResponse> {
    return t.app.inject({
      method: 'POST',
      url: how === 'query' ? '/auth/login?cookie=true' : '/auth/login',
      payload: { email: user.email, password: user.password },
      headers: how === 'header' ? { 'x-gatepass-cookie': '1' } : {},
    });
  }

  function refresh(cookie: string, headers: Record<string, string>): Promise<LightMyRequestResponse> {
    return t.app.inject({ method: 'POST', url: '/auth/refresh', cookies: { gatepass_refresh: cookie }, headers });
  }

  for (const how of ['query', 'header'] as const) {
    it(`login asked by ${how} sets the cookie and leaves the refresh token out of the body`, async () => {
      const response = await login(how);
      assert.equal(response.statusCode, 200, response.body);
      const body = response.json<CookieTokens>();
      assert.equal(body.refresh_token, undefined);
      assert.equal(claimsOf(body.access_token).type, 'access');
      const cookie = refreshCookie(response);
      assert.equal(claimsOf(cookie.value).type, 'refresh');
      for (const attribute of ['Max-Age=604800', 'Path=/auth', 'HttpOnly', 'Secure', 'SameSite=Strict']) {
        assert.ok(cookie.attributes.includes(attribute), `${attribute} in ${cookie.attributes}`);
      }
    });
  }

  it('refresh reads the cookie when the custom header is sent, and rotates it', async () => {
    const first = refreshCookie(await login('query')).value;
    const response = await refresh(first, { 'x-gatepass-cookie': '1' });
    assert.equal(response.statusCode, 200, response.body);
    assert.equal(response.json<CookieTokens>().refresh_token, undefined);
    const second = refreshCookie(response).value;
    assert.notEqual(second, first);
    assert.equal(claimsOf(second).sid, claimsOf(first).sid);
    assert.equal((await get(t.app, '/users/me', response.json<CookieTokens>().access_token)).statusCode, 200);
  });

  it('accepts this server’s own origin and CORS_ORIGINS', async () => {
    for (const origin of ['http://localhost:80', 'https://app.example.com']) {
      const cookie = refreshCookie(await login('query')).value;
      assert.equal((await refresh(cookie, { 'x-gatepass-cookie': '1', origin })).statusCode, 200, origin);
    }
  });

  it('a cross-site form post can neither refresh nor log out', async () => {
    const cookie = refreshCookie(await login('query')).value;
    const formPost = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      cookies: { gatepass_refresh: cookie },
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
      payload: '',
    });
    assertError(formPost, 403, 'Requests authenticated by cookie need the header X-Gatepass-Cookie: 1', 'csrf_failed');
    const logout = await t.app.inject({ method: 'POST', url: '/auth/logout', cookies: { gatepass_refresh: cookie }, headers: { origin: 'https://evil.example' } });
    assert.equal(logout.statusCode, 401);
    // The cookie still works for its owner.
    assert.equal((await refresh(cookie, { 'x-gatepass-cookie': '1' })).statusCode, 200);
  });

  it('a script on another origin is refused even with the custom header', async () => {
    const cookie = refreshCookie(await login('query')).value;
    assertError(await refresh(cookie, { 'x-gatepass-cookie': '1', origin: 'https://evil.example' }), 403, 'Origin not allowed', 'csrf_failed');
  });

  it('logout ends the session and clears the cookie', async () => {
    const response = await login('query');
    const cookie = refreshCookie(response).value;
    const access = response.json<CookieTokens>().access_token;
    const logout = await t.app.inject({
      method: 'POST',
      url: '/auth/logout',
      cookies: { gatepass_refresh: cookie },
      headers: { authorization: `Bearer ${access}`, 'x-gatepass-cookie': '1' },
    });
    assert.equal(logout.statusCode, 204);
    const cleared = refreshCookie(logout);
    assert.equal(cleared.value, '');
    assert.match(cleared.attributes, /Expires=Thu, 01 Jan 1970/);
    assert.equal((await refresh(cookie, { 'x-gatepass-cookie': '1' })).statusCode, 401);
  });

  it('a refresh with neither body nor cookie is a 422, or a 401 when it asks for cookie mode (no session)', async () => {
    const response = await t.app.inject({ method: 'POST', url: '/auth/refresh' });
    assert.equal(response.statusCode, 422);
    assert.deepEqual(response.json<{ detail: unknown }>().detail, [{ loc: ['body', 'refresh_token'], msg: 'Field required', type: 'missing' }]);
    const browser = await t.app.inject({ method: 'POST', url: '/auth/refresh', headers: { 'x-gatepass-cookie': '1' } });
    assertError(browser, 401, 'Not authenticated', 'not_authenticated');
  });
});
