import type { Algorithm } from './algorithms.js';

/** The options of gatepass's tokens (config/settings.ts reads them from the environment). */
export interface JwtSettings {
  /** Signs access tokens: an HMAC secret (HS*) or the keys in `keysDir` (RS256, PS256, ES256, EdDSA). */
  algorithm: Algorithm;
  /** The HMAC secret of access tokens; unused with an asymmetric algorithm. */
  accessSecret: string;
  /** Refresh tokens are only ever verified by gatepass itself, so they are always HMAC-signed with this. */
  refreshSecret: string;
  /** Private keys (PEM) and their manifest, for the asymmetric algorithms (`gatepass keys`). */
  keysDir: string;
  accessTtlSeconds: number;
  refreshTtlSeconds: number;
  /** Tolerated clock skew for exp, nbf and iat. */
  leewaySeconds: number;
  issuer: string | undefined;
  audience: string | undefined;
}

/**
 * How long an access token is honoured, in milliseconds: its lifetime plus the leeway (a token is
 * accepted until exp + leeway). A revocation must be remembered, and a rotated-out key kept, that long.
 */
export function accessTokenLifetimeMs(jwt: Pick<JwtSettings, 'accessTtlSeconds' | 'leewaySeconds'>): number {
  return (jwt.accessTtlSeconds + jwt.leewaySeconds) * 1000;
}
