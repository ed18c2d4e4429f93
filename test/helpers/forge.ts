import { randomUUID } from 'node:crypto';
import { createHmacKey, isHmacAlgorithm, signJws } from '../../src/tokens/jws.js';
import type { TestApp } from './app.js';

/** Tokens made by the test rather than by the server: claims of our choice, signed with a key of our choice. */

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/**
 * Signs `claims` as the holder of `secret` would: the access secret stands for the app's access key
 * (a key pair with an asymmetric algorithm); any other secret signs with HMAC, as refresh tokens are.
 */
export function forge(t: TestApp, secret: string, claims: Record<string, unknown>): string {
  const algorithm = t.settings.jwt.algorithm;
  if (secret === t.settings.jwt.accessSecret && !isHmacAlgorithm(algorithm)) return t.app.gatepass.tokens.signAccess(claims);
  return signJws(claims, createHmacKey(isHmacAlgorithm(algorithm) ? algorithm : 'HS256', secret));
}

/** The claims of a valid access token of `userId` for 15 minutes from now, with `overrides`. */
export function accessClaims(userId: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = nowSeconds();
  return { sub: String(userId), type: 'access', sid: randomUUID(), jti: randomUUID(), role: 'student', iat, exp: iat + 900, ...overrides };
}

/** The claims of a valid refresh token of `userId` for 7 days from now, with `overrides`. */
export function refreshClaims(userId: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = nowSeconds();
  return { sub: String(userId), type: 'refresh', sid: randomUUID(), jti: randomUUID(), iat, exp: iat + 604800, ...overrides };
}
