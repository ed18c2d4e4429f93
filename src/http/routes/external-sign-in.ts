import cookie from '@fastify/cookie';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { EXTERNAL_DETAILS, OAUTH_FLOW_TTL_MS, type ExternalIdentity } from '../../accounts/external/external-sign-in.js';
import { ExternalSignInError } from '../../accounts/external/provider.js';
import { GatepassError } from '../../errors.js';
import { authOf } from '../auth-guard.js';
import { clientInfo } from '../client-info.js';
import { allowCookieAfterExternalSignIn, setRefreshCookie } from '../cookie-mode.js';
import { BEARER_SECURITY, errorResponses } from '../schemas.js';
import type { ExternalSignInServices, RoutePlugin } from '../types.js';

/**
 * The flow cookie: a random value whose SHA-256 the flow stores, so that only the browser that started
 * a flow can complete it. SameSite=Lax, because it must come back on the provider's top-level redirect
 * to the callback; HttpOnly and Secure like the refresh cookie; `__Host-` over HTTPS (Path=/, no Domain).
 */
const FLOW_COOKIE = 'gatepass_oauth_flow';
const HOST_FLOW_COOKIE = `__Host-${FLOW_COOKIE}`;

const ProviderParams = Type.Object({ provider: Type.String({ minLength: 1, maxLength: 32, pattern: '^[a-z0-9][a-z0-9_-]*$' }) });
const Redirect = Type.String({
  description:
    'a path on the page, e.g. `/account`; anything that is not a same-origin path of at most 512 characters (`//host`, `https://…`, a backslash, a control character) becomes `/`',
});

const ProviderOut = Type.Object({ id: Type.String(), name: Type.String({ description: "the button's label" }) });

export const IdentityOut = Type.Object({
  id: Type.Integer(),
  provider: Type.String(),
  email: Type.Union([Type.String(), Type.Null()]),
  email_verified: Type.Boolean({ description: 'whether the provider asserted it verified the address' }),
  created_at: Type.String({ format: 'date-time' }),
  last_used_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});

const CallbackQuery = Type.Object(
  {
    code: Type.Optional(Type.String()),
    state: Type.Optional(Type.String()),
    iss: Type.Optional(Type.String({ description: 'RFC 9207: checked against the issuer when the provider advertises it' })),
    error: Type.Optional(Type.String()),
    error_description: Type.Optional(Type.String()),
  },
  { additionalProperties: true },
);

const Redirected = Type.Null({ description: 'a redirect (Location)' });
const REFUSAL_CODES =
  '`invalid_state` (no such flow, spent, expired, started by another browser or for another provider), `invalid_callback` ' +
  '(state, RFC 9207 iss, or the ID token — signature, iss, aud, exp, nonce — did not check out), `access_denied`, `provider_error`, ' +
  '`provider_unavailable`, `email_missing`, `link_required` (an account has this address but the provider does not assert it verified: ' +
  'sign in and link it), `identity_in_use`, `account_disabled`, `email_not_verified`, `rate_limited`, `server_error`';

const providersSchema = {
  tags: ['external sign-in'],
  summary: 'The configured external sign-in providers',
  description: 'One button per entry; an empty list when OAUTH_PROVIDERS is unset.',
  response: { 200: Type.Array(ProviderOut) },
};

const startSchema = {
  tags: ['external sign-in'],
  summary: 'Start signing in with an external provider',
  description:
    '302 to the provider with PKCE (S256), `state` and (OpenID Connect) `nonce`, and sets the flow cookie (HttpOnly, SameSite=Lax, ' +
    '10 minutes). The provider sends the browser back to `PUBLIC_URL/auth/oauth/{provider}/callback`. When the provider cannot be ' +
    'reached: 302 to `PUBLIC_URL/?error=provider_unavailable`. Rate-limited per client as /auth/login.',
  params: ProviderParams,
  querystring: Type.Object({ redirect: Type.Optional(Redirect) }),
  response: { 302: Redirected, ...errorResponses(404, 422) },
};

