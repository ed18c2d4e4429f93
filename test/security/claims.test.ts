import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { login, send, signUp, type Method } from '../helpers/client.js';
import {
  HS256_HEADER,
  INVALID_TOKEN_TYPE,
  TOKEN_EXPIRED,
  accessClaims,
  assertAccepted,
  assertInvalidRefresh,
  assertInvalidToken,
  assertRejected,
  bearer,
  decodeJson,
  hs,
  nowSeconds,
  refresh,
  refreshClaims,
  segmentsOf,
} from './kit.js';

/**
 * Claims that a correctly signed token carries (RFC 7519 §4.1, RFC 8725 §3.8–3.12): every case
 * below is signed with the real secret unless it says otherwise, so only the claim check can
 * refuse it; each group has a control built the same way that is accepted.
 */

describe('time claims exp, nbf, iat (HS256 server)', () => {
  let t: TestApp;
  let user: Awaited<ReturnType<typeof signUp>>;
  let sign: (claims: Record<string, unknown>) => string;
  before(async () => {
    t = await createTestApp('sqlite');
    user = await signUp(t.app);
    sign = (claims) => hs(HS256_HEADER, claims, t.settings.jwt.accessSecret);
  });
  after(() => t.close());

  it('RFC 7519 §4.1.4 control: exp 10 s ago and nbf/iat 10 s ahead are within the 30 s leeway and accepted', async () => {
    const now = nowSeconds();
    assertAccepted(await bearer(t.app, sign(accessClaims(user.id, { iat: now - 900, exp: now - 10 }))), user.id);
    assertAccepted(await bearer(t.app, sign(accessClaims(user.id, { nbf: now + 10, iat: now + 10, exp: now + 910 }))), user.id);
  });

  it('RFC 7519 §4.1.4: a token without exp is refused', async () => {
    assertInvalidToken(await bearer(t.app, sign(accessClaims(user.id, { exp: undefined }))));
  });

  it('RFC 7519 §2 NumericDate: exp as a string, null, array, boolean or Infinity (1e999) is refused', async () => {
    const far = nowSeconds() + 900;
    for (const exp of [String(far), `${far}`.padStart(20, '0'), null, [far], true, { $gt: 0 }]) {
      assertInvalidToken(await bearer(t.app, sign(accessClaims(user.id, { exp }))));
    }
    const text = JSON.stringify(accessClaims(user.id)).replace(/"exp":\d+/, '"exp":1e999');
    assertInvalidToken(await bearer(t.app, hs(HS256_HEADER, text, t.settings.jwt.accessSecret)));
  });

  it('RFC 7519 §4.1.4: exp far in the past (1970, and 120 s beyond the leeway) answers 401 Token expired', async () => {
    const now = nowSeconds();
    for (const exp of [1, 0, -1, now - 150]) {
      assertRejected(await bearer(t.app, sign(accessClaims(user.id, { iat: Math.min(exp, now) - 900, exp }))), TOKEN_EXPIRED);
    }
  });

  it('ASVS V6.2.1 (no oracle): an expired token with a bad signature answers invalid_token, not token_expired', async () => {
    const iat = nowSeconds() - 3600;
    assertInvalidToken(await bearer(t.app, hs(HS256_HEADER, accessClaims(user.id, { iat, exp: iat + 900 }), randomBytes(32))));
  });

  it('RFC 7519 §4.1.5: nbf one hour in the future is refused', async () => {
    const now = nowSeconds();
    assertInvalidToken(await bearer(t.app, sign(accessClaims(user.id, { nbf: now + 3600 }))));
    assertInvalidToken(await bearer(t.app, sign(accessClaims(user.id, { nbf: String(now - 60) }))));
  });

  it('RFC 7519 §4.1.6: iat one hour in the future is refused', async () => {
    const now = nowSeconds();
    assertInvalidToken(await bearer(t.app, sign(accessClaims(user.id, { iat: now + 3600, exp: now + 4500 }))));
  });
});

