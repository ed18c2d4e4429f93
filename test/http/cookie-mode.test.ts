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

const COOKIE_MODE = { 'x-gatepass-cookie': '1' };

function refreshCookie(response: LightMyRequestResponse, name = 'gatepass_refresh'): { value: string; attributes: string } {
  const header = [response.headers['set-cookie']].flat().find((cookie) => cookie?.startsWith(`${name}=`));
  assert.ok(header !== undefined, `no refresh cookie in ${JSON.stringify(response.headers['set-cookie'])}`);
  const [pair = '', ...attributes] = header.split(';').map((part) => part.trim());
  return { value: pair.slice(name.length + 1), attributes: attributes.join('; ') };
}

function assertNoCookieSet(response: LightMyRequestResponse): void {
  assert.equal(response.headers['set-cookie'], undefined, `Set-Cookie: ${JSON.stringify(response.headers['set-cookie'])}`);
}

describe('cookie mode (browser): refresh token in an HttpOnly cookie, CSRF defence', () => {
  let t: TestApp;
  let user: { email: string; password: string };
  before(async () => {
    t = await createTestApp('sqlite', { CORS_ORIGINS: 'https://app.example.com' });
    user = await register(t.app);
  });
  after(() => t.close());

  /** A JSON login asking for cookie mode, with extra headers. */
  function login(headers: Record<string, string> = {}, url = '/auth/login'): Promise<LightMyRequestResponse> {
    return t.app.inject({
      method: 'POST',
      url,
      payload: { email: user.email, password: user.password },
      headers: { ...COOKIE_MODE, ...headers },
    });
  }

  function refresh(cookie: string, headers: Record<string, string>): Promise<LightMyRequestResponse> {
    return t.app.inject({ method: 'POST', url: '/auth/refresh', cookies: { gatepass_refresh: cookie }, headers });
  }

  /** How many sessions the user has (asked with a body-mode session of its own, made once). */
  let observer: string | undefined;
  async function sessionCount(): Promise<number> {
    observer ??= (
      await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: user.password } })
    ).json<CookieTokens>().access_token;
    const response = await get(t.app, '/auth/sessions', observer);
    assert.equal(response.statusCode, 200, response.body);
    return response.json<unknown[]>().length;
  }

  it('login with X-Gatepass-Cookie: 1 sets the cookie and leaves the refresh token out of the body', async () => {
    const response = await login();
    assert.equal(response.statusCode, 200, response.body);
    const body = response.json<CookieTokens>();
    assert.equal(body.refresh_token, undefined);
    assert.equal(claimsOf(body.access_token).type, 'access');
    const cookie = refreshCookie(response);
    assert.equal(claimsOf(cookie.value).type, 'refresh');
    for (const attribute of ['Max-Age=604800', 'Path=/auth', 'HttpOnly', 'Secure', 'SameSite=Strict']) {
      assert.ok(cookie.attributes.includes(attribute), `${attribute} in ${cookie.attributes}`);
    }
    assert.doesNotMatch(cookie.attributes, /Domain=/);
  });

  it('?cookie=true no longer asks for cookie mode: it is refused, with or without the header, and sets no cookie', async () => {
    const before = await sessionCount();
    for (const headers of [{}, COOKIE_MODE]) {
      const response = await t.app.inject({
        method: 'POST',
        url: '/auth/login?cookie=true',
        payload: { email: user.email, password: user.password },
        headers,
      });
      assert.equal(response.statusCode, 422, response.body);
      assert.deepEqual(response.json(), {
        detail: [
          {
            loc: ['query', 'cookie'],
            msg: 'Cookie mode is asked for with the header X-Gatepass-Cookie: 1, not a query parameter',
            type: 'value_error',
          },
        ],
        code: 'validation_error',
      });
      assertNoCookieSet(response);
    }
    const refreshed = await t.app.inject({ method: 'POST', url: '/auth/refresh?cookie=true', payload: { refresh_token: 'x' } });
    assert.equal(refreshed.statusCode, 422);
    assertNoCookieSet(refreshed);
    assert.equal(await sessionCount(), before, 'no session was started');
  });

  it('login in cookie mode from a foreign Origin is refused before the password is checked: no cookie, no session', async () => {
    const before = await sessionCount();
    for (const origin of ['https://evil.example', 'null', 'http://localhost:8080', 'https://localhost:80']) {
      const response = await login({ origin });
      assertError(response, 403, 'Origin not allowed', 'csrf_failed');
      assertNoCookieSet(response);
    }
    assert.equal(await sessionCount(), before);
  });

  it('login in cookie mode with a form body is refused: a form never sets the cookie', async () => {
    const before = await sessionCount();
    const form = `username=${encodeURIComponent(user.email)}&password=${encodeURIComponent(user.password)}`;
    for (const [contentType, payload] of [
      ['application/x-www-form-urlencoded', form],
      ['application/x-www-form-urlencoded; charset=UTF-8', form],
      ['text/plain', JSON.stringify({ email: user.email, password: user.password })],
      ['multipart/form-data; boundary=x', `--x\r\nContent-Disposition: form-data; name="username"\r\n\r\n${user.email}\r\n--x--\r\n`],
    ]) {
      const response = await t.app.inject({
        method: 'POST',
        url: '/auth/login',
        payload,
        headers: { ...COOKIE_MODE, 'content-type': contentType ?? '' },
      });
      assert.ok(response.statusCode >= 400 && response.statusCode < 500, `${contentType}: ${response.statusCode} ${response.body}`);
      assertNoCookieSet(response);
    }
    // The OAuth2 form itself is refused with a clear reason.
    assertError(
      await t.app.inject({
        method: 'POST',
        url: '/auth/login',
        payload: form,
        headers: { ...COOKIE_MODE, 'content-type': 'application/x-www-form-urlencoded' },
      }),
      403,
      'Cookie mode takes a JSON body or none: a form body never sets or uses the refresh cookie',
      'csrf_failed',
    );
    // Without the header the form logs in as before (Swagger UI, OAuth2 clients), in body mode: no cookie.
    const plain = await t.app.inject({
      method: 'POST',
      url: '/login',
      payload: form,
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
    });
    assert.equal(plain.statusCode, 200, plain.body);
    assert.equal(claimsOf(plain.json<CookieTokens>().refresh_token ?? '').type, 'refresh');
    assertNoCookieSet(plain);
    assert.equal(await sessionCount(), before + 1, 'only the body-mode login started a session');
  });

  it('a refresh with the token in the body that asks for cookie mode passes the same checks', async () => {
    const tokens = (
      await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: user.password } })
    ).json<CookieTokens>();
    const refused = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      payload: { refresh_token: tokens.refresh_token },
      headers: { ...COOKIE_MODE, origin: 'https://evil.example' },
    });
    assertError(refused, 403, 'Origin not allowed', 'csrf_failed');
    assertNoCookieSet(refused);
    // The token was not spent: its owner refreshes with it.
    const allowed = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      payload: { refresh_token: tokens.refresh_token },
      headers: COOKIE_MODE,
    });
    assert.equal(allowed.statusCode, 200, allowed.body);
    assert.equal(claimsOf(refreshCookie(allowed).value).sid, claimsOf(tokens.refresh_token ?? '').sid);
  });

  it('two refresh cookies in one request are refused (refresh and logout), and nothing is rotated or ended', async () => {
    const response = await login();
    const cookie = refreshCookie(response).value;
    const access = response.json<CookieTokens>().access_token;
    const planted = refreshCookie(await login()).value;
    for (const header of [
      `gatepass_refresh=${planted}; gatepass_refresh=${cookie}`,
      `a=1; gatepass_refresh=${cookie};gatepass_refresh=${cookie}`,
    ]) {
      const refused = await t.app.inject({ method: 'POST', url: '/auth/refresh', headers: { ...COOKIE_MODE, cookie: header } });
      assertError(
        refused,
        400,
        'The request carries more than one gatepass_refresh cookie; refusing to guess which is genuine',
        'duplicate_cookie',
      );
      assertNoCookieSet(refused);
      const logout = await t.app.inject({
        method: 'POST',
        url: '/auth/logout',
        headers: { ...COOKIE_MODE, cookie: header, authorization: `Bearer ${access}` },
      });
      assertError(
        logout,
        400,
        'The request carries more than one gatepass_refresh cookie; refusing to guess which is genuine',
        'duplicate_cookie',
      );
    }
    // Other cookies, and names that merely contain the refresh cookie's, are no duplicates.
    const fine = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      headers: { ...COOKIE_MODE, cookie: `x_gatepass_refresh=1; gatepass_refresh=${cookie}; gatepass_refresh_old=2` },
    });
    assert.equal(fine.statusCode, 200, fine.body);
    assert.equal((await get(t.app, '/users/me', access)).statusCode, 200, 'the refused logout ended nothing');
  });

  it('refresh reads the cookie when the custom header is sent, and rotates it', async () => {
    const first = refreshCookie(await login()).value;
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
      const cookie = refreshCookie(await login()).value;
      assert.equal((await refresh(cookie, { 'x-gatepass-cookie': '1', origin })).statusCode, 200, origin);
    }
  });

  it('a cross-site form post can neither refresh nor log out', async () => {
    const cookie = refreshCookie(await login()).value;
    const formPost = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      cookies: { gatepass_refresh: cookie },
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
      payload: '',
    });
    assertError(formPost, 403, 'Requests authenticated by cookie need the header X-Gatepass-Cookie: 1', 'csrf_failed');
    const logout = await t.app.inject({
      method: 'POST',
      url: '/auth/logout',
      cookies: { gatepass_refresh: cookie },
      headers: { origin: 'https://evil.example' },
    });
    assert.equal(logout.statusCode, 401);
    // The cookie still works for its owner.
    assert.equal((await refresh(cookie, { 'x-gatepass-cookie': '1' })).statusCode, 200);
  });

  it('a script on another origin is refused even with the custom header', async () => {
    const cookie = refreshCookie(await login()).value;
    assertError(
      await refresh(cookie, { 'x-gatepass-cookie': '1', origin: 'https://evil.example' }),
      403,
      'Origin not allowed',
      'csrf_failed',
    );
  });

  it('refresh and logout by cookie with a form body are refused even with the header', async () => {
    const response = await login();
    const cookie = refreshCookie(response).value;
    const access = response.json<CookieTokens>().access_token;
    const form = { ...COOKIE_MODE, 'content-type': 'application/x-www-form-urlencoded' };
    const detail = 'Cookie mode takes a JSON body or none: a form body never sets or uses the refresh cookie';
    const refreshed = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      cookies: { gatepass_refresh: cookie },
      headers: form,
      payload: '',
    });
    assertError(refreshed, 403, detail, 'csrf_failed');
    assertNoCookieSet(refreshed);
    const logout = await t.app.inject({
      method: 'POST',
      url: '/auth/logout',
      cookies: { gatepass_refresh: cookie },
      headers: { ...form, authorization: `Bearer ${access}` },
      payload: '',
    });
    assertError(logout, 403, detail, 'csrf_failed');
    assertNoCookieSet(logout);
    const foreign = await t.app.inject({
      method: 'POST',
      url: '/auth/logout',
      cookies: { gatepass_refresh: cookie },
      headers: { ...COOKIE_MODE, origin: 'https://evil.example', authorization: `Bearer ${access}` },
    });
    assertError(foreign, 403, 'Origin not allowed', 'csrf_failed');
    assertNoCookieSet(foreign);
    // None of them ended or rotated anything.
    assert.equal((await get(t.app, '/users/me', access)).statusCode, 200);
    assert.equal((await refresh(cookie, COOKIE_MODE)).statusCode, 200);
  });

  it('logout without the header neither reads nor clears the cookie', async () => {
    const response = await login();
    const cookie = refreshCookie(response).value;
    const other = (await login()).json<CookieTokens>().access_token;
    const logout = await t.app.inject({
      method: 'POST',
      url: '/auth/logout',
      cookies: { gatepass_refresh: cookie },
      headers: { authorization: `Bearer ${other}` },
    });
    assert.equal(logout.statusCode, 204);
    assertNoCookieSet(logout);
    assert.equal((await refresh(cookie, COOKIE_MODE)).statusCode, 200, "the cookie's session goes on");
  });

  it('logout ends the session and clears the cookie', async () => {
    const response = await login();
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
    assert.deepEqual(response.json<{ detail: unknown }>().detail, [
      { loc: ['body', 'refresh_token'], msg: 'Field required', type: 'missing' },
    ]);
    const browser = await t.app.inject({ method: 'POST', url: '/auth/refresh', headers: { 'x-gatepass-cookie': '1' } });
    assertError(browser, 401, 'Not authenticated', 'not_authenticated');
  });
});

