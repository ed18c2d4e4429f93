import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { get, signUp } from '../helpers/client.js';
import { MAX_TOKEN_LENGTH } from '../../src/tokens/jws.js';
import {
  HS256_HEADER,
  accessClaims,
  assertAccepted,
  assertInvalidRefresh,
  assertInvalidToken,
  assertNotAuthenticated,
  b64url,
  bearer,
  encodeSegment,
  hs,
  refresh,
  segmentsOf,
  unsigned,
  withAuthorization,
} from './kit.js';

/**
 * The compact serialisation itself (RFC 7515 §7.1): segment count, base64url strictness, the
 * signature bytes, what the payload decodes to, and how big a token may be.
 */

const BASE64URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Another spelling of the last base64url character that decodes to the same bytes (differs only in unused low bits). */
function nonCanonicalTwin(segment: string): string | undefined {
  const unusedBits = (segment.length * 6) % 8;
  if (unusedBits === 0) return undefined;
  const last = segment.at(-1) ?? 'A';
  const value = BASE64URL_ALPHABET.indexOf(last);
  const twin = BASE64URL_ALPHABET[value ^ 1];
  return twin === undefined ? undefined : segment.slice(0, -1) + twin;
}

describe('signature and base64url attacks (HS256 server)', () => {
  let t: TestApp;
  let user: Awaited<ReturnType<typeof signUp>>;
  let other: Awaited<ReturnType<typeof signUp>>;
  before(async () => {
    t = await createTestApp('sqlite');
    user = await signUp(t.app);
    other = await signUp(t.app);
  });
  after(() => t.close());

  it('RFC 7515 §5.2 control: the genuine token and a hand-built one with the real secret are accepted', async () => {
    assertAccepted(await bearer(t.app, user.tokens.access_token), user.id);
    assertAccepted(await bearer(t.app, hs(HS256_HEADER, accessClaims(user.id), t.settings.jwt.accessSecret)), user.id);
  });

  it('CVE-2020-28042 (ServiceStack): an empty signature "header.payload." is refused', async () => {
    const [header, payload] = segmentsOf(user.tokens.access_token);
    assertInvalidToken(await bearer(t.app, `${header}.${payload}.`));
    assertInvalidRefresh(await refresh(t.app, `${segmentsOf(user.tokens.refresh_token).slice(0, 2).join('.')}.`));
  });

  it('RFC 7515 §7.1 / jwt_tool -X n: a stripped signature "header.payload" (two segments) is refused', async () => {
    const [header, payload] = segmentsOf(user.tokens.access_token);
    assertInvalidToken(await bearer(t.app, `${header}.${payload}`));
    assertInvalidToken(await bearer(t.app, header));
    assertInvalidRefresh(await refresh(t.app, segmentsOf(user.tokens.refresh_token).slice(0, 2).join('.')));
  });

  it('RFC 7515 §7.1: four segments and three dots (genuine token plus extra dots) are refused', async () => {
    const token = user.tokens.access_token;
    const [header, payload, signature] = segmentsOf(token);
    for (const variant of [
      `${token}.`,
      `${token}.${signature}`,
      `${header}.${payload}..${signature}`,
      `.${token}`,
      `${header}..${payload}.${signature}`,
      '...',
      '..',
      '.',
    ]) {
      assertInvalidToken(await bearer(t.app, variant));
    }
  });

  it("Burp JWT Editor: the signature of another token (another user's genuine one) is refused", async () => {
    const [header, payload] = segmentsOf(user.tokens.access_token);
    const [, , otherSignature] = segmentsOf(other.tokens.access_token);
    assertInvalidToken(await bearer(t.app, `${header}.${payload}.${otherSignature}`));
    // And the user's own payload escalated to the other user's id, keeping each signature.
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const escalated: Record<string, unknown> = { ...claims, sub: String(other.id) };
    const moved = encodeSegment(escalated);
    for (const signature of [segmentsOf(user.tokens.access_token)[2], otherSignature]) {
      assertInvalidToken(await bearer(t.app, `${header}.${moved}.${signature}`));
    }
  });

  it('RFC 8725 §3.3: a single flipped bit anywhere in the 256-bit signature is refused', async () => {
    const [header, payload, signature] = segmentsOf(user.tokens.access_token);
    const bytes = Buffer.from(signature, 'base64url');
    assert.equal(bytes.length, 32);
    for (let bit = 0; bit < 256; bit += 17) {
      const flipped = Buffer.from(bytes);
      flipped[bit >> 3] = (flipped[bit >> 3] ?? 0) ^ (1 << (bit & 7));
      assertInvalidToken(await bearer(t.app, `${header}.${payload}.${flipped.toString('base64url')}`));
    }
  });

  it('RFC 8725 §3.3: a single flipped bit in the payload or the header, with the original signature, is refused', async () => {
    const [header, payload, signature] = segmentsOf(user.tokens.access_token);
    for (const [which, segment] of [
      ['payload', payload],
      ['header', header],
    ] as const) {
      const bytes = Buffer.from(segment, 'base64url');
      for (const index of [0, Math.floor(bytes.length / 2), bytes.length - 2]) {
        const flipped = Buffer.from(bytes);
        flipped[index] = (flipped[index] ?? 0) ^ 0x01;
        const token =
          which === 'payload'
            ? `${header}.${flipped.toString('base64url')}.${signature}`
            : `${flipped.toString('base64url')}.${payload}.${signature}`;
        assertInvalidToken(await bearer(t.app, token));
      }
    }
  });

  it('RFC 7515 §2 / RFC 4648 §3.5: a non-canonical last base64url character of the signature (same bytes) is refused', async () => {
    const [header, payload, signature] = segmentsOf(user.tokens.access_token);
    const twin = nonCanonicalTwin(signature);
    assert.ok(twin !== undefined && twin !== signature, 'harness: a 43-character signature has 2 unused bits');
    assert.deepEqual(Buffer.from(twin, 'base64url'), Buffer.from(signature, 'base64url'), 'harness: the twin decodes to the same MAC');
    assertInvalidToken(await bearer(t.app, `${header}.${payload}.${twin}`));
  });

  it('RFC 4648 §3.5: a non-canonical last character of the payload (same claims) is refused', async () => {
    // Pick claims whose encoded payload has unused bits, then re-spell its last character.
    let token = '';
    let twin: string | undefined;
    for (let attempt = 0; twin === undefined && attempt < 10; attempt += 1) {
      token = hs(HS256_HEADER, accessClaims(user.id, { pad: 'x'.repeat(attempt) }), t.settings.jwt.accessSecret);
      twin = nonCanonicalTwin(segmentsOf(token)[1]);
    }
    assert.ok(twin !== undefined);
    const [header, payload, signature] = segmentsOf(token);
    assert.deepEqual(Buffer.from(twin, 'base64url'), Buffer.from(payload, 'base64url'));
    assertAccepted(await bearer(t.app, token), user.id);
    assertInvalidToken(await bearer(t.app, `${header}.${twin}.${signature}`));
  });

  it('RFC 7515 §2 (base64url without padding): "=" padding appended to any segment is refused', async () => {
    const [header, payload, signature] = segmentsOf(user.tokens.access_token);
    for (const variant of [
      `${header}.${payload}.${signature}=`,
      `${header}.${payload}.${signature}==`,
      `${header}=.${payload}.${signature}`,
      `${header}.${payload}=.${signature}`,
    ]) {
      assertInvalidToken(await bearer(t.app, variant));
    }
  });

  it('RFC 7515 §2: standard base64 "+" and "/" in place of "-" and "_" are refused', async () => {
    // Find a genuine token whose signature contains a base64url-only character, then re-spell it.
    let token = '';
    for (let attempt = 0; attempt < 50 && !/[-_]/.test(segmentsOf(token)[2]); attempt += 1) {
      token = hs(HS256_HEADER, accessClaims(user.id), t.settings.jwt.accessSecret);
    }
    const [header, payload, signature] = segmentsOf(token);
    assert.match(signature, /[-_]/);
    assertAccepted(await bearer(t.app, token), user.id);
    const standard = signature.replace(/-/g, '+').replace(/_/g, '/');
    assert.deepEqual(Buffer.from(standard, 'base64'), Buffer.from(signature, 'base64url'), 'harness: same MAC in standard base64');
    assertInvalidToken(await bearer(t.app, `${header}.${payload}.${standard}`));
    assertInvalidToken(await bearer(t.app, `${header}.${payload}.${Buffer.from(signature, 'base64url').toString('base64')}`));
  });

  it('RFC 7515 §7.1: whitespace inside the token is refused (Bearer: no credentials; refresh body: invalid)', async () => {
    const token = user.tokens.access_token;
    const [header, payload, signature] = segmentsOf(token);
    // RFC 6750 §2.1: b64token has no whitespace, so "Bearer a b" carries no Bearer credentials.
    for (const variant of [
      `${header}. ${payload}.${signature}`,
      `${header}.${payload}.${signature.slice(0, 10)} ${signature.slice(10)}`,
      `${header}.\t${payload}.${signature}`,
    ]) {
      assertNotAuthenticated(await withAuthorization(t.app, `Bearer ${variant}`));
    }
    // A control character that is not whitespace stays inside the token, which is then malformed.
    assertInvalidToken(await bearer(t.app, `${header}.${payload}\u0001.${signature}`));
    const [rh, rp, rs] = segmentsOf(user.tokens.refresh_token);
    for (const variant of [`${rh}. ${rp}.${rs}`, `${rh}.${rp}.${rs}\n`, ` ${rh}.${rp}.${rs}`, `${rh}.${rp}\r\n.${rs}`]) {
      assertInvalidRefresh(await refresh(t.app, variant));
    }
    // The genuine refresh token is still unused and works (the variants above did not consume it).
    assert.equal((await refresh(t.app, user.tokens.refresh_token)).statusCode, 200);
  });

  it('RFC 7515 §7.1: non-ASCII look-alikes and percent-encoding in the token are refused', async () => {
    const [header, payload, signature] = segmentsOf(user.tokens.access_token);
    for (const variant of [
      `${header}.${payload}.${signature.slice(0, -1)}\u00e9`,
      `${header}%2E${payload}%2E${signature}`,
      `${header}\uff0e${payload}.${signature}`,
    ]) {
      assertInvalidToken(await bearer(t.app, variant));
    }
  });
});