describe('type, sub and sid claims (HS256 server)', () => {
  let t: TestApp;
  let user: Awaited<ReturnType<typeof signUp>>;
  let sign: (claims: Record<string, unknown>) => string;
  before(async () => {
    t = await createTestApp('sqlite');
    user = await signUp(t.app);
    sign = (claims) => hs(HS256_HEADER, claims, t.settings.jwt.accessSecret);
  });
  after(() => t.close());

  it('RFC 8725 §3.12 control: type "access", sub "<id>" and a sid signed with the access secret are accepted', async () => {
    assertAccepted(await bearer(t.app, sign(accessClaims(user.id))), user.id);
  });

  it('RFC 8725 §3.12: type "refresh" signed with the access secret is refused as a Bearer token', async () => {
    assertInvalidToken(await bearer(t.app, sign(accessClaims(user.id, { type: 'refresh' }))));
    assertInvalidToken(await bearer(t.app, sign(refreshClaims(user.id, { role: 'student' }))));
  });

  it('RFC 8725 §3.12: a missing, differently-cased or non-string type is refused', async () => {
    for (const type of [undefined, 'ACCESS', 'Access', 'access ', ['access'], { access: true }, null, 1, 'reset', 'id']) {
      assertInvalidToken(await bearer(t.app, sign(accessClaims(user.id, { type }))));
    }
  });

  it('RFC 7519 §4.1.2: a token without sub is refused', async () => {
    assertInvalidToken(await bearer(t.app, sign(accessClaims(user.id, { sub: undefined }))));
  });

  it("RFC 8725 §3.8 / API.md: sub holding the user's email (never the id source) is refused", async () => {
    assertInvalidToken(await bearer(t.app, sign(accessClaims(user.id, { sub: user.email }))));
  });

  it('RFC 7519 §4.1.2: sub "0", negative, "1e3", "01", " 1", "1.0", "0x1" is refused', async () => {
    for (const sub of [
      '0',
      '-1',
      `-${user.id}`,
      '1e3',
      '1E0',
      `0${user.id}`,
      ` ${user.id}`,
      `${user.id} `,
      `${user.id}.0`,
      '0x1',
      '+1',
      '١',
    ]) {
      assertInvalidToken(await bearer(t.app, sign(accessClaims(user.id, { sub }))));
    }
  });

  it('RFC 7519 §4.1.2 (StringOrURI): sub as a number, array or object is refused, even for a real id', async () => {
    for (const sub of [user.id, [String(user.id)], { id: user.id }, true, null]) {
      assertInvalidToken(await bearer(t.app, sign(accessClaims(user.id, { sub }))));
    }
  });

  it('RFC 7519 §4.1.2: a huge sub (past 2^31, 2^53, 20 digits) is refused', async () => {
    for (const sub of ['2147483648', '9007199254740993', '99999999999999999999', '1'.repeat(400)]) {
      assertInvalidToken(await bearer(t.app, sign(accessClaims(user.id, { sub }))));
    }
  });

  it('RFC 7519 §4.1.2 / API.md "unknown user": an id that does not exist is refused on /users/me and /users/me/status', async () => {
    const token = sign(accessClaims(987_654_301));
    assertInvalidToken(await bearer(t.app, token));
    assertInvalidToken(await bearer(t.app, token, '/users/me/status'));
  });

  it('RFC 7519 §4.1.2 / API.md "unknown user": an id that does not exist is refused on the task routes', async () => {
    const token = sign(accessClaims(987_654_302));
    const routes: [Method, string, unknown][] = [
      ['GET', '/tasks', undefined],
      ['POST', '/tasks', { title: 'ghost task' }],
      ['GET', '/tasks/1', undefined],
    ];
    const observed: string[] = [];
    let failed = false;
    for (const [method, url, body] of routes) {
      const response = await send(t.app, method, url, body, token);
      observed.push(`${method} ${url} → ${response.statusCode} ${response.body.slice(0, 120)}`);
      if (response.statusCode !== 401 || response.json<{ code: string }>().code !== 'invalid_token') failed = true;
    }
    // Every route is tried before failing, so the message shows each one's answer.
    assert.equal(failed, false, `expected 401 invalid_token for every route:\n${observed.join('\n')}`);
  });

  it('RFC 7519 §4.1.2 / API.md "unknown user": an id that does not exist cannot change state (deactivate, logout-all)', async () => {
    const observed: string[] = [];
    const routes: [Method, string][] = [
      ['PUT', '/users/me/deactivate'],
      ['POST', '/auth/logout-all'],
      ['POST', '/auth/logout'],
    ];
    let failed = false;
    for (const [index, [method, url]] of routes.entries()) {
      // A fresh unknown id per route, so that one route's revocation does not mask the next.
      const response: LightMyRequestResponse = await send(t.app, method, url, undefined, sign(accessClaims(987_654_310 + index)));
      observed.push(`${method} ${url} → ${response.statusCode} ${response.body.slice(0, 120)}`);
      if (response.statusCode !== 401 || response.json<{ code: string }>().code !== 'invalid_token') failed = true;
    }
    assert.equal(failed, false, `expected 401 invalid_token for every route:\n${observed.join('\n')}`);
  });

  it('RFC 7519 §4.1.7 / API.md: a token without sid, with an empty or oversized sid, or without jti is refused', async () => {
    for (const overrides of [{ sid: undefined }, { sid: '' }, { sid: 's'.repeat(65) }, { sid: 42 }, { jti: undefined }, { jti: '' }]) {
      assertInvalidToken(await bearer(t.app, sign(accessClaims(user.id, overrides))));
    }
  });

  it('ASVS V4.1.3: a student cannot escalate to admin by editing the role claim (403 with the genuine token, 401 forged)', async () => {
    const FORBIDDEN = { detail: 'Not enough permissions', code: 'forbidden' };
    // Control: the genuine student token authenticates, and the admin route refuses it for lack of permission.
    const genuine = await bearer(t.app, user.tokens.access_token, '/admin/users');
    assert.equal(genuine.statusCode, 403, genuine.body);
    assert.deepEqual(genuine.json<unknown>(), FORBIDDEN);
    // The genuine payload with role "admin", keeping the genuine signature; then signed by the attacker.
    const [header, , signature] = segmentsOf(user.tokens.access_token);
    const escalated = { ...decodeJson(segmentsOf(user.tokens.access_token)[1]), role: 'admin' };
    assertInvalidToken(
      await bearer(t.app, `${header}.${hs(HS256_HEADER, escalated, '').split('.')[1] ?? ''}.${signature}`, '/admin/users'),
    );
    assertInvalidToken(await bearer(t.app, hs(HS256_HEADER, escalated, randomBytes(32)), '/admin/users'));
    assertInvalidToken(await bearer(t.app, hs(HS256_HEADER, escalated, ''), '/admin/audit'));
  });
});

