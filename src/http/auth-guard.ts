import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Permission, RolePermissions } from '../tokens/roles.js';
import { isRole } from '../tokens/roles.js';
import { GatepassError } from '../errors.js';
import type { Revocations } from '../sessions/revocations.js';
import { mintTimeOf } from '../tokens/role-change-cutoff.js';
import { TokenError } from '../tokens/errors.js';
import {
  ACCESS_TOKEN_DETAILS,
  accessTokenFailure,
  bearerToken,
  INVALID_CREDENTIALS,
  REVOCATION_STATE_UNAVAILABLE,
} from '../tokens/failures.js';
import type { User } from '../store/users.js';
import type { TokenService } from '../tokens/token-service.js';

/** Who is calling, as proven by a verified access token. */
export interface AuthContext {
  userId: number;
  sessionId: string;
  role: string;
  tokenId: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    auth: AuthContext | null;
    /** The caller's account, on routes behind requireUser. */
    account: User | null;
  }
}

export type Hook = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

export interface Guards {
  /** Checks the Bearer access token of a request and returns its caller, or throws the API.md 401/503. */
  authenticate(authorization: string | undefined): AuthContext;
  /** onRequest hook that checks the token alone (no database): sets `request.auth`. */
  requireAuth: Hook;
  /**
   * onRequest hooks of routes that work on the caller's data: the token, then their account, which
   * must exist and be active (else 401 invalid_token, as API.md's "unknown user"); sets `request.account`.
   */
  requireUser: Hook[];
  /** onRequest hooks of routes that need a permission: requireUser, then the role check (403). */
  requirePermission(permission: Permission): Hook[];
  /** Whether a caller's role grants a permission. */
  can(auth: AuthContext, permission: Permission): boolean;
}

/**
 * The guards of protected routes. They run before the body is read, cost a signature check and two
 * Map lookups, and never touch the database (DESIGN.md: stateless access checks). When revocations
 * made on other instances may be unknown here (Redis down), they fail closed. Roles resolve to
 * permissions through configuration; a role change revokes older tokens, so the role in a token
 * that passes is current.
 */
export function createGuards(options: {
  tokens: TokenService;
  revocations: Revocations;
  rolePermissions: RolePermissions;
  observeVerification: (seconds: number) => void;
  findUser: (id: number) => Promise<User | undefined>;
}): Guards {
  const { tokens, revocations, rolePermissions, observeVerification, findUser } = options;

  function authenticate(authorization: string | undefined): AuthContext {
    const token = bearerToken(authorization);
    if (token === undefined) throw new GatepassError('not_authenticated', ACCESS_TOKEN_DETAILS.not_authenticated);
    const started = process.hrtime.bigint();
    let claims;
    try {
      claims = tokens.verifyAccessToken(token);
    } catch (error) {
      if (!(error instanceof TokenError)) throw error;
      const code = accessTokenFailure(error);
      throw new GatepassError(code, ACCESS_TOKEN_DETAILS[code]);
    }
    if (!revocations.available) throw new GatepassError('service_unavailable', REVOCATION_STATE_UNAVAILABLE);
    const userId = Number(claims.sub);
    const revoked = revocations.isRevoked(claims.sid, userId, mintTimeOf(claims), claims.jti);
    observeVerification(Number(process.hrtime.bigint() - started) / 1e9);
    if (revoked) throw new GatepassError('token_revoked', ACCESS_TOKEN_DETAILS.token_revoked);
    return { userId, sessionId: claims.sid, role: claims.role, tokenId: claims.jti };
  }

  function can(auth: AuthContext, permission: Permission): boolean {
    return isRole(auth.role) && rolePermissions[auth.role].has(permission);
  }

  const requireAuth: Hook = async (request) => {
    request.auth = authenticate(request.headers.authorization);
  };

  const requireUser: Hook[] = [
    requireAuth,
    async (request) => {
      // Only a holder of the signing key could mint a token for a missing or inactive account (their
      // sessions are revoked when it goes), but data routes must never act for one.
      const account = await findUser(authOf(request).userId);
      if (account === undefined || !account.isActive) throw new GatepassError('invalid_token', INVALID_CREDENTIALS);
      request.account = account;
    },
  ];

  return {
    authenticate,
    requireAuth,
    requireUser,
    can,
    requirePermission: (permission) => [
      ...requireUser,
      async (request) => {
        if (!can(authOf(request), permission)) throw new GatepassError('forbidden', ACCESS_TOKEN_DETAILS.forbidden);
      },
    ],
  };
}

/** The account of the caller of a route behind requireUser. */
export function accountOf(request: FastifyRequest): User {
  if (request.account === null) throw new GatepassError('not_authenticated', ACCESS_TOKEN_DETAILS.not_authenticated);
  return request.account;
}

/** The caller of a route behind the guard. */
export function authOf(request: FastifyRequest): AuthContext {
  if (request.auth === null) throw new GatepassError('not_authenticated', ACCESS_TOKEN_DETAILS.not_authenticated);
  return request.auth;
}
