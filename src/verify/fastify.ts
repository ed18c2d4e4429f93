import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import type { Permission } from '../tokens/roles.js';
import { VerifyError, type VerifiedUser, type Verifier, type VerifyErrorCode } from './verifier.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the gatepass hooks on routes that require authentication. */
    user: VerifiedUser | null;
  }
}

/** An async onRequest hook; it resolves to the reply when it answered, which ends the request there. */
type Hook = (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>;

export interface FastifyGatepass {
  /** onRequest hook: verifies the Bearer token and sets `request.user`. */
  authenticate: Hook;
  /** onRequest hooks: authentication, then one of the roles (403 otherwise). */
  requireRole(...roles: string[]): Hook[];
  /** onRequest hooks: authentication, then the permission (403 otherwise). */
  requirePermission(permission: Permission): Hook[];
  /**
   * onRequest hooks: authentication, then a sign-in with one of these methods (RFC 8176 `amr`), e.g.
   * `requireAmr('otp', 'hwk', 'swk')` for a route that wants a second factor (403 mfa_required otherwise).
   */
  requireAmr(...methods: string[]): Hook[];
}

function send(reply: FastifyReply, error: VerifyError): FastifyReply {
  const header = error.wwwAuthenticate;
  if (header !== undefined) reply.header('WWW-Authenticate', header);
  return reply.code(error.status).send(error.body);
}

/**
 * Protects a Fastify app's routes with gatepass tokens: `app.register(gatepassFastify(verifier))`,
 * then `{ onRequest: app.gatepassAuth.requireRole('teacher') }` on a route. Failures answer exactly as
 * the gatepass server does.
 */
export function gatepassFastify(verifier: Verifier): (app: FastifyInstance) => Promise<void> {
  const authenticate: Hook = async (request, reply) => {
    try {
      request.user = await verifier.verifyAuthorization(request.headers.authorization);
      return undefined;
    } catch (error) {
      if (error instanceof VerifyError) return send(reply, error);
      throw error;
    }
  };
  const check =
    (allowed: (user: VerifiedUser) => boolean, refusal: VerifyErrorCode = 'forbidden'): Hook =>
    async (request, reply) =>
      request.user !== null && !allowed(request.user) ? send(reply, new VerifyError(refusal)) : undefined;
  const helpers: FastifyGatepass = {
    authenticate,
    requireRole: (...roles) => [authenticate, check((user) => roles.includes(user.role))],
    requirePermission: (permission) => [authenticate, check((user) => verifier.can(user, permission))],
    requireAmr: (...methods) => [authenticate, check((user) => verifier.signedInWith(user, methods), 'mfa_required')],
  };
  // Not encapsulated: the decorations belong to the app that registers it, not to a child scope.
  return fastifyPlugin(
    async (app: FastifyInstance) => {
      app.decorateRequest('user', null);
      app.decorate('gatepassAuth', helpers);
    },
    { name: 'gatepass-verify', fastify: '5.x' },
  );
}

declare module 'fastify' {
  interface FastifyInstance {
    gatepassAuth: FastifyGatepass;
  }
}