const callbackSchema = {
  tags: ['external sign-in'],
  summary: "The provider's redirect back",
  description:
    'Checks the flow (state, flow cookie, provider, single use), then lets the provider check the rest (code exchange with the PKCE ' +
    'verifier, RFC 9207 iss, ID token). Success: the refresh cookie of cookie mode and 302 to `PUBLIC_URL + redirect` (the page then ' +
    'refreshes in cookie mode; access tokens carry `amr` ["fed"]). An account with TOTP on: 302 to `PUBLIC_URL + redirect#mfa=<mfa_token>&methods=<comma-separated>` ' +
    '(the login answer\'s methods; complete with POST /auth/mfa/verify: amr ["fed","otp"], or the passkey routes). A link flow: 302 to `PUBLIC_URL + redirect?linked=<provider>`. ' +
    `Refusals: 302 to \`PUBLIC_URL/?error=<code>\`, audited as external_sign_in_failed; codes: ${REFUSAL_CODES}.`,
  params: ProviderParams,
  querystring: CallbackQuery,
  response: { 302: Redirected, ...errorResponses(404, 422) },
};

const linkSchema = {
  tags: ['external sign-in'],
  summary: 'Start linking an external identity to your account',
  description:
    'Answers the provider URL to send the browser to and sets the flow cookie (call it from the page, with credentials). After the ' +
    "provider's sign-in, its callback links the identity to the caller and redirects to `PUBLIC_URL + redirect?linked=<provider>`; " +
    'an identity linked to another account is refused (`?error=identity_in_use`). 503 `provider_unavailable` when the provider ' +
    'cannot be reached.',
  security: BEARER_SECURITY,
  params: ProviderParams,
  body: Type.Object({ redirect: Type.Optional(Redirect) }),
  response: {
    200: Type.Object({ authorization_url: Type.String({ format: 'uri' }) }),
    ...errorResponses(401, 404, 413, 415, 422, 503),
  },
};

const listSchema = {
  tags: ['external sign-in'],
  summary: 'Your linked external identities',
  security: BEARER_SECURITY,
  response: { 200: Type.Array(IdentityOut), ...errorResponses(401) },
};

const unlinkSchema = {
  tags: ['external sign-in'],
  summary: 'Unlink one of your external identities',
  description:
    "404 for an unknown id and for another user's identity alike; 409 `last_sign_in_method` when it is the account's last way to " +
    'sign in (no password, no passkey, no other identity).',
  security: BEARER_SECURITY,
  params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
  response: { 204: Type.Null(), ...errorResponses(401, 404, 409, 422) },
};

export function identityOut(identity: ExternalIdentity): Static<typeof IdentityOut> {
  return {
    id: identity.id,
    provider: identity.provider,
    email: identity.email,
    email_verified: identity.emailVerified,
    created_at: new Date(identity.createdAt).toISOString(),
    last_used_at: identity.lastUsedAt === null ? null : new Date(identity.lastUsedAt).toISOString(),
  };
}

/** An optional body: a bare POST is as good as `{}`. */
async function bodyOptional(request: FastifyRequest): Promise<void> {
  request.body ??= {};
}

/** The answers of the browser's round trip: never cached, and never a Referer to the provider or the page (the URL holds a code or a state). */
function privateRedirect(reply: FastifyReply): FastifyReply {
  return reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache').header('Referrer-Policy', 'no-referrer');
}

/**
 * External sign-in (API.md "External identity providers"): the providers' list, the flow's start and
 * callback, the link of an identity to the signed-in account, and the linked identities. The page's
 * address is PUBLIC_URL: every redirect goes there, and only there.
 */
