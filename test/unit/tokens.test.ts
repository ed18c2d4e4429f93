import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import type { JwtSettings } from '../../src/config/settings.js';
import { TokenError, type TokenErrorCode } from '../../src/tokens/errors.js';
import { createHmacKey, MAX_TOKEN_LENGTH, signJws } from '../../src/tokens/jws.js';
import { openAccessKeys } from '../../src/tokens/key-store.js';
import { TokenService } from '../../src/tokens/token-service.js';

const SETTINGS: JwtSettings = {
  algorithm: 'HS256',
  accessSecret: 'access-secret-0123456789abcdef0123456789',
  refreshSecret: 'refresh-secret-0123456789abcdef012345678',
  accessTtlSeconds: 900,
  refreshTtlSeconds: 7 * 24 * 3600,
  leewaySeconds: 30,
  issuer: undefined,
  audience: undefined,
  keysDir: '/nonexistent',
};

function tokenService(settings: JwtSettings): TokenService {
  return new TokenService(settings, openAccessKeys(settings, { createIfEmpty: false }));
}

const b64 = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** Builds a token by hand, so that every field, even an invalid one, is under the test's control. */
function handMade(header: object, payload: object, secret = SETTINGS.accessSecret, digest = 'sha256'): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac(digest, secret).update(input).digest('base64url')}`;
}

function validClaims(overrides: object = {}): Record<string, unknown> {
  return { sub: '42', type: 'access', sid: 'session-1', role: 'student', jti: 'jti-1', iat: now(), exp: now() + 600, ...overrides };
}

function rejects(service: TokenService, token: string, code: TokenErrorCode): void {
  assert.throws(
    () => service.verifyAccessToken(token),
    (error: unknown) => error instanceof TokenError && error.code === code,
  );
}

describe('tokens', () => {
  const service = tokenService(SETTINGS);

  it('issues access tokens with exactly the API.md claims and verifies them', () => {
    const { token, claims } = service.issueAccessToken({ userId: 42, sessionId: 's1', role: 'teacher' });
    const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString()) as unknown;
    assert.deepEqual(header, { alg: 'HS256', typ: 'JWT' });
    assert.deepEqual(Object.keys(claims).sort(), ['amr', 'email_verified', 'exp', 'iat', 'jti', 'role', 'sid', 'sub', 'type']);
    assert.equal(claims.exp - claims.iat, 900);
    assert.deepEqual(service.verifyAccessToken(token), claims);
  });

  it('keeps access and refresh tokens apart by secret and by type', () => {
    const refresh = service.issueRefreshToken({ userId: 42, sessionId: 's1' }).token;
    rejects(service, refresh, 'invalid_token');
    const access = service.issueAccessToken({ userId: 42, sessionId: 's1', role: 'student' }).token;
    assert.throws(
      () => service.verifyRefreshToken(access),
      (e: unknown) => e instanceof TokenError && e.code === 'invalid_token',
    );
    // Same secret but the wrong type claim: the type check alone refuses it.
    rejects(service, handMade({ alg: 'HS256', typ: 'JWT' }, validClaims({ type: 'refresh' })), 'invalid_token_type');
    rejects(service, handMade({ alg: 'HS256', typ: 'JWT' }, validClaims({ type: undefined })), 'invalid_token_type');
  });

  it('accepts the configured algorithm only', () => {
    rejects(service, `${b64({ alg: 'none', typ: 'JWT' })}.${b64(validClaims())}.`, 'invalid_token');
    rejects(service, `${b64({ alg: 'NONE' })}.${b64(validClaims())}.`, 'invalid_token');
    rejects(service, handMade({ alg: 'HS512', typ: 'JWT' }, validClaims(), SETTINGS.accessSecret, 'sha512'), 'invalid_token');
    rejects(service, handMade({ alg: 'hs256', typ: 'JWT' }, validClaims()), 'invalid_token');
    rejects(service, handMade({ typ: 'JWT' }, validClaims()), 'invalid_token');
  });

  it('refuses headers that pick their own key or demand unknown extensions', () => {
    for (const extra of [
      { jwk: { kty: 'oct', k: 'AAAA' } },
      { jku: 'http://127.0.0.1/keys' },
      { x5u: 'http://127.0.0.1/cert' },
      { x5c: ['MIIB'] },
      { crit: ['exp'] },
      { b64: false },
    ]) {
      rejects(service, handMade({ alg: 'HS256', typ: 'JWT', ...extra }, validClaims()), 'invalid_token');
    }
    rejects(service, handMade({ alg: 'HS256', typ: 'at+jwt' }, validClaims()), 'invalid_token');
    // A kid is harmless: it selects nothing here.
    assert.equal(service.verifyAccessToken(handMade({ alg: 'HS256', typ: 'JWT', kid: '../../etc/passwd' }, validClaims())).sub, '42');
  });

  it('refuses bad signatures, including a non-canonical spelling of the right one', () => {
    const token = service.issueAccessToken({ userId: 1, sessionId: 's', role: 'student' }).token;
    const [h, p, s = ''] = token.split('.');
    rejects(service, `${h}.${p}.${s.slice(0, -1)}${s.endsWith('A') ? 'B' : 'A'}`, 'invalid_token');
    rejects(service, `${h}.${p}.`, 'invalid_token');
    rejects(service, `${h}.${p}`, 'invalid_token');
    rejects(service, `${h}.${p}.${s}.`, 'invalid_token');
    rejects(service, `${h}.${p}.${s}=`, 'invalid_token');
    // HS256 signatures are 32 bytes: the last base64url character carries 2 padding bits.
    const last = s.at(-1) ?? 'A';
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sibling = alphabet[alphabet.indexOf(last) ^ 1] ?? 'A';
    rejects(service, `${h}.${p}.${s.slice(0, -1)}${sibling}`, 'invalid_token');
    rejects(service, handMade({ alg: 'HS256', typ: 'JWT' }, validClaims(), 'another-secret-0123456789abcdef0123456'), 'invalid_token');
  });

  it('checks exp, iat, nbf with the leeway, and the required claims', () => {
    rejects(service, handMade({ alg: 'HS256', typ: 'JWT' }, validClaims({ exp: now() - 31 })), 'token_expired');
    assert.equal(service.verifyAccessToken(handMade({ alg: 'HS256', typ: 'JWT' }, validClaims({ exp: now() - 10 }))).sub, '42');
    rejects(service, handMade({ alg: 'HS256', typ: 'JWT' }, validClaims({ iat: now() + 3600 })), 'invalid_token');
    rejects(service, handMade({ alg: 'HS256', typ: 'JWT' }, validClaims({ nbf: now() + 3600 })), 'invalid_token');
    for (const missing of ['sub', 'exp', 'iat', 'sid', 'jti', 'role']) {
      rejects(service, handMade({ alg: 'HS256', typ: 'JWT' }, validClaims({ [missing]: undefined })), 'invalid_token');
    }
    rejects(service, handMade({ alg: 'HS256', typ: 'JWT' }, validClaims({ sub: 'alice@example.com' })), 'invalid_token');
    rejects(service, handMade({ alg: 'HS256', typ: 'JWT' }, validClaims({ exp: '9999999999' })), 'invalid_token');
    // An expired token that is not genuine is "invalid", never "expired".
    rejects(
      service,
      handMade({ alg: 'HS256', typ: 'JWT' }, validClaims({ exp: now() - 3600 }), 'wrong-secret-0123456789abcdef0123456789'),
      'invalid_token',
    );
  });

  it('checks iss and aud when configured', () => {
    const strict = tokenService({ ...SETTINGS, issuer: 'https://auth.example.com', audience: 'api' });
    const issued = strict.issueAccessToken({ userId: 7, sessionId: 's', role: 'student' });
    assert.equal(strict.verifyAccessToken(issued.token).sub, '7');
    const header = { alg: 'HS256', typ: 'JWT' };
    rejects(strict, handMade(header, validClaims({ iss: 'https://evil.example.com', aud: 'api' })), 'invalid_token');
    rejects(strict, handMade(header, validClaims({ iss: 'https://auth.example.com', aud: 'other' })), 'invalid_token');
    rejects(strict, handMade(header, validClaims({ iss: 'https://auth.example.com' })), 'invalid_token');
    assert.equal(strict.verifyAccessToken(handMade(header, validClaims({ iss: 'https://auth.example.com', aud: ['x', 'api'] }))).sub, '42');
  });

  it('refuses oversized and garbage input without throwing anything but TokenError', () => {
    rejects(service, 'a'.repeat(MAX_TOKEN_LENGTH + 1), 'invalid_token');
    for (const garbage of ['', '.', '..', 'a.b.c', '\u0000.\u0000.\u0000', `${b64('[1]')}.${b64('{}')}.x`, 'eyJ.eyJ.sig']) {
      rejects(service, garbage, 'invalid_token');
    }
  });

  it('signs with the chosen HMAC digest', () => {
    for (const algorithm of ['HS384', 'HS512'] as const) {
      const strong = tokenService({ ...SETTINGS, algorithm });
      const { token } = strong.issueAccessToken({ userId: 3, sessionId: 's', role: 'student' });
      assert.equal(strong.verifyAccessToken(token).sub, '3');
      rejects(service, token, 'invalid_token');
    }
    assert.equal(signJws({ a: 1 }, createHmacKey('HS256', 'k')).split('.').length, 3);
  });
});
