import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { get, signUp } from '../helpers/client.js';
import { createHmacKey, signJws } from '../../src/tokens/jws.js';
import {
  HS256_HEADER,
  accessClaims,
  assertAccepted,
  assertInvalidRefresh,
  assertInvalidToken,
  asymmetric,
  bearer,
  decodeJson,
  encodeSegment,
  hs,
  refresh,
  segmentsOf,
  unsigned,
  type AsymmetricAlg,
  type HmacSecret,
} from './kit.js';

/**
 * The `alg` header parameter: "none", other HMAC strengths, malformed values, and the public-key
 * → HMAC confusion that broke node-jsonwebtoken, jwt-simple, PyJWT and fast-jwt. gatepass accepts
 * exactly one algorithm (HS256 here) with exactly one key per token kind (RFC 8725 §3.1).
 */

describe('attacks on alg: none and algorithm substitution (HS256 server)', () => {
  let t: TestApp;
  let user: Awaited<ReturnType<typeof signUp>>;
  before(async () => {
    t = await createTestApp('sqlite');
    user = await signUp(t.app);
  });
  after(() => t.close());

  /** Every "none" variant is tried with an empty signature, a bogus one, and the genuine token's own. */
  async function assertNoneRefused(alg: string): Promise<void> {
    const payload = accessClaims(user.id);
    const genuineSignature = segmentsOf(user.tokens.access_token)[2];
    for (const signature of ['', 'bogus-signature', genuineSignature, 'AAAA']) {
      assertInvalidToken(await bearer(t.app, unsigned({ alg, typ: 'JWT' }, payload, signature)));
    }
    // The genuine payload (whose signature the attacker holds) under a "none" header.
    const [, genuinePayload] = segmentsOf(user.tokens.access_token);
    assertInvalidToken(await bearer(t.app, `${encodeSegment({ alg, typ: 'JWT' })}.${genuinePayload}.`));
    assertInvalidToken(await bearer(t.app, `${encodeSegment({ alg, typ: 'JWT' })}.${genuinePayload}.${genuineSignature}`));
  }

  it('RFC 7515 §5.2 control: a token hand-built with HS256 and the access secret is accepted', async () => {
    assertAccepted(await bearer(t.app, hs(HS256_HEADER, accessClaims(user.id), t.settings.jwt.accessSecret)), user.id);
    assertAccepted(await bearer(t.app, signJws(accessClaims(user.id), createHmacKey('HS256', t.settings.jwt.accessSecret))), user.id);
    assertAccepted(await bearer(t.app, user.tokens.access_token), user.id);
  });

  it('RFC 8725 §2.1 alg "none" (empty, bogus and genuine signature) is refused', async () => {
    await assertNoneRefused('none');
  });

  it('RFC 8725 §2.1 / jwt_tool -X a: alg "None" is refused', async () => {
    await assertNoneRefused('None');
  });

  it('RFC 8725 §2.1 / jwt_tool -X a: alg "NONE" is refused', async () => {
    await assertNoneRefused('NONE');
  });

  it('RFC 8725 §2.1 / jwt_tool -X a: alg "nOnE" is refused', async () => {
    await assertNoneRefused('nOnE');
  });

  it('CVE-2022-23540: a header without alg, signed with the real secret, is refused (alg is REQUIRED, RFC 7515 §4.1.1)', async () => {
    assertInvalidToken(await bearer(t.app, hs({ typ: 'JWT' }, accessClaims(user.id), t.settings.jwt.accessSecret)));
    assertInvalidToken(await bearer(t.app, hs({}, accessClaims(user.id), t.settings.jwt.accessSecret)));
    assertInvalidToken(await bearer(t.app, unsigned({ typ: 'JWT' }, accessClaims(user.id))));
  });

  it('RFC 8725 §3.1: alg HS512 with a valid HMAC-SHA512 made with the real secret is refused (only the configured alg)', async () => {
    const token = hs({ alg: 'HS512', typ: 'JWT' }, accessClaims(user.id), t.settings.jwt.accessSecret, 'sha512');
    assertInvalidToken(await bearer(t.app, token));
  });

  it('RFC 8725 §3.1: alg HS384 with a valid HMAC-SHA384 made with the real secret is refused', async () => {
    const token = hs({ alg: 'HS384', typ: 'JWT' }, accessClaims(user.id), t.settings.jwt.accessSecret, 'sha384');
    assertInvalidToken(await bearer(t.app, token));
  });

  it('RFC 8725 §3.1: alg HS512 header over an HS256 signature is refused (the header is under the MAC)', async () => {
    assertInvalidToken(await bearer(t.app, hs({ alg: 'HS512', typ: 'JWT' }, accessClaims(user.id), t.settings.jwt.accessSecret, 'sha256')));
  });

  it('RFC 7515 §4.1.1: alg as a non-string (array, object, null, number, boolean), signed with the real secret, is refused', async () => {
    for (const alg of [['HS256'], { HS256: true }, null, 256, true, ['none', 'HS256']]) {
      assertInvalidToken(await bearer(t.app, hs({ alg, typ: 'JWT' }, accessClaims(user.id), t.settings.jwt.accessSecret)));
    }
  });

  it('CVE-2022-23529 class: alg an object whose toString/valueOf are not functions answers 401, never 500', async () => {
    // No secret needed: the header is inspected before the signature. A verifier that stringifies
    // the attacker's object (String(header.alg)) throws a TypeError instead of refusing the token.
    for (const alg of [{ toString: 'HS256' }, { toString: null }, { toString: 1, valueOf: 1 }]) {
      const token = unsigned({ alg, typ: 'JWT' }, accessClaims(user.id), 'x');
      assertInvalidToken(await bearer(t.app, token));
      assertInvalidRefresh(await refresh(t.app, token));
    }
  });

  it('RFC 7515 §4.1.1: alg is case-sensitive — "hs256", "Hs256", "HS256 " and "HS256\\u0000" are refused', async () => {
    for (const alg of ['hs256', 'Hs256', 'HS256 ', ' HS256', 'HS256\u0000', 'HS 256', 'HS-256']) {
      assertInvalidToken(await bearer(t.app, hs({ alg, typ: 'JWT' }, accessClaims(user.id), t.settings.jwt.accessSecret)));
    }
  });

  it('RFC 7515 §4 duplicate alg: {"alg":"HS256","alg":"none"} with an empty signature is refused', async () => {
    const payload = encodeSegment(accessClaims(user.id));
    for (const header of ['{"alg":"HS256","alg":"none","typ":"JWT"}', '{"alg":"none","alg":"HS256","typ":"JWT"}']) {
      assertInvalidToken(await bearer(t.app, `${encodeSegment(header)}.${payload}.`));
      assertInvalidToken(await bearer(t.app, `${encodeSegment(header)}.${payload}.${segmentsOf(user.tokens.access_token)[2]}`));
    }
  });

  it('RFC 8725 §3.1: alg "none" cannot ride on the genuine header\'s signature by swapping only the header', async () => {
    const [, payload, signature] = segmentsOf(user.tokens.access_token);
    for (const header of [{ alg: 'none' }, { alg: 'none', typ: 'JWT' }, { alg: 'HS256' }, { typ: 'JWT', alg: 'HS256' }]) {
      const token = `${encodeSegment(header)}.${payload}.${signature}`;
      assert.notEqual(token, user.tokens.access_token);
      assertInvalidToken(await bearer(t.app, token));
    }
  });
});