export const externalSignInRoutes: RoutePlugin<ExternalSignInServices> = async (app, services) => {
  if (!app.hasPlugin('@fastify/cookie')) await app.register(cookie);
  const { externalSignIn, guards, rateLimiter, settings } = services;
  const refreshCookiePath = `${app.prefix}/auth`;
  const flowCookiePath = `${app.prefix}/auth/oauth`;
  const flowCookieScope = (request: FastifyRequest) =>
    request.protocol === 'https' ? { name: HOST_FLOW_COOKIE, path: '/' } : { name: FLOW_COOKIE, path: flowCookiePath };
  const cookieOptions = (path: string) => ({ httpOnly: true, secure: true, sameSite: 'lax' as const, path });

  const setFlowCookie = (request: FastifyRequest, reply: FastifyReply, value: string) => {
    const { name, path } = flowCookieScope(request);
    reply.setCookie(name, value, { ...cookieOptions(path), maxAge: OAUTH_FLOW_TTL_MS / 1000 });
  };

  /** A page address: PUBLIC_URL and a path already made safe, with a query and a fragment; it never leaves PUBLIC_URL's origin. */
  const pageUrl = (path: string, extra: { query?: Record<string, string>; fragment?: string } = {}): string => {
    const home = new URL(settings.publicUrl);
    const url = new URL(`${settings.publicUrl}${path}`);
    if (url.origin !== home.origin) return `${settings.publicUrl}/`;
    for (const [name, value] of Object.entries(extra.query ?? {})) url.searchParams.set(name, value);
    url.hash = extra.fragment ?? '';
    return url.toString();
  };
  const errorPage = (code: string) => pageUrl('/', { query: { error: code } });

  /** What a refusal shows the page; a fault of ours is logged here (a refusal was logged and audited by the service). */
  const refusalCode = (request: FastifyRequest, error: unknown): string => {
    if (error instanceof ExternalSignInError) return error.code;
    if (error instanceof GatepassError && error.code === 'rate_limited') return 'rate_limited';
    request.log.error({ err: error }, 'external sign-in failed');
    return 'server_error';
  };

  app.get('/auth/oauth/providers', { schema: providersSchema }, async () => externalSignIn.list());

  app.get('/auth/oauth/:provider/start', { schema: startSchema }, async (request, reply) => {
    privateRedirect(reply);
    // An unknown provider is a bad link, answered as such (404), not a trip to the page.
    externalSignIn.provider(request.params.provider);
    try {
      await rateLimiter.consume('oauth-start', request.ip);
      const flow = await externalSignIn.start(request.params.provider, { redirect: request.query.redirect });
      setFlowCookie(request, reply, flow.browserBinding);
      return await reply.redirect(flow.authorizationUrl.toString(), 302);
    } catch (error) {
      return reply.redirect(errorPage(refusalCode(request, error)), 302);
    }
  });

  app.get('/auth/oauth/:provider/callback', { schema: callbackSchema }, async (request, reply) => {
    privateRedirect(reply);
    externalSignIn.provider(request.params.provider);
    const { name, path } = flowCookieScope(request);
    const binding = request.cookies[name];
    // The flow is over whatever happens: its cookie goes.
    reply.clearCookie(name, cookieOptions(path));
    try {
      await rateLimiter.consume('oauth-callback', request.ip);
      // Only the query matters: the provider rebuilds the callback on the registered redirect URI.
      const callbackUrl = new URL(request.url, 'http://callback.invalid');
      const outcome = await externalSignIn.complete(request.params.provider, callbackUrl, binding, clientInfo(request));
      switch (outcome.kind) {
        case 'linked':
          return await reply.redirect(pageUrl(outcome.redirectPath, { query: { linked: request.params.provider } }), 302);
        case 'mfa_required':
          // A fragment: the browser never sends it to a server, nor in a Referer.
          return await reply.redirect(
            pageUrl(outcome.redirectPath, { fragment: `mfa=${outcome.mfaToken}&methods=${outcome.methods.join(',')}` }),
            302,
          );
        case 'signed_in':
          allowCookieAfterExternalSignIn(request);
          setRefreshCookie(request, reply, outcome.pair.refreshToken, outcome.pair.refreshExpiresIn, refreshCookiePath);
          return await reply.redirect(pageUrl(outcome.redirectPath), 302);
      }
    } catch (error) {
      return reply.redirect(errorPage(refusalCode(request, error)), 302);
    }
  });

  app.post(
    '/auth/identities/link/:provider',
    { onRequest: guards.requireUser, preValidation: bodyOptional, bodyLimit: settings.authBodyLimitBytes, schema: linkSchema },
    async (request, reply) => {
      reply.header('Cache-Control', 'no-store');
      try {
        const flow = await externalSignIn.start(request.params.provider, {
          redirect: request.body.redirect,
          linkUserId: authOf(request).userId,
        });
        setFlowCookie(request, reply, flow.browserBinding);
        return { authorization_url: flow.authorizationUrl.toString() };
      } catch (error) {
        if (error instanceof ExternalSignInError && error.code === 'provider_unavailable')
          throw new GatepassError('provider_unavailable', EXTERNAL_DETAILS.provider_unavailable);
        throw error;
      }
    },
  );

  app.get('/auth/identities', { onRequest: guards.requireUser, schema: listSchema }, async (request) =>
    (await externalSignIn.identities(authOf(request).userId)).map(identityOut),
  );

  app.delete('/auth/identities/:id', { onRequest: guards.requireUser, schema: unlinkSchema }, async (request, reply) => {
    await externalSignIn.unlink(authOf(request).userId, request.params.id, clientInfo(request));
    return reply.code(204).send(null);
  });
};
