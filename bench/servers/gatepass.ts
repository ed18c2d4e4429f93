/**
 * gatepass as the bench runs it: the real app from buildApp, configured from the environment like
 * `npm start`, plus one DB-free protected route, GET /bench/protected, behind the app's own auth
 * guard (the instance its routes use). Listens on 127.0.0.1 at a free port and prints it after READY_MARKER.
 */
import { loadSettings } from '../../src/config/settings.js';
import { buildApp } from '../../src/http/app.js';
import { authOf } from '../../src/http/auth-guard.js';
import { appGuard } from '../lib/gatepass-internals.js';
import { READY_MARKER } from '../lib/processes.js';

const cwd = process.cwd();
const settings = loadSettings(process.env, { cwd });
const app = await buildApp(settings, { cwd });
const guard = appGuard(app);

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
console.log(`${READY_MARKER} ${JSON.stringify({ port })}`);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