describe('public-key → HMAC algorithm confusion (HS256 server)', () => {
  let t: TestApp;
  let user: Awaited<ReturnType<typeof signUp>>;
  let rsa: { publicKey: KeyObject; privateKey: KeyObject };
  let ec: { publicKey: KeyObject; privateKey: KeyObject };
  let ed: { publicKey: KeyObject; privateKey: KeyObject };
  before(async () => {
    t = await createTestApp('sqlite');
    user = await signUp(t.app);
    rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    ed = generateKeyPairSync('ed25519');
  });
  after(() => t.close());

  /** Every serialisation of a public key that a confused verifier might turn into an HMAC secret. */
  function publicKeyForms(key: KeyObject): Record<string, HmacSecret> {
    const pem = key.export({ type: 'spki', format: 'pem' }).toString();
    const forms: Record<string, HmacSecret> = {
      'SPKI PEM': pem,
      'SPKI PEM without trailing newline': pem.trimEnd(),
      'SPKI PEM with CRLF': pem.replace(/\n/g, '\r\n'),
      'SPKI PEM with leading whitespace': `  ${pem}`,
      'SPKI DER': key.export({ type: 'spki', format: 'der' }),
      'JWK JSON': JSON.stringify(key.export({ format: 'jwk' })),
      'SPKI DER as base64': key.export({ type: 'spki', format: 'der' }).toString('base64'),
    };
    if (key.asymmetricKeyType === 'rsa') {
      forms['PKCS#1 PEM'] = key.export({ type: 'pkcs1', format: 'pem' }).toString();
      forms['PKCS#1 DER'] = key.export({ type: 'pkcs1', format: 'der' });
    }
    return forms;
  }

  async function assertConfusionRefused(key: KeyObject, algs: string[]): Promise<void> {
    for (const [form, secret] of Object.entries(publicKeyForms(key))) {
      for (const alg of algs) {
        const response = await bearer(t.app, hs({ alg, typ: 'JWT' }, accessClaims(user.id), secret));
        assert.equal(response.statusCode, 401, `${alg} HMAC-signed with the ${form}: ${response.body}`);
        assertInvalidToken(response);
      }
    }
  }

  it('CVE-2015-9235 (node-jsonwebtoken): HS256 HMAC-signed with the RSA public key (PEM, DER, JWK) is refused', async () => {
    await assertConfusionRefused(rsa.publicKey, ['HS256']);
  });

  it('CVE-2015-9235 / jwt_tool -X k: alg RS256 HMAC-signed with the RSA public key is refused', async () => {
    await assertConfusionRefused(rsa.publicKey, ['RS256']);
  });

  it('CVE-2017-11424 (PyJWT): PKCS#1 "BEGIN RSA PUBLIC KEY" PEM as the HMAC secret is refused under HS256 and RS256', async () => {
    const pkcs1 = rsa.publicKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    assert.match(pkcs1, /BEGIN RSA PUBLIC KEY/);
    for (const alg of ['HS256', 'RS256']) assertInvalidToken(await bearer(t.app, hs({ alg, typ: 'JWT' }, accessClaims(user.id), pkcs1)));
  });

  it('CVE-2016-10555 (jwt-simple): PS256 and RS384/RS512 headers HMAC-signed with the RSA public key are refused', async () => {
    await assertConfusionRefused(rsa.publicKey, ['PS256', 'RS384', 'RS512']);
  });

  it('CVE-2023-48223 (fast-jwt): ES256 → HS256 confusion with the EC P-256 public key is refused', async () => {
    await assertConfusionRefused(ec.publicKey, ['HS256', 'ES256']);
  });

  it('CVE-2022-29217 (PyJWT): EdDSA → HS256 confusion with the Ed25519 public key is refused', async () => {
    await assertConfusionRefused(ed.publicKey, ['HS256', 'EdDSA']);
  });

  it("RFC 8725 §3.1: genuine RS256/PS256/ES256/EdDSA signatures by the attacker's own keys are refused", async () => {
    const cases: [AsymmetricAlg, KeyObject][] = [
      ['RS256', rsa.privateKey],
      ['PS256', rsa.privateKey],
      ['ES256', ec.privateKey],
      ['EdDSA', ed.privateKey],
    ];
    for (const [alg, key] of cases) {
      assertInvalidToken(await bearer(t.app, asymmetric({ alg, typ: 'JWT' }, accessClaims(user.id), key, alg)));
      // Even mislabelled as HS256, the asymmetric signature is not a MAC of ours.
      assertInvalidToken(await bearer(t.app, asymmetric(HS256_HEADER, accessClaims(user.id), key, alg)));
    }
  });

  it('CVE-2015-9235 precondition: the JWKS endpoint publishes no key and no secret to confuse with', async () => {
    const response = await get(t.app, '/.well-known/jwks.json');
    assert.equal(response.statusCode, 200);
    assert.deepEqual(response.json<unknown>(), { keys: [] });
    for (const secret of [t.settings.jwt.accessSecret, t.settings.jwt.refreshSecret]) {
      assert.ok(!response.body.includes(secret));
      assert.ok(!response.body.includes(Buffer.from(secret).toString('base64url')));
    }
  });

  it('RFC 7515 §5.2 control: the same builder with the real secret is accepted, with a random key refused', async () => {
    assertAccepted(await bearer(t.app, hs(HS256_HEADER, accessClaims(user.id), t.settings.jwt.accessSecret)), user.id);
    assertInvalidToken(await bearer(t.app, hs(HS256_HEADER, accessClaims(user.id), randomBytes(32))));
  });
});

