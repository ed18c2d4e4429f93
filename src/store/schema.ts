import type { ColumnType, Generated, Selectable } from 'kysely';

/**
 * The database as the code sees it. Times are epoch milliseconds (bigint in PostgreSQL, integer in
 * SQLite) and booleans are written as 1/0, so that one query text serves both dialects.
 */
type Flag = ColumnType<boolean | number, number, number>;

export interface UsersTable {
  id: Generated<number>;
  /** Normalised (trimmed, NFC, lower-case); unique. */
  email: string;
  /**
   * The email's identity (store/email-key.ts: NFKC and case folding); unique. Null only for a row
   * written by a version before migration 0005; colliding rows found by that migration carry `#<id>`.
   */
  email_key: ColumnType<string | null, string, string>;
  /** The empty string for an account with no password (see NO_PASSWORD in users.ts). */
  password_hash: string;
  full_name: string | null;
  role: ColumnType<string, string | undefined, string>;
  is_active: Flag;
  /** Set when the owner proved they read mail at `email` (a verification token), or an external provider asserted it. */
  email_verified: ColumnType<boolean | number, number | undefined, number>;
  email_verified_at: number | null;
  created_at: number;
  updated_at: number;
}

/** A login: the family of refresh tokens that descend from it. */
export interface SessionsTable {
  id: string;
  user_id: number;
  created_at: number;
  last_used_at: number;
  user_agent: string | null;
  ip: string | null;
  /** Set when the session ends (logout, reuse detected, deactivation); its tokens stop working. */
  revoked_at: number | null;
  revoked_reason: string | null;
  /**
   * How the session was signed in, as RFC 8176 method names in a JSON array (`["pwd","otp"]`): every
   * access token of the session carries it as `amr`. Null for sessions older than 0008: a password.
   */
  amr: ColumnType<string | null, string | null | undefined, string | null>;
}

/** One record per refresh token ever issued, keyed by its jti. The token itself is never stored. */
export interface RefreshTokensTable {
  jti: string;
  session_id: string;
  user_id: number;
  parent_jti: string | null;
  issued_at: number;
  expires_at: number;
  used_at: number | null;
  revoked_at: number | null;
}

export interface TasksTable {
  id: Generated<number>;
  user_id: number;
  title: string;
  description: string | null;
  done: Flag;
  created_at: number;
  updated_at: number;
}

/**
 * One revocation access tokens must honour until `expires_at` (their lifetime plus leeway): a
 * session (`session_id`: its tokens are refused), a user's tokens minted before `issued_before`
 * (epoch ms; a role change: the sessions live on, their next refresh carries the new role), or one
 * access token (`token_id`, its jti: RFC 7009 revocation).
 */
export interface RevocationsTable {
  id: Generated<number>;
  session_id: string | null;
  user_id: number;
  issued_before: number | null;
  token_id: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: number;
  expires_at: number;
}

/** Append-only record of security-relevant events; never a token or a password in it. */
export interface AuditEventsTable {
  id: Generated<number>;
  created_at: number;
  event: string;
  /** The user the event is about, when known. */
  user_id: number | null;
  /** Who did it, when someone else than the user (an admin). */
  actor_id: number | null;
  ip: string | null;
  user_agent: string | null;
  /** A small JSON object. */
  details: string;
}

