/** The bodies of the gatepass HTTP API (API.md) as the client sees them. */

export interface User {
  id: number;
  email: string;
  full_name: string | null;
  /** `student`, `teacher` or `admin` with the default configuration. */
  role: string;
  is_active: boolean;
  /** Whether the owner proved the address is theirs (the verification email). */
  email_verified: boolean;
  created_at: string;
}

/** Login and refresh answers; `refresh_token` is absent in cookie mode. */
export interface TokenResponse {
  access_token: string;
  refresh_token?: string;
  token_type: 'bearer';
  expires_in: number;
  refresh_expires_in: number;
}

/** How a pending two-factor sign-in can be completed (API.md "Two-factor sign-in"). */
export type MfaMethod = 'totp' | 'recovery_code' | 'passkey';

/** The login answer of an account with two-factor sign-in on, instead of a token response. */
export interface MfaRequiredResponse {
  mfa_required: true;
  /** Short-lived (5 minutes) and accepted only by `POST /auth/mfa/verify`. */
  mfa_token: string;
  methods: MfaMethod[];
}

/** `POST /auth/mfa/totp/setup`: the pending secret; TOTP is on only once a code of it is confirmed. */
/** `GET /auth/mfa`. */
export interface MfaStatus {
  totp_enabled: boolean;
  recovery_codes_left: number;
}

export interface TotpSetup {
  /** Base32, for typing into an authenticator app by hand. */
  secret: string;
  /** `otpauth://totp/…`, what the QR code holds. */
  otpauth_uri: string;
  /** The QR code of `otpauth_uri` as an SVG document (made by the server). */
  qr_svg: string;
}

/** A new set of single-use recovery codes, shown once (confirming TOTP, or regenerating). */
export interface RecoveryCodes {
  recovery_codes: string[];
}

/** `POST /auth/mfa/totp/disable`: the password and a current code (TOTP or recovery code). */
export interface DisableTotpInput {
  /** Left out by an account without a password, which instead must have signed in less than 5 minutes ago. */
  password?: string;
  code: string;
}

export interface Session {
  id: string;
  created_at: string;
  last_used_at: string;
  user_agent: string | null;
  ip: string | null;
  /** The session of the access token that asked. */
  current: boolean;
}

export interface Task {
  id: number;
  title: string;
  description: string | null;
  done: boolean;
  created_at: string;
  updated_at: string;
}

export interface AuditEvent {
  id: number;
  created_at: string;
  event: string;
  user_id: number | null;
  actor_id: number | null;
  ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown>;
}

export interface UserPage {
  items: User[];
  total: number;
  limit: number;
  offset: number;
}

export interface AuditPage {
  items: AuditEvent[];
  next_before: number | null;
}

/** One item of a 422 answer (FastAPI's shape). */
export interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

export interface RegisterInput {
  email: string;
  password: string;
  full_name?: string;
}

export interface Credentials {
  email: string;
  password: string;
}

/** A registered passkey (`GET /auth/passkeys`, and the answer of a registration or rename). */
export interface Passkey {
  /** The credential id (base64url). */
  id: string;
  name: string;
  created_at: string;
  /** The last sign-in with it, or null when it has not signed in yet. */
  last_used_at: string | null;
}

/**
 * The WebAuthn options the server answers (`PublicKeyCredentialCreationOptionsJSON` or
 * `PublicKeyCredentialRequestOptionsJSON`), passed on whole to the browser half; only the challenge
 * is named here.
 */
export interface PasskeyOptionsJSON {
  challenge: string;
}

/** A credential in its JSON form (`RegistrationResponseJSON`, `AuthenticationResponseJSON`), passed on whole to the server. */
export interface PasskeyCredentialJSON {
  id: string;
  rawId: string;
  type: string;
}

/**
 * The browser half of WebAuthn: `startRegistration` and `startAuthentication` of
 * `@simplewebauthn/browser` (v13 or later, which take `{ optionsJSON }`), or functions of the same
 * shape. The client takes them as an option so that it imports nothing itself and stays usable in
 * Node by those who never use passkeys.
 */
export interface WebAuthnFunctions {
  startRegistration(options: { optionsJSON: PasskeyOptionsJSON }): Promise<PasskeyCredentialJSON>;
  startAuthentication(options: { optionsJSON: PasskeyOptionsJSON }): Promise<PasskeyCredentialJSON>;
}

/** An external identity provider the server offers (`GET /auth/oauth/providers`): one "Sign in with <name>" button each. */
export interface OAuthProvider {
  /** The id in the routes (`/auth/oauth/{id}/start`). */
  id: string;
  name: string;
}

/** An external identity linked to the signed-in account (`GET /auth/identities`). */
export interface LinkedIdentity {
  id: number;
  /** The provider's id, as in `OAuthProvider.id`. */
  provider: string;
  /** The address the provider gave at the last sign-in, if any. */
  email: string | null;
  /** Whether the provider asserted it verified `email`. */
  email_verified: boolean;
  created_at: string;
  /** The last sign-in with it, or null when it has not signed in yet (linked explicitly). */
  last_used_at: string | null;
}