describe('CVE-2022-21449 "psychic signatures" (HS256 server)', () => {
  let t: TestApp;
  let user: Awaited<ReturnType<typeof signUp>>;
  before(async () => {
    t = await createTestApp('sqlite');
    user = await signUp(t.app);
  });
  after(() => t.close());

  it('CVE-2022-21449: alg ES256 with a 64-byte all-zero signature (r = s = 0) is refused', async () => {
    const zero = Buffer.alloc(64).toString('base64url');
    assertInvalidToken(await bearer(t.app, unsigned({ alg: 'ES256', typ: 'JWT' }, accessClaims(user.id), zero)));
  });

  it('CVE-2022-21449 / jwt_tool: r = s = 0 in DER (MAYCAQACAQA), for ES256/ES384/ES512, is refused', async () => {
    const derZero = Buffer.from('3006020100020100', 'hex').toString('base64url');
    assert.equal(derZero, 'MAYCAQACAQA');
    for (const alg of ['ES256', 'ES384', 'ES512']) {
      assertInvalidToken(await bearer(t.app, unsigned({ alg, typ: 'JWT' }, accessClaims(user.id), derZero)));
      assertInvalidToken(
        await bearer(
          t.app,
          unsigned({ alg, typ: 'JWT' }, accessClaims(user.id), Buffer.alloc(alg === 'ES512' ? 132 : 96).toString('base64url')),
        ),
      );
    }
  });

  it('CVE-2022-21449 analogue for HMAC: HS256 with a 32-byte all-zero MAC, and all-0xFF, is refused', async () => {
    for (const fill of [0x00, 0xff]) {
      assertInvalidToken(await bearer(t.app, unsigned(HS256_HEADER, accessClaims(user.id), Buffer.alloc(32, fill).toString('base64url'))));
    }
  });

  it('RFC 7515 §5.2 control: the zero-signature builder with the real MAC is accepted', async () => {
    const header = encodeSegment(HS256_HEADER);
    const payload = encodeSegment(accessClaims(user.id));
    const genuine = hs(HS256_HEADER, JSON.parse(Buffer.from(payload, 'base64url').toString()) as object, t.settings.jwt.accessSecret);
    assert.ok(genuine.startsWith(`${header}.${payload}.`));
    assertAccepted(await bearer(t.app, genuine), user.id);
  });
});

