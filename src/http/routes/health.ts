import { Type, type Static } from '@sinclair/typebox';
import type { HealthServices, RoutePlugin } from '../types.js';

const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('unavailable')]),
  checks: Type.Object({ database: Type.String(), redis: Type.Optional(Type.String()) }),
});

const Jwk = Type.Object(
  {
    kty: Type.String(),
    kid: Type.String(),
    alg: Type.String(),
    use: Type.Literal('sig'),
    n: Type.Optional(Type.String()),
    e: Type.Optional(Type.String()),
    crv: Type.Optional(Type.String()),
    x: Type.Optional(Type.String()),
    y: Type.Optional(Type.String()),
  },
  { description: 'A public key; the response schema cannot carry a private member even by mistake' },
);

/** Liveness, readiness and the public keys: routes without a caller to check. */
export const healthRoutes: RoutePlugin<HealthServices> = async (app, { database, revocations, redisConfigured, tokens }) => {
  app.get(
    '/ping',
    {
      schema: {
        tags: ['health'],
        summary: 'Liveness check',
        response: { 200: Type.Object({ status: Type.Literal('ok'), message: Type.Literal('pong') }) },
      },
    },
    () => ({ status: 'ok' as const, message: 'pong' as const }),
  );

  app.get(
    '/health/ready',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: does every backing service answer?',
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (request, reply) => {
      const checks: { database: string; redis?: string } = { database: 'ok' };
      try {
        await database.ping();
      } catch (error) {
        request.log.warn({ err: error }, 'readiness check: database unreachable');
        checks.database = 'unreachable';
      }
      if (redisConfigured) checks.redis = revocations.busStatus;
      const ready = Object.values(checks).every((check) => check === 'ok');
      return reply.code(ready ? 200 : 503).send({ status: ready ? ('ok' as const) : ('unavailable' as const), checks });
    },
  );

  // Every public key a live access token may need, and nothing else: HMAC secrets are never
  // published, so with the HS* algorithms the set is empty (API.md).
  app.get(
    '/.well-known/jwks.json',
    {
      schema: {
        tags: ['health'],
        summary: 'Public keys for verifying access tokens (RFC 7517)',
        description:
          'Verifiers may cache it for 5 minutes; after a key rotation the previous key stays listed until its last token expires.',
        response: { 200: Type.Object({ keys: Type.Array(Jwk) }) },
      },
    },
    (_request, reply) => {
      reply.header('Cache-Control', 'public, max-age=300');
      return { keys: tokens.accessKeys.jwks() as unknown as Static<typeof Jwk>[] };
    },
  );
};
