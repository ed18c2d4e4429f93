import { Type } from '@sinclair/typebox';
import { clientInfo, requestOrigin } from '../client-info.js';
import { SERVICE_SECURITY, errorResponses } from '../schemas.js';
import type { OAuthServices, RoutePlugin } from '../types.js';

const TokenTypeHint = Type.Union([Type.Literal('access_token'), Type.Literal('refresh_token')]);

/** RFC 7662 §2.1 and RFC 7009 §2.1: `token` and an optional hint, as a form (JSON is accepted too). */
const TokenRequest = Type.Object({
  token: Type.String({ minLength: 1, maxLength: 8192 }),
  // An unknown hint is ignored, not refused (RFC 7009 §2.1 asks the server to search all its tokens).
  token_type_hint: Type.Optional(Type.String({ maxLength: 64 })),
});

const IntrospectionOut = Type.Object({
  active: Type.Boolean(),
  sub: Type.Optional(Type.String()),
  sid: Type.Optional(Type.String()),
  role: Type.Optional(Type.String()),
  exp: Type.Optional(Type.Integer()),
  iat: Type.Optional(Type.Integer()),
  jti: Type.Optional(Type.String()),
  token_type: Type.Optional(TokenTypeHint),
});

const MetadataOut = Type.Object({
  issuer: Type.String(),
  jwks_uri: Type.String(),
  token_endpoint: Type.String(),
  introspection_endpoint: Type.String(),
  revocation_endpoint: Type.String(),
  revocation_feed_endpoint: Type.String(),
  grant_types_supported: Type.Array(Type.String()),
  token_endpoint_auth_methods_supported: Type.Array(Type.String()),
  introspection_endpoint_auth_methods_supported: Type.Array(Type.String()),
  revocation_endpoint_auth_methods_supported: Type.Array(Type.String()),
  access_token_signing_alg_values_supported: Type.Array(Type.String()),
});

const serviceSchemaBase = {
  tags: ['services'],
  security: SERVICE_SECURITY,
  consumes: ['application/x-www-form-urlencoded', 'application/json'],
};

function hintOf(value: string | undefined): 'access_token' | 'refresh_token' | undefined {
  return value === 'access_token' || value === 'refresh_token' ? value : undefined;
}

/**
 * The standard token endpoints for other services (API.md "Services and token endpoints"): RFC 8414
 * metadata, RFC 7662 introspection and RFC 7009 revocation. The last two take a service credential.
 */
export const oauthRoutes: RoutePlugin<OAuthServices> = async (app, { introspection, guards, issuer, algorithms }) => {
  app.get(
    '/.well-known/oauth-authorization-server',
    {
      schema: {
        tags: ['services'],
        summary: 'Authorization server metadata (RFC 8414)',
        description:
          '`issuer` is JWT_ISSUER when it is a URL, else the origin this request reached. ' +
          '`revocation_feed_endpoint` and `access_token_signing_alg_values_supported` are gatepass extensions.',
        response: { 200: MetadataOut },
      },
    },
    (request) => {
      const base = `${requestOrigin(request)}${app.prefix}`;
      return {
        issuer: issuer ?? base,
        jwks_uri: `${base}/.well-known/jwks.json`,
        token_endpoint: `${base}/auth/login`,
        introspection_endpoint: `${base}/oauth/introspect`,
        revocation_endpoint: `${base}/oauth/revoke`,
        revocation_feed_endpoint: `${base}/auth/revocations`,
        grant_types_supported: ['password'],
        token_endpoint_auth_methods_supported: ['client_secret_basic'],
        introspection_endpoint_auth_methods_supported: ['client_secret_basic'],
        revocation_endpoint_auth_methods_supported: ['client_secret_basic'],
        access_token_signing_alg_values_supported: algorithms,
      };
    },
  );

  app.post(
    '/oauth/introspect',
    {
      onRequest: guards.requireService,
      schema: {
        ...serviceSchemaBase,
        summary: 'Token introspection (RFC 7662)',
        description:
          'For access and refresh tokens. `{"active": false}` alone for a revoked, expired, foreign or malformed token, whatever the ' +
          "reason. An access token is active as the server's own guard would accept it; a refresh token while it can still be exchanged. " +
          '503 while revocations made on other instances may be unknown here.',
        body: TokenRequest,
        response: { 200: IntrospectionOut, ...errorResponses(401, 413, 415, 422, 503) },
      },
    },
    async (request, reply) => {
      // RFC 7662 §2.2: the answer is about a live credential; it must not be cached.
      reply.header('Cache-Control', 'no-store');
      return introspection.introspect(request.body.token, hintOf(request.body.token_type_hint));
    },
  );

  app.post(
    '/oauth/revoke',
    {
      onRequest: guards.requireService,
      schema: {
        ...serviceSchemaBase,
        summary: 'Token revocation (RFC 7009)',
        description:
          'A refresh token ends its session (every token of it); an access token is refused from then on, by every instance and by ' +
          'every verifier that follows the revocation feed. 200 with an empty body for any well-formed request, genuine token or not.',
        body: TokenRequest,
        response: { 200: Type.Object({}), ...errorResponses(401, 413, 415, 422) },
      },
    },
    async (request) => {
      const service = request.service;
      if (service !== null) {
        await introspection.revoke(request.body.token, hintOf(request.body.token_type_hint), {
          name: service.name,
          client: clientInfo(request),
        });
      }
      return {};
    },
  );
};
