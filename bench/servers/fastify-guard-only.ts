/**
 * Diagnostic, not a baseline: a Fastify instance with nothing but gatepass's auth guard (taken from
 * an app built by buildApp that never listens, so none of the app's plugins run) on
 * GET /bench/protected (same response schema as in servers/gatepass.ts) and GET /ping. Set beside the
 * bare node:http server and the full app, it splits the gap between them into what Fastify itself
 * costs and what the app's plugins and hooks (security headers, CORS, body parsing, docs…) add.
 */
import Fastify from 'fastify';
import { loadSettings } from '../../src/config/settings.js';
import { authOf } from '../../src/http/auth-guard.js';
import { appServices, issueAccessToken } from '../lib/gatepass-internals.js';
import { READY_MARKER } from '../lib/processes.js';

const cwd = process.cwd();
const settings = loadSettings(process.env, { cwd });
const { services, guards, close } = await appServices(settings, cwd);
const guard = guards.requireAuth;
const app = Fastify({ logger: { level: settings.logLevel } });
app.decorateRequest('auth', null);
app.addHook('onClose', close);
app.get('/ping', () => ({ status: 'ok', message: 'pong' }));
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

await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
const port = typeof address === 'object' && address !== null ? address.port : 0;
console.log(`${READY_MARKER} ${JSON.stringify({ port, token: issueAccessToken(services, 1) })}`);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
