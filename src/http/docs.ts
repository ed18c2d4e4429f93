import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

/**
 * /openapi.json is generated from the route schemas themselves; /docs serves Swagger UI from the
 * installed package (no CDN). Its Authorize button runs the OAuth2 password flow against /auth/login.
 * All three sit under the prefix of `app`, and the document names only the routes registered in
 * `app` after this (gatepass's own, not a host app's).
 */
export async function registerDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'gatepass',
        version: '0.1.0',
        description: 'JWT authentication service: register, log in, refresh with rotation and reuse detection, log out, protected routes.',
      },
      tags: [
        { name: 'auth', description: 'Registration, login, refresh and logout' },
        { name: 'users', description: 'The signed-in user' },
        { name: 'two-factor', description: 'TOTP enrolment and recovery codes (the login step is POST /auth/mfa/verify)' },
        { name: 'passkeys', description: 'Passkeys (WebAuthn): registration, your list, sign-in without a password or an email' },
        { name: 'tasks', description: "The caller's own tasks" },
        { name: 'admin', description: 'Administration: users, roles, audit (by permission)' },
        { name: 'health', description: 'Liveness, readiness, keys and metrics' },
      ],
      components: {
        securitySchemes: {
          OAuth2PasswordBearer: {
            type: 'oauth2',
            description: 'Log in with email (as username) and password; the access token is sent as a Bearer token.',
            flows: { password: { tokenUrl: `${app.prefix}/auth/login`, scopes: {} } },
          },
          ServiceCredential: {
            type: 'http',
            scheme: 'basic',
            description:
              'A service credential (`gatepass service create NAME`): client_id as the user name, client_secret as the password.',
          },
        },
      },
    },
    // Name shared components by their $id instead of def-0, def-1, …
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { persistAuthorization: false } });
  app.get('/openapi.json', { schema: { hide: true } }, () => app.swagger());
}
