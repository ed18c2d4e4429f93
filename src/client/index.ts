/**
 * gatepass/client: the browser and Node SDK of gatepass. No Node-only import may enter this
 * directory: it is bundled for the browser as it is.
 */
export {
  GatepassClient,
  createClient,
  type AuthEvent,
  type AuthEventOf,
  type AuthEventType,
  type ClientMode,
  type FetchFunction,
  type GatepassClientOptions,
  type SignedOutReason,
} from './client.js';
export { GatepassApiError, GatepassNetworkError, describeDetail } from './errors.js';
export { base64UrlDecode, decodeToken, type DecodedToken } from './jwt.js';
export type {
  AuditEvent,
  AuditPage,
  Credentials,
  RegisterInput,
  Session,
  Task,
  TokenResponse,
  User,
  UserPage,
  ValidationIssue,
} from './types.js';
