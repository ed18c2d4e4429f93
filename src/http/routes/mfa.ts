import cookie from '@fastify/cookie';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { accountOf, authOf } from '../auth-guard.js';
import { clientInfo } from '../client-info.js';
import { cookieModeGate } from '../cookie-mode.js';
import { BEARER_SECURITY, LoginPassword, TokenResponse, errorResponses, refTo } from '../schemas.js';
import type { MfaServices, RoutePlugin } from '../types.js';
import { sendTokenPair } from './auth.js';
import { AuthenticationBody, RequestOptions, assertionOf } from './passkeys.js';

/** A TOTP code (6 digits) or a recovery code (`xxxx-xxxx-xxxx`; case, dashes and spaces do not matter). */
export const MfaCode = Type.String({ minLength: 1, maxLength: 64, description: 'a current TOTP code, or an unused recovery code' });
const MfaToken = Type.String({ minLength: 1, maxLength: 8192, description: 'the mfa_token of the login answer' });
const RecoveryCodes = Type.Object({
  recovery_codes: Type.Array(Type.String(), { description: 'shown this once; each works once in place of a TOTP code' }),
});

const schemaBase = { tags: ['two-factor'], security: BEARER_SECURITY };

const statusSchema = {
  ...schemaBase,
  summary: 'Whether two-factor sign-in is on',
  description: 'For a page or an app deciding what to offer: TOTP on or off, and how many recovery codes are left (never the codes).',
  response: {
    200: Type.Object({ totp_enabled: Type.Boolean(), recovery_codes_left: Type.Integer() }),
    ...errorResponses(401),
  },
};

const setupSchema = {
  ...schemaBase,
  summary: 'Start TOTP enrolment',
  description:
    'A new secret, its `otpauth://` URI and the URI as an SVG QR code. Not active until confirmed; a new setup before that replaces ' +
    'the pending secret. 409 `mfa_already_enabled` when TOTP is on.',
  response: {
    200: Type.Object({ secret: Type.String(), otpauth_uri: Type.String(), qr_svg: Type.String() }),
    ...errorResponses(401, 409),
  },
};

const confirmSchema = {
  ...schemaBase,
  summary: 'Turn TOTP on with a current code',
  description: 'Answers the first set of 10 recovery codes. 400 `invalid_code`; 409 without a pending setup or when already on.',
  body: Type.Object({ code: MfaCode }),
  response: { 200: RecoveryCodes, ...errorResponses(400, 401, 409, 413, 415, 422, 429) },
};

const disableSchema = {
  ...schemaBase,
  summary: 'Turn TOTP off',
  description:
    'Needs the password (an account without one: a sign-in of this session less than 5 minutes ago) and a current code (or a ' +
    'recovery code); the recovery codes are void. 409 when TOTP is off.',
  body: Type.Object({ password: Type.Optional(LoginPassword), code: MfaCode }),
  response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 409, 413, 415, 422, 429) },
};

const regenerateSchema = {
  ...schemaBase,
  summary: 'A new set of recovery codes',
  description: 'Needs a current code (or a recovery code); every code of the old set stops working. 409 when TOTP is off.',
  body: Type.Object({ code: MfaCode }),
  response: { 200: RecoveryCodes, ...errorResponses(400, 401, 409, 413, 415, 422, 429) },
};

const verifySchema = {
  tags: ['auth'],
  summary: 'Complete a two-factor login',
  description:
    'The `mfa_token` of the login answer and a current TOTP code or a recovery code: the token response of a login, in cookie mode ' +
    'too (`X-Gatepass-Cookie: 1`). 400 `invalid_code`; 401 `invalid_mfa_token` for an unknown, used or expired token (5 minutes) ' +
    'and after 5 wrong codes; 429 while the account is locked (wrong codes count toward the lockout).',
  body: Type.Object({ mfa_token: MfaToken, code: MfaCode }),
  response: { 200: refTo(TokenResponse), ...errorResponses(400, 401, 403, 413, 415, 422, 429) },
};

const passkeyOptionsSchema = {
  tags: ['auth'],
  summary: 'Options for a passkey as the second step of a login',
  description:
    "When the login answer lists `passkey` among its `methods`: WebAuthn request options for the account's own passkeys, to pass " +
    'to navigator.credentials.get(); then POST /auth/mfa/passkey/verify. 401 `invalid_mfa_token`; 404 when the account has no passkey.',
  body: Type.Object({ mfa_token: MfaToken }),
  response: { 200: RequestOptions, ...errorResponses(401, 404, 413, 415, 422, 429) },
};

