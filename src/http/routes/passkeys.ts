import cookie from '@fastify/cookie';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import type { Passkey } from '../../accounts/passkeys.js';
import { accountOf, authOf } from '../auth-guard.js';
import { clientInfo } from '../client-info.js';
import { cookieModeGate } from '../cookie-mode.js';
import { BEARER_SECURITY, TokenResponse, errorResponses, refTo } from '../schemas.js';
import type { GatepassApp, PasskeyServices, RoutePlugin } from '../types.js';
import { sendTokenPair } from './auth.js';

/** base64url, as WebAuthn's JSON forms carry binary values. */
const Base64Url = (maxLength: number, description?: string) =>
  Type.String({ minLength: 1, maxLength, pattern: '^[A-Za-z0-9_-]+={0,2}$', ...(description !== undefined && { description }) });

/** A credential id: at most 1023 bytes (WebAuthn), so at most 1364 base64url characters. */
const CredentialId = Base64Url(1364);
const PasskeyName = Type.String({ minLength: 1, maxLength: 100, pattern: '\\S' });
/** Browsers' extension outputs, handed to the library as they came. */
const ClientExtensionResults = Type.Object({}, { additionalProperties: true });
const AuthenticatorAttachment = Type.Optional(Type.Union([Type.Literal('platform'), Type.Literal('cross-platform')]));

/** RegistrationResponseJSON (what PublicKeyCredential.toJSON() and @simplewebauthn/browser give), with an optional name for the passkey. */
const RegistrationBody = Type.Object({
  id: CredentialId,
  rawId: CredentialId,
  type: Type.Literal('public-key'),
  response: Type.Object({
    clientDataJSON: Base64Url(4096),
    attestationObject: Base64Url(12288),
    authenticatorData: Type.Optional(Base64Url(12288)),
    transports: Type.Optional(Type.Array(Type.String({ maxLength: 32 }), { maxItems: 8 })),
    publicKeyAlgorithm: Type.Optional(Type.Integer()),
    publicKey: Type.Optional(Base64Url(4096)),
  }),
  authenticatorAttachment: AuthenticatorAttachment,
  clientExtensionResults: ClientExtensionResults,
  name: Type.Optional(PasskeyName),
});

/** AuthenticationResponseJSON. */
export const AuthenticationBody = Type.Object({
  id: CredentialId,
  rawId: CredentialId,
  type: Type.Literal('public-key'),
  response: Type.Object({
    clientDataJSON: Base64Url(4096),
    authenticatorData: Base64Url(4096),
    signature: Base64Url(4096),
    userHandle: Type.Optional(Type.Union([Base64Url(128), Type.Null()], { description: 'required: the passkey must be discoverable' })),
  }),
  authenticatorAttachment: AuthenticatorAttachment,
  clientExtensionResults: ClientExtensionResults,
});

/** The assertion as the library takes it: a browser may send a null user handle where the library expects none. */
export function assertionOf(body: Static<typeof AuthenticationBody>): AuthenticationResponseJSON {
  const { userHandle, ...assertion } = body.response;
  return { ...body, response: { ...assertion, userHandle: userHandle ?? undefined } };
}

