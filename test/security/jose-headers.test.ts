import assert from 'node:assert/strict';
import { X509Certificate, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import {
  HS256_HEADER,
  accessClaims,
  assertAccepted,
  assertInvalidRefresh,
  assertInvalidToken,
  asymmetric,
  b64url,
  bearer,
  encodeSegment,
  hmac,
  hs,
  refresh,
  refreshClaims,
  selfSignedCertificate,
  startBeacon,
  type Beacon,
} from './kit.js';

/**
 * Header parameters that let a token choose (or point at) its own key — jwk, jku, x5u, x5c, kid —
 * and the extension parameters crit and b64. RFC 8725 §3.10: none of them may select the key;
 * API.md: they are ignored or rejected, and an unknown crit is rejected.
 */

describe('key-selecting JOSE headers: jwk, jku, x5u, x5c (HS256 server)', () => {
  let t: TestApp;
  let user: Awaited<ReturnType<typeof signUp>>;
  let rsa: { publicKey: KeyObject; privateKey: KeyObject };
  let attackerSecret: Buffer;
  let certificate: Buffer;
  let beacon: Beacon;
  before(async () => {
    t = await createTestApp('sqlite');
    user = await signUp(t.app);
    rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    attackerSecret = randomBytes(32);
    certificate = selfSignedCertificate('attacker.example', rsa.publicKey, rsa.privateKey);
    const jwks = JSON.stringify({
      keys: [
        { kty: 'oct', kid: 'attacker', k: b64url(attackerSecret), alg: 'HS256' },
        { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'attacker-rsa', alg: 'RS256', use: 'sig' },
      ],
    });
    const pem = `-----BEGIN CERTIFICATE-----\n${certificate.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
    beacon = await startBeacon({
      '/jwks.json': { type: 'application/json', body: jwks },
      '/cert.pem': { type: 'application/pem-certificate-chain', body: pem },
    });
  });
  after(async () => {
    await beacon.close();
    await t.close();
  });

  it('CVE-2018-0114 (node-jose) / Burp JWT Editor "Embedded JWK": an HS256 token carrying its own oct jwk is refused', async () => {
    const header = { alg: 'HS256', typ: 'JWT', jwk: { kty: 'oct', k: b64url(attackerSecret) } };
    assertInvalidToken(await bearer(t.app, hs(header, accessClaims(user.id), attackerSecret)));
    // Also with the key id an honest server might look up.
    assertInvalidToken(await bearer(t.app, hs({ ...header, kid: 'attacker' }, accessClaims(user.id), attackerSecret)));
  });

  it('CVE-2018-0114 / jwt_tool -X i: an RS256 token signed by the attacker and carrying the matching RSA jwk is refused', async () => {
    const jwk = rsa.publicKey.export({ format: 'jwk' });
    assertInvalidToken(await bearer(t.app, asymmetric({ alg: 'RS256', typ: 'JWT', jwk }, accessClaims(user.id), rsa.privateKey, 'RS256')));
    // The embedded public key as an HMAC secret under HS256 (jwk + key confusion).
    const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    assertInvalidToken(await bearer(t.app, hs({ alg: 'HS256', typ: 'JWT', jwk }, accessClaims(user.id), pem)));
  });

  it('RFC 8725 §2.9 / jwt_tool -X s: a jku pointing at 127.0.0.1 is refused and never fetched (no SSRF)', async () => {
    const jku = `${beacon.origin}/jwks.json`;
    assertInvalidToken(await bearer(t.app, hs({ alg: 'HS256', typ: 'JWT', jku, kid: 'attacker' }, accessClaims(user.id), attackerSecret)));
    assertInvalidToken(
      await bearer(
        t.app,
        asymmetric({ alg: 'RS256', typ: 'JWT', jku, kid: 'attacker-rsa' }, accessClaims(user.id), rsa.privateKey, 'RS256'),
      ),
    );
    assertInvalidRefresh(
      await refresh(t.app, hs({ alg: 'HS256', typ: 'JWT', jku, kid: 'attacker' }, refreshClaims(user.id), attackerSecret)),
    );
    assert.deepEqual(beacon.hits, [], 'the server fetched the attacker-supplied jku');
  });

  it('RFC 7515 §4.1.5 / RFC 8725 §3.10: an x5u pointing at 127.0.0.1 is refused and never fetched', async () => {
    const x5u = `${beacon.origin}/cert.pem`;
    assertInvalidToken(await bearer(t.app, asymmetric({ alg: 'RS256', typ: 'JWT', x5u }, accessClaims(user.id), rsa.privateKey, 'RS256')));
    assertInvalidToken(await bearer(t.app, hs({ alg: 'HS256', typ: 'JWT', x5u }, accessClaims(user.id), attackerSecret)));
    assert.deepEqual(beacon.hits, [], 'the server fetched the attacker-supplied x5u');
  });

  it('RFC 7515 §4.1.6 / Burp JWT Editor: an x5c self-signed certificate chain with a matching RS256 signature is refused', async () => {
    // The certificate is genuine and self-signed: a verifier that trusts x5c would accept this token.
    const parsed = new X509Certificate(certificate);
    assert.ok(parsed.verify(rsa.publicKey), 'harness: the forged certificate must be a valid self-signed one');
    assert.ok(parsed.checkIssued(parsed));
    const x5c = [certificate.toString('base64')];
    assertInvalidToken(await bearer(t.app, asymmetric({ alg: 'RS256', typ: 'JWT', x5c }, accessClaims(user.id), rsa.privateKey, 'RS256')));
    // And the certificate (DER, or its base64 string) as an HMAC secret under HS256.
    assertInvalidToken(await bearer(t.app, hs({ alg: 'HS256', typ: 'JWT', x5c }, accessClaims(user.id), certificate)));
    assertInvalidToken(await bearer(t.app, hs({ alg: 'HS256', typ: 'JWT', x5c }, accessClaims(user.id), x5c[0] ?? '')));
  });

  it("RFC 7515 §4.1.7–4.1.8: x5t and x5t#S256 thumbprints naming the attacker's certificate are refused", async () => {
    const parsed = new X509Certificate(certificate);
    const sha1 = Buffer.from(parsed.fingerprint.replace(/:/g, ''), 'hex');
    const sha256 = Buffer.from(parsed.fingerprint256.replace(/:/g, ''), 'hex');
    for (const extra of [{ x5t: b64url(sha1) }, { 'x5t#S256': b64url(sha256) }]) {
      assertInvalidToken(
        await bearer(t.app, asymmetric({ alg: 'RS256', typ: 'JWT', ...extra }, accessClaims(user.id), rsa.privateKey, 'RS256')),
      );
    }
  });

  it('RFC 8725 §3.10 control: the same header builder with HS256 and the real secret is accepted', async () => {
    assertAccepted(await bearer(t.app, hs({ alg: 'HS256', typ: 'JWT' }, accessClaims(user.id), t.settings.jwt.accessSecret)), user.id);
    assert.deepEqual(beacon.hits, []);
  });
});

describe('kid injection, crit and b64 (HS256 server)', () => {
  let t: TestApp;
  let user: Awaited<ReturnType<typeof signUp>>;
  before(async () => {
    t = await createTestApp('sqlite');
    user = await signUp(t.app);
  });
  after(() => t.close());

  it('RFC 8725 §2.9 / jwt_tool -I -hc kid: kid "../../../../dev/null" signed with an empty key is refused', async () => {
    for (const kid of ['../../../../dev/null', '/dev/null', '../../../../../../../../dev/null\u0000.pem', '..%2f..%2f..%2fdev%2fnull']) {
      assertInvalidToken(await bearer(t.app, hs({ ...HS256_HEADER, kid }, accessClaims(user.id), '')));
      // Some readers of /dev/null yield a single NUL byte.
      assertInvalidToken(await bearer(t.app, hs({ ...HS256_HEADER, kid }, accessClaims(user.id), Buffer.from([0]))));
    }
  });

  it("RFC 8725 §2.9: kid path traversal to a readable file, signed with that file's bytes, is refused", async () => {
    // /etc/hostname is readable on every Linux; a server that loads keys by kid would use its content.
    const kid = '../../../../../../etc/hostname';
    const content = existsSync('/etc/hostname') ? readFileSync('/etc/hostname') : Buffer.alloc(0);
    assertInvalidToken(await bearer(t.app, hs({ ...HS256_HEADER, kid }, accessClaims(user.id), content)));
    assertInvalidToken(await bearer(t.app, hs({ ...HS256_HEADER, kid }, accessClaims(user.id), content.toString().trim())));
  });

  it("RFC 8725 §2.9 / jwt_tool -I: kid SQL injection (' OR 1=1 --, UNION SELECT) signed with the injected key is refused", async () => {
    const cases: [string, string][] = [
      ["' OR 1=1 --", ''],
      ["' OR '1'='1", ''],
      ["x' UNION SELECT 'attacker' --", 'attacker'],
      ["x' UNION SELECT 'attacker' FROM users --", 'attacker'],
      ['1; DROP TABLE users; --', ''],
      ["'; DELETE FROM sessions; --", ''],
    ];
    for (const [kid, key] of cases) {
      assertInvalidToken(await bearer(t.app, hs({ ...HS256_HEADER, kid }, accessClaims(user.id), key)));
    }
    // The database is intact: the genuine token and its user still work.
    assertAccepted(await bearer(t.app, user.tokens.access_token), user.id);
    assert.equal((await refresh(t.app, user.tokens.refresh_token)).statusCode, 200);
  });

  it('RFC 8725 §2.9 / jwt_tool -I: kid command injection is refused and runs nothing', async () => {
    const marker = path.join(tmpdir(), `gatepass-kid-${randomBytes(6).toString('hex')}`);
    for (const kid of [
      `key|touch ${marker}`,
      `$(touch ${marker})`,
      `\`touch ${marker}\``,
      `key; touch ${marker}`,
      `key && touch ${marker}`,
    ]) {
      assertInvalidToken(await bearer(t.app, hs({ ...HS256_HEADER, kid }, accessClaims(user.id), '')));
    }
    assert.equal(existsSync(marker), false, 'a kid command ran on the server');
  });

  it('RFC 7515 §4.1.11: an unknown crit, even signed with the real secret, is refused', async () => {
    const secret = t.settings.jwt.accessSecret;
    for (const header of [
      { ...HS256_HEADER, crit: ['exp2'], exp2: 1 },
      { ...HS256_HEADER, crit: ['http://example.com/must-understand'], 'http://example.com/must-understand': true },
      { ...HS256_HEADER, crit: [] },
      { ...HS256_HEADER, crit: 'exp2' },
      { ...HS256_HEADER, crit: ['alg'] },
    ]) {
      assertInvalidToken(await bearer(t.app, hs(header, accessClaims(user.id), secret)));
    }
  });

  it('RFC 7797 §3: b64 false (unencoded payload), signed with the real secret, is refused', async () => {
    const secret = t.settings.jwt.accessSecret;
    const payload = JSON.stringify(accessClaims(user.id));
    const header = encodeSegment({ ...HS256_HEADER, b64: false, crit: ['b64'] });
    // RFC 7797 signing input: ASCII(BASE64URL(header) || '.') || payload, with the payload sent as is.
    const signature = hmac(secret, `${header}.${payload}`).toString('base64url');
    assert.ok(!payload.includes('.'), 'harness: an unencoded compact payload must not contain a dot');
    assertInvalidToken(await bearer(t.app, `${header}.${payload}.${signature}`));
    // Detached form (RFC 7515 Appendix F) and the payload base64url-encoded under the raw-payload MAC.
    assertInvalidToken(await bearer(t.app, `${header}..${signature}`));
    assertInvalidToken(await bearer(t.app, `${header}.${b64url(payload)}.${signature}`));
    // b64:false without crit, and b64:true, with ordinary encoding and the real secret: refused too.
    assertInvalidToken(await bearer(t.app, hs({ ...HS256_HEADER, b64: false }, accessClaims(user.id), secret)));
    assertInvalidToken(await bearer(t.app, hs({ ...HS256_HEADER, b64: true, crit: ['b64'] }, accessClaims(user.id), secret)));
  });

  it('RFC 8725 §3.11: a typ other than JWT with a forged signature is refused', async () => {
    for (const typ of ['at+jwt', 'JWE', 'application/jwt', 'refresh+jwt']) {
      assertInvalidToken(await bearer(t.app, hs({ alg: 'HS256', typ }, accessClaims(user.id), randomBytes(32))));
    }
  });

  it('RFC 8725 §3.10 control: a kid header signed with the real secret is not a key selector (token verified with the configured key)', async () => {
    // Same builder, right key: the header parameters above did not fail only because the builder is broken.
    assertAccepted(await bearer(t.app, hs({ ...HS256_HEADER }, accessClaims(user.id), t.settings.jwt.accessSecret)), user.id);
    assertInvalidToken(await bearer(t.app, hs({ ...HS256_HEADER, kid: 'any' }, accessClaims(user.id), '')));
  });
});