/** Single-use password-reset tokens, stored only as their SHA-256. */
export interface PasswordResetTokensTable {
  token_hash: string;
  user_id: number;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

/** A service allowed to read the revocation feed and call the token endpoints (API.md). */
export interface ServiceCredentialsTable {
  id: Generated<number>;
  /** Unique; what `gatepass service create NAME` was given. */
  name: string;
  /** Unique, public, URL-safe. */
  client_id: string;
  /** SHA-256 (hex) of the secret: the secret is random and long, so a fast hash cannot be searched. */
  secret_hash: string;
  created_at: number;
  /** The admin who created it through the API; null from the CLI. */
  created_by: number | null;
  last_used_at: number | null;
}

/** Single-use email verification tokens (24 h), stored as their SHA-256; `email` is the address they verify. */
export interface EmailVerificationTokensTable {
  token_hash: string;
  user_id: number;
  email: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

/** A user's TOTP (RFC 6238) factor: on once `confirmed_at` is set. */
export interface MfaTotpTable {
  user_id: number;
  /** The shared secret, encrypted (the server must read it back to check codes). */
  secret: string;
  created_at: number;
  confirmed_at: number | null;
  /** The last time step whose code was accepted: a code is accepted once, and never one of an earlier step. */
  last_used_step: number | null;
}

/** Single-use recovery codes, stored as their SHA-256; a new set deletes the old. */
export interface MfaRecoveryCodesTable {
  id: Generated<number>;
  user_id: number;
  code_hash: string;
  created_at: number;
  used_at: number | null;
}

/** The pending second step of a sign-in: the `mfa_token` (stored as its SHA-256), valid 5 minutes and 5 wrong codes. */
export interface MfaChallengesTable {
  token_hash: string;
  user_id: number;
  created_at: number;
  expires_at: number;
  failed_attempts: ColumnType<number, number | undefined, number>;
  used_at: number | null;
  /** The RFC 8176 name of the sign-in this step completes (`pwd`, `fed`); null before migration 0010: a password. */
  first_factor: ColumnType<string | null, string | null | undefined, string | null>;
}

/** A passkey (WebAuthn credential) of a user, keyed by its credential id (base64url). */
export interface PasskeysTable {
  id: string;
  user_id: number;
  /** The credential's COSE public key, base64url. Not a secret. */
  public_key: string;
  /** The authenticator's signature counter as last seen; 0 for authenticators that keep none (most synced passkeys). */
  counter: number;
  /** The transports the browser reported (JSON array of strings), handed back in excludeCredentials. */
  transports: string;
  /** `singleDevice` (device-bound) or `multiDevice` (synced). */
  device_type: string;
  backed_up: Flag;
  name: string;
  aaguid: string | null;
  created_at: number;
  last_used_at: number | null;
}

/** Each user's WebAuthn user handle (`user.id` of registration options): random, opaque, stable. */
export interface PasskeyUserHandlesTable {
  user_id: number;
  /** base64url of 32 random bytes. */
  handle: string;
  created_at: number;
}

/** A WebAuthn challenge handed out with options, stored as its SHA-256: spent once, within its lifetime. */
export interface WebauthnChallengesTable {
  challenge_hash: string;
  purpose: 'register' | 'login' | 'second_factor';
  /** The user a registration challenge was made for; null for a (usernameless) login. */
  user_id: number | null;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

/** An external provider's account (`provider`, `subject`) linked to a gatepass account. */
export interface ExternalIdentitiesTable {
  id: Generated<number>;
  user_id: number;
  /** The provider's id in OAUTH_PROVIDERS. */
  provider: string;
  /** The provider's stable id for the person (OIDC `sub`, GitHub's numeric id), never the email. */
  subject: string;
  /** The address the provider gave at the last sign-in, if any. */
  email: string | null;
  /** Whether the provider asserted it verified `email`. */
  email_verified: Flag;
  created_at: number;
  last_used_at: number | null;
}

/**
 * One authorization request in flight: found by the SHA-256 of its `state`, bound to the browser that
 * started it by the SHA-256 of its flow cookie, spent once (`used_at`) before its code is exchanged.
 */
export interface OauthFlowsTable {
  state_hash: string;
  browser_binding_hash: string;
  provider: string;
  /** The PKCE verifier: needed server-side for the exchange, so it is kept as is, for 10 minutes at most. */
  code_verifier: string;
  nonce: string | null;
  /** Where the page goes afterwards: a same-origin path. */
  redirect_path: string;
  /** Set for a link flow: the signed-in user the identity is linked to. */
  link_user_id: number | null;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  refresh_tokens: RefreshTokensTable;
  tasks: TasksTable;
  revocations: RevocationsTable;
  audit_events: AuditEventsTable;
  password_reset_tokens: PasswordResetTokensTable;
  service_credentials: ServiceCredentialsTable;
  email_verification_tokens: EmailVerificationTokensTable;
  mfa_totp: MfaTotpTable;
  mfa_recovery_codes: MfaRecoveryCodesTable;
  mfa_challenges: MfaChallengesTable;
  passkeys: PasskeysTable;
  passkey_user_handles: PasskeyUserHandlesTable;
  webauthn_challenges: WebauthnChallengesTable;
  external_identities: ExternalIdentitiesTable;
  oauth_flows: OauthFlowsTable;
}

export type UserRow = Selectable<UsersTable>;
export type SessionRow = Selectable<SessionsTable>;
export type RefreshTokenRow = Selectable<RefreshTokensTable>;
export type TaskRow = Selectable<TasksTable>;
export type AuditEventRow = Selectable<AuditEventsTable>;
export type PasswordResetTokenRow = Selectable<PasswordResetTokensTable>;
export type ServiceCredentialRow = Selectable<ServiceCredentialsTable>;
export type PasskeyRow = Selectable<PasskeysTable>;
export type ExternalIdentityRow = Selectable<ExternalIdentitiesTable>;
export type OauthFlowRow = Selectable<OauthFlowsTable>;