const passkeyVerifySchema = {
  tags: ['auth'],
  summary: 'Complete a two-factor login with a passkey',
  description:
    'The `mfa_token` and the assertion (AuthenticationResponseJSON) answering the options above: the token response of a login ' +
    '(cookie mode too), with amr `[first factor, "hwk" or "swk"]`. A refused passkey is 400 `invalid_code` and counts as a wrong code.',
  body: Type.Object({ mfa_token: MfaToken, credential: AuthenticationBody }),
  response: { 200: refTo(TokenResponse), ...errorResponses(400, 401, 403, 413, 415, 422, 429) },
};

/** Two-factor sign-in (API.md "/auth/mfa"): enrolment, recovery codes, and the second step of a login. */
export const mfaRoutes: RoutePlugin<MfaServices> = async (app, { mfa, guards, rateLimiter, settings }) => {
  // The second step of a login sets the refresh cookie exactly as login does, under the same path.
  if (!app.hasPlugin('@fastify/cookie')) await app.register(cookie);
  const cookiePath = `${app.prefix}/auth`;
  const onRequest = guards.requireUser;
  const bodyLimit = settings.authBodyLimitBytes;

  app.get('/auth/mfa', { onRequest, schema: statusSchema }, async (request) => {
    const { totpEnabled, recoveryCodesLeft } = await mfa.status(authOf(request).userId);
    return { totp_enabled: totpEnabled, recovery_codes_left: recoveryCodesLeft };
  });

  app.post('/auth/mfa/totp/setup', { onRequest, schema: setupSchema }, async (request, reply) => {
    const enrolment = await mfa.startTotpSetup(accountOf(request), clientInfo(request));
    reply.header('Cache-Control', 'no-store');
    return { secret: enrolment.secret, otpauth_uri: enrolment.otpauthUri, qr_svg: enrolment.qrSvg };
  });

  app.post('/auth/mfa/totp/confirm', { onRequest, bodyLimit, schema: confirmSchema }, async (request, reply) => {
    const codes = await mfa.confirmTotp(accountOf(request), request.body.code, clientInfo(request));
    reply.header('Cache-Control', 'no-store');
    return { recovery_codes: codes };
  });

  app.post('/auth/mfa/totp/disable', { onRequest, bodyLimit, schema: disableSchema }, async (request, reply) => {
    const { userId, sessionId } = authOf(request);
    await mfa.disableTotp(
      userId,
      { password: request.body.password, passwordField: 'password', sessionId },
      request.body.code,
      clientInfo(request),
    );
    return reply.code(204).send(null);
  });

  app.post('/auth/mfa/recovery-codes', { onRequest, bodyLimit, schema: regenerateSchema }, async (request, reply) => {
    const codes = await mfa.regenerateRecoveryCodes(accountOf(request), request.body.code, clientInfo(request));
    reply.header('Cache-Control', 'no-store');
    return { recovery_codes: codes };
  });

  // Counted per client before the body is read, as login is: the mfa_token is a second password prompt.
  const limitPerClient = async (request: FastifyRequest) => rateLimiter.consume('mfa-verify', request.ip);
  app.post(
    '/auth/mfa/verify',
    { onRequest: limitPerClient, preHandler: cookieModeGate(settings), bodyLimit, schema: verifySchema },
    async (request, reply) =>
      sendTokenPair(request, reply, await mfa.completeSignIn(request.body.mfa_token, request.body.code, clientInfo(request)), cookiePath),
  );

  app.post('/auth/mfa/passkey/options', { onRequest: limitPerClient, bodyLimit, schema: passkeyOptionsSchema }, async (request, reply) => {
    reply.header('Cache-Control', 'no-store');
    return mfa.passkeyOptions(request.body.mfa_token);
  });

  app.post(
    '/auth/mfa/passkey/verify',
    { onRequest: limitPerClient, preHandler: cookieModeGate(settings), bodyLimit, schema: passkeyVerifySchema },
    async (request, reply) => {
      const { mfa_token: mfaToken, credential } = request.body;
      return sendTokenPair(
        request,
        reply,
        await mfa.completeSignInWithPasskey(mfaToken, assertionOf(credential), clientInfo(request)),
        cookiePath,
      );
    },
  );
};