describe('issuer and audience (HS256 server with JWT_ISSUER and JWT_AUDIENCE)', () => {
  const ISSUER = 'https://gatepass.test';
  const AUDIENCE = 'api';
  let t: TestApp;
  let user: Awaited<ReturnType<typeof signUp>>;
  let sign: (claims: Record<string, unknown>) => string;
  before(async () => {
    t = await createTestApp('sqlite', { JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE });
    user = await signUp(t.app);
    sign = (claims) => hs(HS256_HEADER, claims, t.settings.jwt.accessSecret);
  });
  after(() => t.close());

  it('RFC 8725 §3.8–3.9 control: issued tokens carry iss/aud and are accepted; hand-built ones with the right iss/aud too', async () => {
    const claims = decodeJson(segmentsOf(user.tokens.access_token)[1]);
    assert.equal(claims.iss, ISSUER);
    assert.equal(claims.aud, AUDIENCE);
    assertAccepted(await bearer(t.app, user.tokens.access_token), user.id);
    assertAccepted(await bearer(t.app, sign(accessClaims(user.id, { iss: ISSUER, aud: AUDIENCE }))), user.id);
  });

  it('RFC 7519 §4.1.3 control: aud as an array that contains "api" is accepted', async () => {
    assertAccepted(await bearer(t.app, sign(accessClaims(user.id, { iss: ISSUER, aud: ['other', AUDIENCE] }))), user.id);
  });

  it('RFC 8725 §3.8: a wrong, missing, re-cased or slash-suffixed iss is refused', async () => {
    for (const iss of ['https://evil.test', undefined, 'HTTPS://GATEPASS.TEST', `${ISSUER}/`, `${ISSUER} `, [ISSUER], null, '']) {
      assertInvalidToken(await bearer(t.app, sign(accessClaims(user.id, { iss, aud: AUDIENCE }))));
    }
  });

  it('RFC 8725 §3.9: a wrong, missing or re-cased aud is refused', async () => {
    for (const aud of ['other-api', undefined, 'API', ` ${AUDIENCE}`, '', null, { aud: AUDIENCE }]) {
      assertInvalidToken(await bearer(t.app, sign(accessClaims(user.id, { iss: ISSUER, aud }))));
    }
  });

  it('RFC 7519 §4.1.3: aud as an array without "api" (or with it nested) is refused', async () => {
    for (const aud of [['other'], [], ['API'], [[AUDIENCE]], [`${AUDIENCE},other`]]) {
      assertInvalidToken(await bearer(t.app, sign(accessClaims(user.id, { iss: ISSUER, aud }))));
    }
  });

  it('RFC 8725 §3.9: a refresh token for another audience or issuer is refused at /auth/refresh', async () => {
    const secret = t.settings.jwt.refreshSecret;
    const genuine = decodeJson(segmentsOf(user.tokens.refresh_token)[1]);
    for (const overrides of [{ aud: 'other-api' }, { iss: 'https://evil.test' }, { aud: undefined }, { iss: undefined }]) {
      assertInvalidRefresh(await refresh(t.app, hs(HS256_HEADER, { ...genuine, ...overrides }, secret)));
    }
    // The genuine one (never used above: each forgery was refused before touching the record) still works.
    assert.equal((await refresh(t.app, user.tokens.refresh_token)).statusCode, 200);
  });
});