export const PasskeyOut = Type.Object({
  id: Type.String({ description: 'the credential id (base64url)' }),
  name: Type.String(),
  created_at: Type.String({ format: 'date-time' }),
  last_used_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

/** The library's options objects, passed on whole: the fields named here are documented, any other is kept. */
const open = { additionalProperties: true };
const CredentialDescriptor = Type.Object(
  { id: Type.String(), type: Type.String(), transports: Type.Optional(Type.Array(Type.String())) },
  open,
);
const CreationOptions = Type.Object(
  {
    rp: Type.Object({ name: Type.String(), id: Type.Optional(Type.String()) }, open),
    user: Type.Object(
      {
        id: Type.String({ description: 'opaque user handle (base64url), never the email' }),
        name: Type.String(),
        displayName: Type.String(),
      },
      open,
    ),
    challenge: Type.String(),
    pubKeyCredParams: Type.Array(Type.Object({ alg: Type.Integer(), type: Type.String() }, open)),
    timeout: Type.Optional(Type.Integer()),
    excludeCredentials: Type.Optional(Type.Array(CredentialDescriptor)),
    authenticatorSelection: Type.Optional(Type.Object({}, open)),
    hints: Type.Optional(Type.Array(Type.String())),
    attestation: Type.Optional(Type.String()),
    extensions: Type.Optional(Type.Object({}, open)),
  },
  {
    ...open,
    description: 'PublicKeyCredentialCreationOptionsJSON: for PublicKeyCredential.parseCreationOptionsFromJSON or @simplewebauthn/browser',
  },
);
export const RequestOptions = Type.Object(
  {
    challenge: Type.String(),
    timeout: Type.Optional(Type.Integer()),
    rpId: Type.Optional(Type.String()),
    allowCredentials: Type.Optional(Type.Array(CredentialDescriptor)),
    userVerification: Type.Optional(Type.String()),
    hints: Type.Optional(Type.Array(Type.String())),
    extensions: Type.Optional(Type.Object({}, open)),
  },
  {
    ...open,
    description: 'PublicKeyCredentialRequestOptionsJSON: for PublicKeyCredential.parseRequestOptionsFromJSON or @simplewebauthn/browser',
  },
);

const IdParams = Type.Object({ id: CredentialId });

const signedIn = { tags: ['passkeys'], security: BEARER_SECURITY };

const registerOptionsSchema = {
  ...signedIn,
  summary: 'Start registering a passkey',
  description:
    'Options for navigator.credentials.create(): a discoverable credential (resident key required), user verification required, ' +
    "none of the caller's passkeys again (excludeCredentials). The challenge is good once, for 5 minutes, on any instance. " +
    '404 `passkeys_disabled` when the server has no WEBAUTHN_RP_ID/WEBAUTHN_ORIGINS (production).',
  response: { 200: CreationOptions, ...errorResponses(401, 404) },
};

const registerVerifySchema = {
  ...signedIn,
  summary: 'Finish registering a passkey',
  description:
    'The credential in its JSON form (PublicKeyCredential.toJSON(), or @simplewebauthn/browser startRegistration), with an optional ' +
    '`name`. The attestation is verified against the challenge of the options (spent now), WEBAUTHN_ORIGINS and WEBAUTHN_RP_ID, with ' +
    'user verification required. 400 `invalid_passkey` when it fails or the passkey is already registered.',
  body: RegistrationBody,
  response: { 201: PasskeyOut, ...errorResponses(400, 401, 404, 413, 415, 422) },
};

const listSchema = { ...signedIn, summary: 'Your passkeys', response: { 200: Type.Array(PasskeyOut), ...errorResponses(401) } };

const renameSchema = {
  ...signedIn,
  summary: 'Rename one of your passkeys',
  description: "404 for an unknown id and for another user's passkey alike.",
  params: IdParams,
  body: Type.Object({ name: PasskeyName }),
  response: { 200: PasskeyOut, ...errorResponses(401, 404, 413, 415, 422) },
};

const deleteSchema = {
  ...signedIn,
  summary: 'Delete one of your passkeys',
  description: "It signs nobody in from now on. 404 for an unknown id and for another user's passkey alike.",
  params: IdParams,
  response: { 204: Type.Null(), ...errorResponses(401, 404, 422) },
};

const loginOptionsSchema = {
  tags: ['passkeys'],
  summary: 'Start signing in with a passkey',
  description:
    'Options for navigator.credentials.get() without allowCredentials: the authenticator offers its passkeys for this site, no ' +
    'email needed. User verification required; the challenge is good once, for 5 minutes, on any instance. Rate-limited per client ' +
    'as /auth/login.',
  body: Type.Object({}),
  response: { 200: RequestOptions, ...errorResponses(404, 413, 415, 429) },
};

const loginVerifySchema = {
  tags: ['passkeys'],
  summary: 'Sign in with a passkey',
  description:
    'The assertion in its JSON form (PublicKeyCredential.toJSON(), or @simplewebauthn/browser startAuthentication): the token ' +
    'response of a login, in cookie mode too (`X-Gatepass-Cookie: 1`). Access tokens carry `amr` ["hwk"] for a device-bound passkey ' +
    'and ["swk"] for a synced one (RFC 8176). 401 `invalid_credential` for an unknown passkey, a spent or expired challenge, another ' +
    'origin or RP ID, a bad signature, no user verification, a signature counter that did not go up (audited as ' +
    '`passkey_counter_regressed`), or an inactive account. Rate-limited per client as /auth/login.',
  body: AuthenticationBody,
  response: { 200: refTo(TokenResponse), ...errorResponses(401, 403, 404, 413, 415, 422, 429) },
};

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function passkeyOut(passkey: Passkey): Static<typeof PasskeyOut> {
  return {
    id: passkey.id,
    name: passkey.name,
    created_at: new Date(passkey.createdAt).toISOString(),
    last_used_at: iso(passkey.lastUsedAt),
  };
}

/** An optional body: a bare POST is as good as `{}`. */
async function bodyOptional(request: FastifyRequest): Promise<void> {
  request.body ??= {};
}

function signedInRoutes(app: GatepassApp, { passkeys, guards, settings }: PasskeyServices): void {
  const onRequest = guards.requireUser;
  const bodyLimit = settings.authBodyLimitBytes;

  app.post('/auth/passkeys/register/options', { onRequest, schema: registerOptionsSchema }, async (_request, reply) => {
    reply.header('Cache-Control', 'no-store');
    return passkeys.registrationOptions(accountOf(_request));
  });

  app.post('/auth/passkeys/register/verify', { onRequest, bodyLimit, schema: registerVerifySchema }, async (request, reply) => {
    const { name, ...credential } = request.body;
    const passkey = await passkeys.register(accountOf(request), credential, name?.trim(), clientInfo(request));
    return reply.code(201).send(passkeyOut(passkey));
  });

  app.get('/auth/passkeys', { onRequest, schema: listSchema }, async (request) =>
    (await passkeys.list(authOf(request).userId)).map(passkeyOut),
  );

  app.patch('/auth/passkeys/:id', { onRequest, bodyLimit, schema: renameSchema }, async (request) =>
    passkeyOut(await passkeys.rename(authOf(request).userId, request.params.id, request.body.name.trim(), clientInfo(request))),
  );

  app.delete('/auth/passkeys/:id', { onRequest, schema: deleteSchema }, async (request, reply) => {
    await passkeys.remove(authOf(request).userId, request.params.id, clientInfo(request));
    return reply.code(204).send(null);
  });
}

/**
 * Passkeys (API.md "/auth/passkeys"): registration and the list for the signed-in user, and
 * usernameless sign-in. Sign-in answers as /auth/login does, cookie mode included, under the same
 * cookie path and per-client rate limit.
 */
export const passkeyRoutes: RoutePlugin<PasskeyServices> = async (app, services) => {
  if (!app.hasPlugin('@fastify/cookie')) await app.register(cookie);
  const { passkeys, rateLimiter, settings } = services;
  const cookiePath = `${app.prefix}/auth`;
  const bodyLimit = settings.authBodyLimitBytes;
  // Counted before the body is read, so that even malformed requests spend the client's budget.
  const onRequest = async (request: FastifyRequest) => rateLimiter.consume('login', request.ip);

  signedInRoutes(app, services);

  app.post(
    '/auth/passkeys/login/options',
    { onRequest, preValidation: bodyOptional, bodyLimit, schema: loginOptionsSchema },
    async (_request, reply) => {
      reply.header('Cache-Control', 'no-store');
      return passkeys.loginOptions();
    },
  );

  // The cookie-mode gate runs before the assertion is checked, as at /auth/login: a forged cookie-mode sign-in starts no session.
  app.post(
    '/auth/passkeys/login/verify',
    { onRequest, preHandler: cookieModeGate(settings), bodyLimit, schema: loginVerifySchema },
    async (request, reply) => {
      // Some clients write an absent user handle as null.
      return sendTokenPair(request, reply, await passkeys.login(assertionOf(request.body), clientInfo(request)), cookiePath);
    },
  );
};
