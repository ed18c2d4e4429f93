import type { Permission } from '../tokens/roles.js';
import { VerifyError, type VerifiedUser, type Verifier, type VerifyErrorCode } from './verifier.js';

/** The parts of Express's request and response this middleware uses (no dependency on Express's types). */
interface RequestLike {
  headers: { authorization?: string | undefined };
  user?: VerifiedUser;
}
interface ResponseLike {
  status(code: number): ResponseLike;
  set(name: string, value: string): ResponseLike;
  json(body: unknown): unknown;
}
type Next = (error?: unknown) => void;
export type Middleware = (request: RequestLike, response: ResponseLike, next: Next) => void;

function send(response: ResponseLike, error: VerifyError): void {
  const header = error.wwwAuthenticate;
  if (header !== undefined) response.set('WWW-Authenticate', header);
  response.status(error.status).json(error.body);
}

/**
 * Express middleware for gatepass tokens: `app.get('/x', auth.authenticate, handler)`, or
 * `auth.requireRole('teacher')`. Sets `req.user`; failures answer exactly as the gatepass server does.
 */
export function gatepassExpress(verifier: Verifier): {
  authenticate: Middleware;
  requireRole(...roles: string[]): Middleware;
  requirePermission(permission: Permission): Middleware;
  /** A sign-in with one of these methods (RFC 8176 `amr`), else 403 mfa_required. */
  requireAmr(...methods: string[]): Middleware;
} {
  const guard =
    (allowed: (user: VerifiedUser) => boolean, refusal: VerifyErrorCode = 'forbidden'): Middleware =>
    (request, response, next) => {
      verifier.verifyAuthorization(request.headers.authorization).then(
        (user) => {
          request.user = user;
          if (allowed(user)) next();
          else send(response, new VerifyError(refusal));
        },
        (error: unknown) => (error instanceof VerifyError ? send(response, error) : next(error)),
      );
    };
  return {
    authenticate: guard(() => true),
    requireRole: (...roles) => guard((user) => roles.includes(user.role)),
    requirePermission: (permission) => guard((user) => verifier.can(user, permission)),
    requireAmr: (...methods) => guard((user) => verifier.signedInWith(user, methods), 'mfa_required'),
  };
}
