import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { authOf } from '../auth-guard.js';
import { clientInfo } from '../client-info.js';
import { BEARER_SECURITY, MessageResponse, errorResponses } from '../schemas.js';
import type { EmailVerificationServices, RoutePlugin } from '../types.js';

const verifySchema = {
  tags: ['auth'],
  summary: 'Verify an email address with the token from the verification mail',
  description:
    'The token (the `token=` line of the mail, or the `#verify-email=` part of its link) is single-use and valid 24 hours; ' +
    'an unknown, used or expired one answers 400 `invalid_token`. `email_verified` becomes true. A token sent for an email ' +
    'change also switches the account to the new address (409 `email_taken` when another account took it meanwhile, the token stays usable), and the old address is told.',
  body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 256 }) }),
  response: { 204: Type.Null(), ...errorResponses(400, 409, 413, 415, 422, 429) },
};

const resendSchema = {
  tags: ['auth'],
  security: BEARER_SECURITY,
  summary: 'Send a new verification email',
  description:
    "To the address of a pending email change if there is one, else to the account's address; older tokens stop working. " +
    '409 `already_verified` when the address is verified and no change is pending. At most 3 verification emails per account ' +
    'and hour (registration and email changes included), then 429 with Retry-After; also limited per client address.',
  response: { 202: MessageResponse, ...errorResponses(401, 409, 429) },
};

/** Email verification (API.md "/auth/email"): spending a mailed token, and asking for a new one. */
export const emailVerificationRoutes: RoutePlugin<EmailVerificationServices> = async (
  app,
  { emailVerification, guards, rateLimiter, authBodyLimitBytes },
) => {
  // Counted before the body is read, as the other unauthenticated token routes are.
  const limitPerClient = (bucket: string) => async (request: FastifyRequest) => rateLimiter.consume(bucket, request.ip);
  // Mail still being written when the app closes is waited for, not cut off mid-way.
  app.addHook('onClose', () => emailVerification.settle());

  app.post(
    '/auth/email/verify',
    { onRequest: limitPerClient('email-verify'), bodyLimit: authBodyLimitBytes, schema: verifySchema },
    async (request, reply) => {
      await emailVerification.verify(request.body.token, clientInfo(request));
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/auth/email/verify/resend',
    { onRequest: [limitPerClient('email-verify-resend'), ...guards.requireUser], schema: resendSchema },
    async (request, reply) => {
      await emailVerification.resend(authOf(request).userId, clientInfo(request));
      return reply.code(202).send({ message: 'A verification email is on its way.' });
    },
  );
};
