/**
 * gatepass/client: the browser and Node SDK of gatepass. No Node-only import may enter this
 * directory: it is bundled for the browser as it is.
 */
export {
  GatepassClient,
  createClient,
  isMfaChallenge,
  type AuthEvent,
  type AuthEventOf,
  type AuthEventType,
  type ClientMode,
  type FetchFunction,
  type GatepassClientOptions,
  type LoginResult,
  type MfaChallenge,
  type OAuthCallbackPage,
  type OAuthCallbackResult,
  type SignedOutReason,
} from './client.js';
export { GatepassApiError, GatepassNetworkError, describeDetail } from './errors.js';
export { base64UrlDecode, decodeToken, type DecodedToken } from './jwt.js';
export type {
  AuditEvent,
  AuditPage,
  Credentials,
  DisableTotpInput,
  LinkedIdentity,
  MfaMethod,
  MfaRequiredResponse,
  RecoveryCodes,
  RegisterInput,
  Session,
  Task,
  TokenResponse,
  MfaStatus,
  OAuthProvider,
  Passkey,
  PasskeyCredentialJSON,
  PasskeyOptionsJSON,
  TotpSetup,
  User,
  UserPage,
  ValidationIssue,
  WebAuthnFunctions,
} from './types.js';
