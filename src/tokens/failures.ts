import type { TokenError, TokenErrorCode } from './errors.js';

/**
 * The one vocabulary of refused tokens and callers: each failure's code, its HTTP status, what the
 * client is told, and the RFC 6750 challenge. The server (sessions/, accounts/, http/) and
 * `gatepass/verify` both answer from it, so a request refused by either gets the same answer (API.md).
 * Details are generic, so that a failure reveals nothing about the check that failed; a TokenError's
 * reason is for logs only.
 */
export type TokenFailureCode =
  'not_authenticated' | 'invalid_token' | 'invalid_token_type' | 'token_expired' | 'token_revoked' | 'token_reused' | 'forbidden';

export const TOKEN_FAILURE_STATUS: Readonly<Record<TokenFailureCode, 401 | 403>> = {
  not_authenticated: 401,
  invalid_token: 401,
  invalid_token_type: 401,
  token_expired: 401,
  token_revoked: 401,
  token_reused: 401,
  forbidden: 403,
};

/** What a client is told when no valid credential stands behind a request: a bad token, or a token whose user is gone. */
export const INVALID_CREDENTIALS = 'Could not validate credentials';

/** What a client is told when its access token, or the caller behind it, is refused. */
export const ACCESS_TOKEN_DETAILS = {
  not_authenticated: 'Not authenticated',
  invalid_token: INVALID_CREDENTIALS,
  token_expired: 'Token expired',
  token_revoked: 'Token has been revoked',
  forbidden: 'Not enough permissions',
} as const;

/**
 * What a client is told (503 service_unavailable) when revocations may be unknown to whoever checks
 * its token: a server whose Redis is down, a verifier whose revocation feed went silent. Fail closed.
 */
export const REVOCATION_STATE_UNAVAILABLE = 'Revocation state unavailable; try again shortly';

/** What a client is told when its refresh token is refused. */
export const REFRESH_TOKEN_DETAILS: Readonly<Record<TokenErrorCode, string>> = {
  token_expired: 'Refresh token has expired. Please log in again.',
  invalid_token: 'Invalid refresh token',
  invalid_token_type: 'Invalid token type',
};

/** An access token that failed verification answers as expired, or else as invalid (a wrong type included). */
export function accessTokenFailure(error: TokenError): 'token_expired' | 'invalid_token' {
  return error.code === 'token_expired' ? 'token_expired' : 'invalid_token';
}

/** Codes meaning "a token was presented and refused" (RFC 6750 §3.1: error="invalid_token"). */
const REFUSED_TOKEN_CODES: ReadonlySet<string> = new Set([
  'invalid_token',
  'invalid_token_type',
  'token_expired',
  'token_revoked',
  'token_reused',
]);

/** The `WWW-Authenticate` of a 401 answered with `code` (RFC 6750 §3): a plain `Bearer` when no token was refused. */
export function bearerChallenge(code: string): string {
  return REFUSED_TOKEN_CODES.has(code) ? 'Bearer error="invalid_token"' : 'Bearer';
}

const BEARER = /^Bearer +(\S+) *$/i;

/** The token of an `Authorization: Bearer <token>` header value; undefined when there is none. */
export function bearerToken(authorization: string | undefined): string | undefined {
  return authorization === undefined ? undefined : BEARER.exec(authorization)?.[1];
}
