/**
 * gatepass/verify: what another service imports to accept gatepass access tokens without calling
 * the gatepass server — the seeds' "microservices verify tokens independently".
 */
export type { RevocationFeedOptions } from './revocation-follower.js';
export { createVerifier, VerifyError, type VerifiedUser, type Verifier, type VerifierOptions, type VerifyErrorCode } from './verifier.js';
export { JwksFetchError, JwksTimeoutError } from './remote-key-set.js';
export { gatepassFastify, type FastifyGatepass } from './fastify.js';
export { gatepassExpress, type Middleware } from './express.js';
export type { Permission, Role } from '../tokens/roles.js';