describe('payload and header contents (HS256 server)', () => {
  let t: TestApp;
  let user: Awaited<ReturnType<typeof signUp>>;
  before(async () => {
    t = await createTestApp('sqlite');
    user = await signUp(t.app);
  });
  after(() => t.close());

  /** Raw JSON text of claims, for duplicate keys written by hand. */
  function claimsText(claims: Record<string, unknown>, extra: string): string {
    return `${JSON.stringify(claims).slice(0, -1)},${extra}}`;
  }

  it('RFC 7519 §7.2 control: a hand-written JSON payload signed with the real secret is accepted', async () => {
    const text = JSON.stringify(accessClaims(user.id));
    assertAccepted(await bearer(t.app, hs(JSON.stringify(HS256_HEADER), text, t.settings.jwt.accessSecret)), user.id);
  });

  it('RFC 7519 §4 duplicate claims: {"sub":"<me>",…,"sub":"<other>"} with no valid signature is refused', async () => {
    const text = claimsText(accessClaims(user.id), '"sub":"2"');
    assertInvalidToken(await bearer(t.app, unsigned(HS256_HEADER, text, '')));
    assertInvalidToken(await bearer(t.app, unsigned(HS256_HEADER, text, segmentsOf(user.tokens.access_token)[2])));
  });

  it('RFC 7519 §4 / RFC 8725 §2.6: duplicate claims re-signed with a wrong key are refused', async () => {
    for (const extra of ['"sub":"2"', '"type":"access"', '"role":"admin"', '"exp":9999999999']) {
      assertInvalidToken(await bearer(t.app, hs(HS256_HEADER, claimsText(accessClaims(user.id), extra), randomBytes(32))));
    }
  });

  it('RFC 7515 §4 duplicate header names: {"alg":"HS256",…,"alg":"HS256"} re-signed with a wrong key is refused', async () => {
    assertInvalidToken(await bearer(t.app, hs('{"alg":"HS256","typ":"JWT","alg":"HS256"}', accessClaims(user.id), randomBytes(32))));
  });

  it('RFC 7519 §5.2 nested JWT: a payload that is another JWT (cty: JWT), signed with the real secret, is refused', async () => {
    // The inner token is genuine; the outer one is a valid MAC over a payload that is not a claims set.
    const outer = hs({ ...HS256_HEADER, cty: 'JWT' }, user.tokens.access_token, t.settings.jwt.accessSecret);
    assertInvalidToken(await bearer(t.app, outer));
    // With a wrapper made by the attacker's key around the genuine token.
    assertInvalidToken(await bearer(t.app, hs({ ...HS256_HEADER, cty: 'JWT' }, user.tokens.access_token, randomBytes(32))));
    // And the inner token as a JSON string.
    assertInvalidToken(
      await bearer(t.app, hs({ ...HS256_HEADER, cty: 'JWT' }, JSON.stringify(user.tokens.access_token), t.settings.jwt.accessSecret)),
    );
  });

  it('RFC 7519 §7.2: a payload that is a JSON array (holding valid claims), signed with the real secret, is refused', async () => {
    const secret = t.settings.jwt.accessSecret;
    assertInvalidToken(await bearer(t.app, hs(HS256_HEADER, JSON.stringify([accessClaims(user.id)]), secret)));
    assertInvalidToken(await bearer(t.app, hs(HS256_HEADER, '[]', secret)));
  });

  it('RFC 7519 §7.2: a payload that is a JSON string, number, boolean or null, signed with the real secret, is refused', async () => {
    const secret = t.settings.jwt.accessSecret;
    for (const text of ['"sub"', JSON.stringify(JSON.stringify(accessClaims(user.id))), '1', '1e308', '-0', 'true', 'false', 'null']) {
      assertInvalidToken(await bearer(t.app, hs(HS256_HEADER, text, secret)));
    }
  });

  it('RFC 8725 §3.7: a payload of invalid UTF-8 (and an overlong-encoded quote), signed with the real secret, is refused', async () => {
    const secret = t.settings.jwt.accessSecret;
    const text = JSON.stringify(accessClaims(user.id));
    // Stray 0xFF/0xFE bytes outside strings.
    assertInvalidToken(await bearer(t.app, hs(HS256_HEADER, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text)]), secret)));
    // C0 A2 is an overlong '"': a lenient decoder would read {"sub":"<id>"...} out of it.
    const overlong = Buffer.concat([Buffer.from('{'), Buffer.from([0xc0, 0xa2]), Buffer.from(text.slice(2))]);
    assertInvalidToken(await bearer(t.app, hs(HS256_HEADER, overlong, secret)));
    // A lone surrogate (CESU-8) for the opening quote.
    assertInvalidToken(
      await bearer(
        t.app,
        hs(HS256_HEADER, Buffer.concat([Buffer.from('{'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(text.slice(1))]), secret),
      ),
    );
    // Invalid UTF-8 in the header.
    assertInvalidToken(await bearer(t.app, hs(Buffer.from([0x7b, 0xff, 0x7d]), accessClaims(user.id), secret)));
  });

  it('RFC 8725 §3.7: UTF-16 and UTF-8-with-BOM encodings of valid claims, signed with the real secret, are refused', async () => {
    const secret = t.settings.jwt.accessSecret;
    const text = JSON.stringify(accessClaims(user.id));
    assertInvalidToken(await bearer(t.app, hs(HS256_HEADER, Buffer.from(text, 'utf16le'), secret)));
    assertInvalidToken(
      await bearer(t.app, hs(HS256_HEADER, Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(text, 'utf16le').swap16()]), secret)),
    );
    // A UTF-8 BOM is not JSON (RFC 8259 §8.1: MUST NOT add one).
    const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]);
    assertInvalidToken(await bearer(t.app, hs(HS256_HEADER, withBom, secret)));
  });

  it('RFC 7519 §7.2: a payload that is not JSON at all, signed with the real secret, is refused', async () => {
    const secret = t.settings.jwt.accessSecret;
    for (const text of [
      '',
      'hello',
      '{sub:1}',
      "{'sub':'1'}",
      '{"sub":"1",}',
      JSON.stringify(accessClaims(user.id)).slice(0, -1),
      '{"sub":"1"}garbage',
    ]) {
      assertInvalidToken(await bearer(t.app, hs(HS256_HEADER, text, secret)));
    }
    assertInvalidToken(await bearer(t.app, hs(HS256_HEADER, randomBytes(48), secret)));
  });

  it('ASVS V5.5.3: "__proto__" and "constructor" members in header and payload pollute nothing', async () => {
    const text = claimsText(
      accessClaims(user.id),
      '"__proto__":{"role":"admin","polluted":true},"constructor":{"prototype":{"polluted":true}}',
    );
    // Attacker-signed: refused.
    assertInvalidToken(await bearer(t.app, hs('{"alg":"HS256","typ":"JWT","__proto__":{"alg":"none"}}', text, '')));
    assertInvalidToken(await bearer(t.app, hs(HS256_HEADER, text, randomBytes(32))));
    // Even with the real secret, the user's role is what the database says, and no prototype changed.
    const response = await bearer(t.app, hs(HS256_HEADER, text, t.settings.jwt.accessSecret));
    assertAccepted(response, user.id);
    assert.equal(response.json<{ role: string }>().role, 'student');
    assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

describe('oversized tokens (HS256 server)', () => {
  let t: TestApp;
  let user: Awaited<ReturnType<typeof signUp>>;
  before(async () => {
    t = await createTestApp('sqlite');
    user = await signUp(t.app);
  });
  after(() => t.close());

  /** A correctly signed access token of exactly `length` characters (grown with a filler claim). */
  function tokenOfLength(length: number, secret: string): string {
    const claims = accessClaims(user.id, { pad: '' });
    const overhead = hs(HS256_HEADER, claims, secret).length - encodeSegment(claims).length;
    const start = Math.max(0, Math.floor(((length - overhead) * 3) / 4) - Buffer.byteLength(JSON.stringify(claims)) - 4);
    for (let filler = start; filler < start + 16; filler += 1) {
      const token = hs(HS256_HEADER, { ...claims, pad: 'x'.repeat(filler) }, secret);
      if (token.length === length) return token;
    }
    throw new Error(`harness: no token of length ${length}`);
  }

  it(`RFC 8725 §3.1 control: a correctly signed token of exactly ${MAX_TOKEN_LENGTH} characters is accepted`, async () => {
    const token = tokenOfLength(MAX_TOKEN_LENGTH, t.settings.jwt.accessSecret);
    assert.equal(token.length, MAX_TOKEN_LENGTH);
    assertAccepted(await bearer(t.app, token), user.id);
  });

  it('RFC 8725 §3.1: a correctly signed token of 8 KiB + 1 characters is refused before verification', async (context) => {
    const token = tokenOfLength(MAX_TOKEN_LENGTH + 1, t.settings.jwt.accessSecret);
    assert.equal(token.length, 8 * 1024 + 1);
    const before = process.cpuUsage();
    assertInvalidToken(await bearer(t.app, token));
    const used = process.cpuUsage(before);
    context.diagnostic(`8 KiB + 1 token refused using ${((used.user + used.system) / 1000).toFixed(2)} ms CPU (informative, not asserted)`);
  });

  it('RFC 8725 §3.1: a 64 KiB Authorization header does not crash the app (4xx, never 5xx)', async () => {
    for (const value of [
      `Bearer ${'a'.repeat(64 * 1024)}`,
      `Bearer ${'a.'.repeat(32 * 1024)}a`,
      `Bearer ${encodeSegment(HS256_HEADER)}.${b64url('x'.repeat(48 * 1024))}.sig`,
      'B'.repeat(64 * 1024),
    ]) {
      const response = await withAuthorization(t.app, value);
      assert.ok(response.statusCode >= 400 && response.statusCode < 500, `${response.statusCode} ${response.body.slice(0, 200)}`);
      assert.equal(response.statusCode, 401);
    }
    assertAccepted(await bearer(t.app, user.tokens.access_token), user.id);
  });

  it('RFC 8725 §3.1: a 64 KiB Authorization header over a real socket answers 431 and the server keeps serving', async () => {
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = t.app.server.address() as AddressInfo;
    const base = `http://127.0.0.1:${port}`;
    const response = await fetch(`${base}/users/me`, { headers: { authorization: `Bearer ${'a'.repeat(64 * 1024)}` } });
    await response.arrayBuffer();
    assert.ok(response.status >= 400 && response.status < 500, String(response.status));
    const ping = await fetch(`${base}/ping`);
    assert.equal(ping.status, 200);
    const me = await fetch(`${base}/users/me`, { headers: { authorization: `Bearer ${user.tokens.access_token}` } });
    assert.equal(me.status, 200);
    assert.equal(((await me.json()) as { id: number }).id, user.id);
  });

  it('RFC 8725 §3.1: an oversized refresh_token in the body is refused (422 over 8 KiB, 413 over the body limit)', async () => {
    const long = await refresh(t.app, 'a'.repeat(MAX_TOKEN_LENGTH + 1));
    assert.equal(long.statusCode, 422, long.body);
    assert.equal(long.json<{ code: string }>().code, 'validation_error');
    const huge = await refresh(t.app, 'a'.repeat(1024 * 1024));
    assert.equal(huge.statusCode, 413, huge.body);
    assert.deepEqual(huge.json<unknown>(), { detail: 'Request body is too large', code: 'payload_too_large' });
    assert.equal((await get(t.app, '/ping')).statusCode, 200);
  });
});
