/**
 * What the two Fastify servers of the bench share: GET /bench/protected behind a given guard (one
 * definition, so the app and the guard-only diagnostic answer with the same schema), and serving on
 * 127.0.0.1 at a free port, announced after READY_MARKER, until SIGTERM or SIGINT.
 */
import type { FastifyInstance } from 'fastify';
import { authOf, type Hook } from '../../src/http/auth-guard.js';
import { READY_MARKER } from '../lib/processes.js';

export function addProtectedRoute(app: FastifyInstance, guard: Hook): void {
  app.get(
    '/bench/protected',
    {
      onRequest: guard,
      schema: {
        response: {
          200: {
            type: 'object',
            properties: { user_id: { type: 'integer' }, role: { type: 'string' } },
            required: ['user_id', 'role'],
            additionalProperties: false,
          },
        },
      },
    },
    (request) => {
      const auth = authOf(request);
      return { user_id: auth.userId, role: auth.role };
    },
  );
}

/** Listens, prints READY_MARKER with the port and `extra` (e.g. a token), and closes the app on a signal. */
export async function serveUntilSignalled(app: FastifyInstance, extra: Record<string, string> = {}): Promise<void> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  console.log(`${READY_MARKER} ${JSON.stringify({ port, ...extra })}`);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      app.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}