describe('cookie mode over HTTPS (behind a trusted proxy): the __Host- cookie', () => {
  let t: TestApp;
  let user: { email: string; password: string };
  const HTTPS = { 'x-forwarded-proto': 'https', ...COOKIE_MODE };
  before(async () => {
    t = await createTestApp('sqlite', { TRUST_PROXY: '1' });
    user = await register(t.app);
  });
  after(() => t.close());

  function login(headers: Record<string, string> = HTTPS): Promise<LightMyRequestResponse> {
    return t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: user.password }, headers });
  }

  it('login sets __Host-gatepass_refresh: Secure, Path=/, no Domain; refresh reads it back under that name', async () => {
    const response = await login();
    assert.equal(response.statusCode, 200, response.body);
    assert.equal([response.headers['set-cookie']].flat().length, 1);
    const cookie = refreshCookie(response, '__Host-gatepass_refresh');
    for (const attribute of ['Max-Age=604800', 'Path=/', 'HttpOnly', 'Secure', 'SameSite=Strict']) {
      assert.ok(cookie.attributes.split('; ').includes(attribute), `${attribute} in ${cookie.attributes}`);
    }
    assert.doesNotMatch(cookie.attributes, /Domain=|Path=\/auth/);

    const refreshed = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      cookies: { '__Host-gatepass_refresh': cookie.value },
      headers: { ...HTTPS, origin: 'https://localhost:80' },
    });
    assert.equal(refreshed.statusCode, 200, refreshed.body);
    const rotated = refreshCookie(refreshed, '__Host-gatepass_refresh');
    assert.equal(claimsOf(rotated.value).sid, claimsOf(cookie.value).sid);
    assert.ok(rotated.attributes.split('; ').includes('Path=/'));

    // Its own origin is now https://…: the plain-HTTP origin of the same host is another origin.
    const http = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      cookies: { '__Host-gatepass_refresh': rotated.value },
      headers: { ...HTTPS, origin: 'http://localhost:80' },
    });
    assertError(http, 403, 'Origin not allowed', 'csrf_failed');

    const access = refreshed.json<CookieTokens>().access_token;
    const logout = await t.app.inject({
      method: 'POST',
      url: '/auth/logout',
      cookies: { '__Host-gatepass_refresh': rotated.value },
      headers: { ...HTTPS, authorization: `Bearer ${access}` },
    });
    assert.equal(logout.statusCode, 204);
    const cleared = refreshCookie(logout, '__Host-gatepass_refresh');
    assert.equal(cleared.value, '');
    assert.ok(cleared.attributes.split('; ').includes('Path=/'));
  });

  it('over HTTPS a cookie without the prefix (which a sibling subdomain could plant) is not read', async () => {
    const plain = refreshCookie(await login(COOKIE_MODE)).value;
    const response = await t.app.inject({ method: 'POST', url: '/auth/refresh', cookies: { gatepass_refresh: plain }, headers: HTTPS });
    assertError(response, 401, 'Not authenticated', 'not_authenticated');
    // It is still this plain-HTTP login's cookie over plain HTTP.
    assert.equal(
      (await t.app.inject({ method: 'POST', url: '/auth/refresh', cookies: { gatepass_refresh: plain }, headers: COOKIE_MODE })).statusCode,
      200,
    );
  });

  it('two __Host- refresh cookies are refused', async () => {
    const cookie = refreshCookie(await login(), '__Host-gatepass_refresh').value;
    const response = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      headers: { ...HTTPS, cookie: `__Host-gatepass_refresh=${cookie}; __Host-gatepass_refresh=${cookie}` },
    });
    assertError(
      response,
      400,
      'The request carries more than one __Host-gatepass_refresh cookie; refusing to guess which is genuine',
      'duplicate_cookie',
    );
  });

  it('X-Forwarded-Proto from a peer that is not a trusted proxy is not believed', async () => {
    const untrusted = await createTestApp('sqlite', { TRUST_PROXY: '10.0.0.0/8' });
    try {
      const credentials = await register(untrusted.app);
      const answer = (remoteAddress: string) =>
        untrusted.app.inject({
          method: 'POST',
          url: '/auth/login',
          remoteAddress,
          payload: { email: credentials.email, password: credentials.password },
          headers: HTTPS,
        });
      refreshCookie(await answer('198.51.100.1'), 'gatepass_refresh');
      refreshCookie(await answer('10.0.0.1'), '__Host-gatepass_refresh');
    } finally {
      await untrusted.close();
    }
  });
});
