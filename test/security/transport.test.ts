import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { get, signUp } from '../helpers/client.js';
import { ConfigError, loadSettings } from '../../src/config/settings.js';
import {
  HS256_HEADER,
  INVALID_TOKEN,
  REJECTED_CHALLENGE,
  accessClaims,
  assertAccepted,
  assertInvalidToken,
  assertNotAuthenticated,
  b64url,
  bearer,
  encodeSegment,
  hmac,
  hs,
  segmentsOf,
  unsigned,
  withAuthorization,
} from './kit.js';

/**
 * How the token reaches the server (RFC 6750 §2, RFC 7235 §2.1), how strong the HMAC secrets are
 * against offline cracking (RFC 8725 §3.5; jwt-cracker, hashcat -m 16500), and what invalid tokens
 * cost the server.
 */

describe('the Authorization header (HS256 server)', () => {
  let t: TestApp;
  let user: Awaited<ReturnType<typeof signUp>>;
  before(async () => {
    t = await createTestApp('sqlite');
    user = await signUp(t.app);
  });
  after(() => t.close());

  it('RFC 6750 §2.1 control: "Bearer <token>" is accepted', async () => {
    assertAccepted(await withAuthorization(t.app, `Bearer ${user.tokens.access_token}`), user.id);
  });

  it('RFC 7235 §2.1: the scheme is case-insensitive — "bearer" and "BEARER" are accepted', async () => {
    assertAccepted(await withAuthorization(t.app, `bearer ${user.tokens.access_token}`), user.id);
    assertAccepted(await withAuthorization(t.app, `BEARER ${user.tokens.access_token}`), user.id);
    assertAccepted(await withAuthorization(t.app, `bEaReR ${user.tokens.access_token}`), user.id);
  });

  it('RFC 6750 §3: "Bearer" without a token answers 401 Not authenticated with a plain Bearer challenge', async () => {
    for (const value of ['Bearer', 'Bearer ', 'Bearer    ', 'bearer']) assertNotAuthenticated(await withAuthorization(t.app, value));
    assertNotAuthenticated(await withAuthorization(t.app, undefined));
    assertNotAuthenticated(await withAuthorization(t.app, ''));
  });

  it('RFC 6750 §2.1: two tokens in one header are not accepted (no Bearer credentials in b64token syntax)', async () => {
    const genuine = user.tokens.access_token;
    const forged = unsigned({ alg: 'none' }, accessClaims(user.id));
    for (const value of [
      `Bearer ${forged} ${genuine}`,
      `Bearer ${genuine} ${forged}`,
      `Bearer ${genuine},Bearer ${forged}`,
      `Bearer ${forged}, Bearer ${genuine}`,
      `Bearer ${genuine},${forged}`,
    ]) {
      const response = await withAuthorization(t.app, value);
      assert.equal(response.statusCode, 401, `${value.slice(0, 40)}…: ${response.body}`);
      assert.ok(['not_authenticated', 'invalid_token'].includes(response.json<{ code: string }>().code));
    }
    // Exact API.md answers for the two shapes: whitespace-separated → no Bearer credentials; joined → one malformed token.
    assertNotAuthenticated(await withAuthorization(t.app, `Bearer ${forged} ${genuine}`));
    assertInvalidToken(await withAuthorization(t.app, `Bearer ${genuine},${forged}`));
    assertInvalidToken(await withAuthorization(t.app, `Bearer ${genuine}${forged}`));
  });

  it('RFC 7230 §3.2.2: a forged first Authorization header is not rescued by a genuine second one', async () => {
    const forged = hs(HS256_HEADER, accessClaims(user.id), randomBytes(32));
    // Two header lines; light-my-request passes an array through as repeated lines, though its type says string.
    const twoLines = [`Bearer ${forged}`, `Bearer ${user.tokens.access_token}`] as unknown as string;
    const response = await t.app.inject({ method: 'GET', url: '/users/me', headers: { authorization: twoLines } });
    assert.equal(response.statusCode, 401, response.body);
    assert.deepEqual(response.json<unknown>(), { ...INVALID_TOKEN });
  });

  it('RFC 7617: the Basic scheme, even with the right email and password, answers 401 Not authenticated', async () => {
    assertNotAuthenticated(await withAuthorization(t.app, `Basic ${Buffer.from(`${user.email}:${user.password}`).toString('base64')}`));
    assertNotAuthenticated(await withAuthorization(t.app, `Basic ${user.tokens.access_token}`));
  });

  it('RFC 6750 §2.1: other schemes carrying the genuine token (Token, JWT, Bearer: , Digest) are not accepted', async () => {
    for (const scheme of ['Token', 'JWT', 'Bearer:', 'Digest', 'Bearertoken', 'MAC', 'OAuth', 'Bearer\t']) {
      assertNotAuthenticated(await withAuthorization(t.app, `${scheme}${scheme.endsWith('\t') ? '' : ' '}${user.tokens.access_token}`));
    }
    assertNotAuthenticated(await withAuthorization(t.app, user.tokens.access_token));
  });

  it('RFC 6750 §2.3 / ASVS V3.1.1: a token in the query string (?access_token=) is ignored', async () => {
    assertNotAuthenticated(await get(t.app, `/users/me?access_token=${user.tokens.access_token}`));
    assertNotAuthenticated(
      await get(t.app, `/users/me?token=${user.tokens.access_token}&authorization=Bearer%20${user.tokens.access_token}`),
    );
  });

  it('RFC 6750 §2.2 / ASVS V3.1.1: a token in a cookie or in a form body is ignored', async () => {
    assertNotAuthenticated(
      await t.app.inject({ method: 'GET', url: '/users/me', headers: { cookie: `access_token=${user.tokens.access_token}` } }),
    );
    const form = await t.app.inject({
      method: 'POST',
      url: '/tasks',
      payload: new URLSearchParams({ access_token: user.tokens.access_token, title: 'x' }).toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assertNotAuthenticated(form);
  });

  it('RFC 6750 §3.1: every refused token carries exactly WWW-Authenticate: Bearer error="invalid_token"', async () => {
    const response = await bearer(t.app, 'x.y.z');
    assert.equal(response.headers['www-authenticate'], REJECTED_CHALLENGE);
    assert.equal(response.headers['content-type'], 'application/json; charset=utf-8');
    // The challenge never echoes the presented token.
    assert.ok(!response.headers['www-authenticate'].includes('x.y.z'));
  });
});

describe('the HMAC secrets against offline cracking (HS256 server)', () => {
  let t: TestApp;
  let user: Awaited<ReturnType<typeof signUp>>;
  before(async () => {
    t = await createTestApp('sqlite');
    user = await signUp(t.app);
  });
  after(() => t.close());

  it('jwt-cracker / hashcat -m 16500 (RFC 8725 §3.5): the access secret has at least 32 bytes and differs from the refresh secret', () => {
    const { accessSecret, refreshSecret } = t.settings.jwt;
    assert.ok(Buffer.byteLength(accessSecret) >= 32, `access secret is ${Buffer.byteLength(accessSecret)} bytes`);
    assert.ok(Buffer.byteLength(refreshSecret) >= 32, `refresh secret is ${Buffer.byteLength(refreshSecret)} bytes`);
    assert.notEqual(accessSecret, refreshSecret);
  });

  it('jwt_tool -C -d (wordlist): a genuine token does not verify under any well-known or empty secret', () => {
    const [header, payload, signature] = segmentsOf(user.tokens.access_token);
    const wordlist = [
      '',
      'secret',
      'Secret',
      'password',
      'changeme',
      'your-256-bit-secret',
      'your-secret-key',
      'jwt-secret',
      'supersecret',
      'gatepass',
      'key',
      'test',
      '123456',
      'your-super-secret-key-change-this-in-production',
    ];
    for (const word of wordlist)
      assert.notEqual(hmac(word, `${header}.${payload}`).toString('base64url'), signature, `secret is "${word}"`);
    // Harness check: the real secret does reproduce the signature.
    assert.equal(hmac(t.settings.jwt.accessSecret, `${header}.${payload}`).toString('base64url'), signature);
  });

  it('RFC 8725 §3.5 / jwt-cracker: production refuses to start with a short, well-known or shared secret', () => {
    const strong = randomBytes(32).toString('hex');
    const attempts: Record<string, string>[] = [
      { JWT_SECRET: 'your-256-bit-secret', JWT_REFRESH_SECRET: strong },
      { JWT_SECRET: 'a'.repeat(31), JWT_REFRESH_SECRET: strong },
      { JWT_SECRET: strong, JWT_REFRESH_SECRET: strong },
      { JWT_REFRESH_SECRET: strong },
    ];
    for (const env of attempts) {
      assert.throws(() => loadSettings({ NODE_ENV: 'production', DATABASE_URL: 'sqlite:./x.db', ...env }, { cwd: t.cwd }), ConfigError);
    }
  });

  it('RFC 8725 §3.5: no response reveals either secret (docs, JWKS, errors)', async () => {
    const secrets = [t.settings.jwt.accessSecret, t.settings.jwt.refreshSecret];
    for (const url of ['/openapi.json', '/.well-known/jwks.json', '/health/ready', '/nowhere', '/users/me']) {
      const response = await get(t.app, url);
      for (const secret of secrets) {
        assert.ok(!response.body.includes(secret), `${url} reveals a secret`);
        assert.ok(!response.body.includes(b64url(secret)), `${url} reveals a secret (base64url)`);
      }
    }
  });
});

describe('the cost of invalid tokens (HS256 server)', () => {
  let t: TestApp;
  let user: Awaited<ReturnType<typeof signUp>>;
  before(async () => {
    t = await createTestApp('sqlite');
    user = await signUp(t.app);
  });
  after(() => t.close());

  it('RFC 8725 §3.1 control: a token from the same generators, signed with the real secret, is accepted', async () => {
    assertAccepted(await bearer(t.app, hs(HS256_HEADER, accessClaims(user.id), t.settings.jwt.accessSecret)), user.id);
  });

  it('RFC 8725 §3.1 / ASVS V11.1.4: 2,000 invalid tokens of varied kinds all answer 401 invalid_token (CPU logged, not asserted)', async (context) => {
    const secret = t.settings.jwt.accessSecret;
    const [genuineHeader, genuinePayload, genuineSignature] = segmentsOf(user.tokens.access_token);
    const kinds: ((i: number) => string)[] = [
      () => unsigned({ alg: 'none', typ: 'JWT' }, accessClaims(user.id)),
      () => hs(HS256_HEADER, accessClaims(user.id), randomBytes(32)),
      () => hs({ alg: 'HS512', typ: 'JWT' }, accessClaims(user.id), secret, 'sha512'),
      (i) => `${genuineHeader}.${genuinePayload}.${genuineSignature.slice(0, -2)}${i % 2 === 0 ? 'AA' : 'BB'}`,
      () => randomBytes(64).toString('base64url'),
      (i) => 'A'.repeat(8193 + (i % 100)),
      () => `${encodeSegment(HS256_HEADER)}.${b64url(randomBytes(6000))}.${randomBytes(32).toString('base64url')}`,
      () => hs(HS256_HEADER, accessClaims(user.id, { type: 'refresh' }), secret),
      () => hs({ ...HS256_HEADER, jku: 'http://127.0.0.1:1/jwks.json' }, accessClaims(user.id), randomBytes(32)),
      () => unsigned({ alg: 'ES256', typ: 'JWT' }, accessClaims(user.id), Buffer.alloc(64).toString('base64url')),
      (i) => `${'a.'.repeat(1 + (i % 50))}a`,
      () => `${genuineHeader}.${genuinePayload}.${genuineSignature}=`,
    ];
    const tokens = Array.from({ length: 2000 }, (_, i) => {
      const kind = kinds[i % kinds.length];
      assert.ok(kind !== undefined);
      return kind(i);
    });
    const startedAt = process.cpuUsage();
    const statuses = new Map<string, number>();
    for (let offset = 0; offset < tokens.length; offset += 50) {
      const responses = await Promise.all(tokens.slice(offset, offset + 50).map((token) => bearer(t.app, token)));
      for (const response of responses) {
        const key = `${response.statusCode} ${response.body}`;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
      }
    }
    const used = process.cpuUsage(startedAt);
    const cpuMs = (used.user + used.system) / 1000;
    context.diagnostic(
      `2000 invalid tokens: ${cpuMs.toFixed(1)} ms CPU in this process (${((cpuMs * 1000) / 2000).toFixed(1)} µs per request, HTTP handling included)`,
    );
    assert.deepEqual([...statuses.entries()], [[`401 ${JSON.stringify(INVALID_TOKEN)}`, 2000]]);
    assertAccepted(await bearer(t.app, user.tokens.access_token), user.id);
  });
});
