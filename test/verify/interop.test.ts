import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createVerifier as createFastJwtVerifier } from 'fast-jwt';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import jwt from 'jsonwebtoken';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';

/**
 * gatepass's access tokens are ordinary JWS: the common libraries verify them with the secret
 * (HS256), with the JWKS key as PEM (RS256, ES256), or straight from the JWKS URL (jose).
 */

type Jwk = Record<string, string>;

interface Claims {
  sub: string;
  type: string;
  role: string;
  sid: string;
  jti: string;
  iat: number;
  exp: number;
}

function assertGatepassClaims(payload: unknown, userId: number, what: string): void {
  assert.ok(typeof payload === 'object' && payload !== null, `${what}: payload is an object`);
  const claims = payload as Partial<Claims>;
  assert.equal(claims.sub, String(userId), what);
  assert.equal(claims.type, 'access', what);
  assert.equal(claims.role, 'student', what);
  assert.equal(typeof claims.sid, 'string', what);
  assert.equal(typeof claims.jti, 'string', what);
  assert.equal(typeof claims.exp, 'number', what);
  assert.equal((claims.exp ?? 0) - (claims.iat ?? 0), 900, what);
}

async function jwksOf(t: TestApp): Promise<Jwk[]> {
  const response = await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
  assert.equal(response.statusCode, 200, response.body);
  return response.json<{ keys: Jwk[] }>().keys;
}

function pemOf(jwk: Jwk): string {
  return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
}

describe('HS256 tokens verify with jsonwebtoken and fast-jwt', () => {
  let t: TestApp;
  let user: Awaited<ReturnType<typeof signUp>>;
  before(async () => {
    t = await createTestApp('sqlite');
    user = await signUp(t.app);
  });
  after(() => t.close());

  it('jsonwebtoken.verify(token, secret, { algorithms: ["HS256"] })', () => {
    const payload = jwt.verify(user.tokens.access_token, t.settings.jwt.accessSecret, { algorithms: ['HS256'] });
    assertGatepassClaims(payload, user.id, 'jsonwebtoken');
    const complete = jwt.verify(user.tokens.access_token, t.settings.jwt.accessSecret, { algorithms: ['HS256'], complete: true });
    assert.deepEqual(complete.header, { alg: 'HS256', typ: 'JWT' });
    // The refresh secret does not verify an access token, and the access secret no refresh token.
    assert.throws(() => jwt.verify(user.tokens.access_token, t.settings.jwt.refreshSecret, { algorithms: ['HS256'] }), /invalid signature/);
    assert.throws(() => jwt.verify(user.tokens.refresh_token, t.settings.jwt.accessSecret, { algorithms: ['HS256'] }), /invalid signature/);
  });

  it('fast-jwt createVerifier({ key: secret, algorithms: ["HS256"] })', () => {
    const verify = createFastJwtVerifier({ key: t.settings.jwt.accessSecret, algorithms: ['HS256'] });
    assertGatepassClaims(verify(user.tokens.access_token), user.id, 'fast-jwt');
    const wrong = createFastJwtVerifier({ key: t.settings.jwt.refreshSecret, algorithms: ['HS256'] });
    assert.throws(() => wrong(user.tokens.access_token));
  });
});

for (const algorithm of ['RS256', 'ES256'] as const) {
  describe(`${algorithm} tokens verify with the JWKS key as PEM`, () => {
    let t: TestApp;
    let user: Awaited<ReturnType<typeof signUp>>;
    let pem: string;
    before(async () => {
      t = await createTestApp('sqlite', { JWT_ALGORITHM: algorithm });
      user = await signUp(t.app);
      const keys = await jwksOf(t);
      assert.equal(keys.length, 1);
      pem = pemOf(keys[0] ?? {});
      assert.match(pem, /^-----BEGIN PUBLIC KEY-----\n/);
    });
    after(() => t.close());

    it('jsonwebtoken', () => {
      const complete = jwt.verify(user.tokens.access_token, pem, { algorithms: [algorithm], complete: true });
      assertGatepassClaims(complete.payload, user.id, 'jsonwebtoken');
      assert.equal(complete.header.alg, algorithm);
      assert.equal(typeof complete.header.kid, 'string');
      // Another algorithm with the same PEM is refused by the library too.
      assert.throws(() => jwt.verify(user.tokens.access_token, pem, { algorithms: ['HS256'] }));
    });

    it('fast-jwt', () => {
      const verify = createFastJwtVerifier({ key: pem, algorithms: [algorithm] });
      assertGatepassClaims(verify(user.tokens.access_token), user.id, 'fast-jwt');
    });
  });
}

describe('jose createRemoteJWKSet + jwtVerify against the JWKS URL', () => {
  for (const algorithm of ['RS256', 'PS256', 'ES256', 'EdDSA'] as const) {
    it(algorithm, async (context) => {
      const t = await createTestApp('sqlite', { JWT_ALGORITHM: algorithm });
      context.after(() => t.close());
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      const { port } = t.app.server.address() as AddressInfo;
      const user = await signUp(t.app);
      const jwks = createRemoteJWKSet(new URL(`http://127.0.0.1:${port}/.well-known/jwks.json`));
      const { payload, protectedHeader } = await jwtVerify(user.tokens.access_token, jwks, { algorithms: [algorithm], typ: 'JWT' });
      assertGatepassClaims(payload, user.id, `jose ${algorithm}`);
      assert.equal(protectedHeader.alg, algorithm);
      assert.equal(protectedHeader.kid, (await jwksOf(t))[0]?.kid);
      await assert.rejects(jwtVerify(user.tokens.refresh_token, jwks), 'a refresh token is not verifiable with the JWKS');
    });
  }

  it('ES256 with JWT_ISSUER and JWT_AUDIENCE: jose checks them', async (context) => {
    const issuer = 'https://auth.example.test';
    const audience = 'projects-service';
    const t = await createTestApp('sqlite', { JWT_ALGORITHM: 'ES256', JWT_ISSUER: issuer, JWT_AUDIENCE: audience });
    context.after(() => t.close());
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = t.app.server.address() as AddressInfo;
    const user = await signUp(t.app);
    const jwks = createRemoteJWKSet(new URL(`http://127.0.0.1:${port}/.well-known/jwks.json`));
    const { payload } = await jwtVerify(user.tokens.access_token, jwks, { issuer, audience, algorithms: ['ES256'] });
    assertGatepassClaims(payload, user.id, 'jose with iss/aud');
    await assert.rejects(jwtVerify(user.tokens.access_token, jwks, { issuer, audience: 'billing' }), /aud/);
  });
});