describe('cross-use of access and refresh tokens (HS256 server)', () => {
  let t: TestApp;
  let user: Awaited<ReturnType<typeof signUp>>;
  before(async () => {
    t = await createTestApp('sqlite');
    user = await signUp(t.app);
  });
  after(() => t.close());

  it('RFC 8725 §2.8 control: the access token works as Bearer and the refresh token at /auth/refresh', async () => {
    const tokens = await login(t.app, user);
    assertAccepted(await bearer(t.app, tokens.access_token), user.id);
    assert.equal((await refresh(t.app, tokens.refresh_token)).statusCode, 200);
  });

  it('RFC 8725 §2.8: the genuine refresh token as a Bearer access token is refused', async () => {
    assertInvalidToken(await bearer(t.app, user.tokens.refresh_token));
  });

  it('RFC 8725 §2.8: the genuine access token at /auth/refresh is refused', async () => {
    assertInvalidRefresh(await refresh(t.app, user.tokens.access_token));
  });

  it('RFC 8725 §3.12: a refresh token signed with the access secret is refused at /auth/refresh and as Bearer', async () => {
    const genuine = decodeJson(segmentsOf(user.tokens.refresh_token)[1]);
    const token = hs(HS256_HEADER, genuine, t.settings.jwt.accessSecret);
    assertInvalidRefresh(await refresh(t.app, token));
    assertInvalidToken(await bearer(t.app, token));
  });

  it('RFC 8725 §3.12: an access token signed with the refresh secret is refused as Bearer, and at /auth/refresh as the wrong type', async () => {
    const genuine = decodeJson(segmentsOf(user.tokens.access_token)[1]);
    const token = hs(HS256_HEADER, genuine, t.settings.jwt.refreshSecret);
    assertInvalidToken(await bearer(t.app, token));
    // API.md: "Invalid token type" (invalid_token_type) — a genuine MAC with the refresh secret but type access.
    assertRejected(await refresh(t.app, token), INVALID_TOKEN_TYPE);
  });

  it("RFC 8725 §2.8: the access token pasted into the refresh token's segments (header/payload swap) is refused", async () => {
    const [ah, ap, as] = segmentsOf(user.tokens.access_token);
    const [rh, rp, rs] = segmentsOf(user.tokens.refresh_token);
    assertInvalidToken(await bearer(t.app, `${ah}.${ap}.${rs}`));
    assertInvalidToken(await bearer(t.app, `${rh}.${ap}.${rs}`));
    assertInvalidRefresh(await refresh(t.app, `${rh}.${rp}.${as}`));
    assertInvalidRefresh(await refresh(t.app, `${ah}.${ap}.${as}`.replace(ap, rp)));
  });
});
