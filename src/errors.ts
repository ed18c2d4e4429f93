/**
 * Stable machine codes of every failure the services report. The HTTP layer owns the one table that
 * turns a code into a status (src/http/errors.ts); nothing below it knows about HTTP.
 */
export type ErrorCode =
  | 'not_authenticated'
  | 'invalid_token'
  | 'invalid_token_type'
  | 'token_expired'
  | 'token_revoked'
  | 'token_reused'
  | 'invalid_credentials'
  | 'account_disabled'
  | 'user_not_found'
  | 'email_taken'
  | 'last_admin'
  | 'not_found'
  | 'invalid_reset_token'
  | 'forbidden'
  | 'csrf_failed'
  | 'duplicate_cookie'
  | 'rate_limited'
  | 'account_locked'
  | 'service_unavailable'
  | 'service_exists'
  | 'invalid_client'
  | 'email_not_verified'
  | 'already_verified'
  | 'invalid_verification_token'
  | 'invalid_code'
  | 'mfa_required'
  | 'mfa_already_enabled'
  | 'mfa_not_enabled'
  | 'invalid_mfa_token'
  | 'invalid_passkey'
  | 'invalid_credential'
  | 'passkeys_disabled'
  | 'password_not_set'
  | 'last_sign_in_method'
  | 'reauthentication_required'
  | 'unknown_provider'
  | 'provider_unavailable';

/** What a sign-in is refused with, wherever it is decided (the password check, or the session's own re-read of the account). */
export const SIGN_IN_DETAILS = {
  invalid_credentials: 'Incorrect email or password',
  account_disabled: 'Account is disabled',
} as const;

export class GatepassError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    /** For rate limits and lockouts: when the client may try again (the Retry-After header). */
    readonly retryAfterSeconds?: number,
  ) {
    super(detail);
    this.name = 'GatepassError';
  }
}

/** One invalid input field, reported in FastAPI's `{loc, msg, type}` shape with a 422. */
export class FieldError extends Error {
  constructor(
    readonly loc: (string | number)[],
    readonly msg: string,
    readonly type: string,
  ) {
    super(msg);
    this.name = 'FieldError';
  }
}
