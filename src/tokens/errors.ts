/** Stable machine codes of token failures; the HTTP layer maps each to its API.md answer. */
export type TokenErrorCode = 'invalid_token' | 'token_expired' | 'invalid_token_type';

/**
 * Every rejected token raises this, with a reason meant for logs and tests only:
 * clients get the generic API.md message so that a failure reveals nothing about the check that failed.
 */
export class TokenError extends Error {
  constructor(
    readonly code: TokenErrorCode,
    readonly reason: string,
  ) {
    super(reason);
    this.name = 'TokenError';
  }
}