/**
 * The same confusion against gatepass's own asymmetric modes, where the public key really is
 * published (/.well-known/jwks.json): the attacker HMAC-signs with exactly the key the server
 * verifies with. One app per algorithm.
 */
for (const serverAlg of ['RS256', 'PS256', 'ES256', 'EdDSA'] as const) {
  describe(`algorithm confusion with the published key (${serverAlg} server)`, () => {
    let t: TestApp;
    let user: Awaited<ReturnType<typeof signUp>>;
    let published: { kid: string; jwk: Record<string, string>; key: KeyObject };
    let attacker: KeyObject;
    before(async () => {
      t = await createTestApp('sqlite', { JWT_ALGORITHM: serverAlg });
      user = await signUp(t.app);
      const response = await get(t.app, '/.well-known/jwks.json');
      assert.equal(response.statusCode, 200, response.body);
      const jwk = response.json<{ keys: Record<string, string>[] }>().keys[0];
      assert.ok(jwk !== undefined && typeof jwk.kid === 'string', response.body);
      published = { kid: jwk.kid, jwk, key: createPublicKey({ key: jwk, format: 'jwk' }) };
      const kind = { RS256: 'rsa', PS256: 'rsa', ES256: 'ec', EdDSA: 'ed25519' } as const;
      attacker =
        kind[serverAlg] === 'rsa'
          ? generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
          : kind[serverAlg] === 'ec'
            ? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
            : generateKeyPairSync('ed25519').privateKey;
    });
    after(() => t.close());

    it(`RFC 7515 §5.2 control (${serverAlg}): the genuine token, whose header names the published kid, is accepted`, async () => {
      assertAccepted(await bearer(t.app, user.tokens.access_token), user.id);
      assert.equal(decodeJson(segmentsOf(user.tokens.access_token)[0]).kid, published.kid);
      assert.equal(decodeJson(segmentsOf(user.tokens.access_token)[0]).alg, serverAlg);
    });

    it(`CVE-2015-9235 (${serverAlg}): HS256/HS384/HS512 HMAC-signed with the published key (PEM, DER, JWK) are refused`, async () => {
      const forms: [string, HmacSecret][] = [
        ['SPKI PEM', published.key.export({ type: 'spki', format: 'pem' }).toString()],
        ['SPKI DER', published.key.export({ type: 'spki', format: 'der' })],
        ['published JWK JSON', JSON.stringify(published.jwk)],
        ['JWK x/n member', published.jwk.n ?? published.jwk.x ?? ''],
      ];
      for (const [form, secret] of forms) {
        for (const [alg, digest] of [
          ['HS256', 'sha256'],
          ['HS384', 'sha384'],
          ['HS512', 'sha512'],
        ] as const) {
          for (const header of [
            { alg, typ: 'JWT', kid: published.kid },
            { alg, typ: 'JWT' },
          ]) {
            const response = await bearer(t.app, hs(header, accessClaims(user.id), secret, digest));
            assert.equal(response.statusCode, 401, `${alg} with the ${form}: ${response.body}`);
            assertInvalidToken(response);
          }
        }
      }
    });

    it(`CVE-2015-9235 / jwt_tool -X k (${serverAlg}): the server's own alg HMAC-signed with its published key is refused`, async () => {
      const pem = published.key.export({ type: 'spki', format: 'pem' }).toString();
      assertInvalidToken(await bearer(t.app, hs({ alg: serverAlg, typ: 'JWT', kid: published.kid }, accessClaims(user.id), pem)));
    });

    it(`RFC 8725 §2.1 (${serverAlg}): alg none with the published kid is refused`, async () => {
      for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
        assertInvalidToken(await bearer(t.app, unsigned({ alg, typ: 'JWT', kid: published.kid }, accessClaims(user.id))));
      }
    });

    it(`RFC 8725 §3.10 (${serverAlg}): the attacker's own key under the published kid, or with an embedded jwk, is refused`, async () => {
      const jwk = createPublicKey(attacker).export({ format: 'jwk' });
      assertInvalidToken(
        await bearer(t.app, asymmetric({ alg: serverAlg, typ: 'JWT', kid: published.kid }, accessClaims(user.id), attacker, serverAlg)),
      );
      assertInvalidToken(
        await bearer(
          t.app,
          asymmetric({ alg: serverAlg, typ: 'JWT', kid: published.kid, jwk }, accessClaims(user.id), attacker, serverAlg),
        ),
      );
      assertInvalidToken(
        await bearer(t.app, asymmetric({ alg: serverAlg, typ: 'JWT', kid: 'attacker' }, accessClaims(user.id), attacker, serverAlg)),
      );
      assertInvalidToken(await bearer(t.app, asymmetric({ alg: serverAlg, typ: 'JWT' }, accessClaims(user.id), attacker, serverAlg)));
    });

    it(`CVE-2022-21449 (${serverAlg}): an all-zero signature under the published kid is refused`, async () => {
      for (const length of [64, 96, 256]) {
        assertInvalidToken(
          await bearer(
            t.app,
            unsigned({ alg: serverAlg, typ: 'JWT', kid: published.kid }, accessClaims(user.id), Buffer.alloc(length).toString('base64url')),
          ),
        );
      }
      assertInvalidToken(
        await bearer(t.app, unsigned({ alg: serverAlg, typ: 'JWT', kid: published.kid }, accessClaims(user.id), 'MAYCAQACAQA')),
      );
    });

    it(`RFC 8725 §3.1 (${serverAlg}): the HMAC access secret no longer signs access tokens`, async () => {
      // An operator's leftover JWT_SECRET (or the refresh secret) must not be a second way in.
      for (const secret of [t.settings.jwt.accessSecret, t.settings.jwt.refreshSecret].filter((value) => value !== '')) {
        assertInvalidToken(await bearer(t.app, hs(HS256_HEADER, accessClaims(user.id), secret)));
      }
    });
  });
}
