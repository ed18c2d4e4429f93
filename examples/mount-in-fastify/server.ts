/**
 * A team's own Fastify app with gatepass mounted inside it under /auth-api: one process, one port,
 * the team's routes beside the whole auth API. The team's route below accepts gatepass access
 * tokens through `gatepass/verify`, with the same shared secret the mounted API signs with.
 */
import Fastify from 'fastify';
import { gatepass, gatepassServerOptions, loadSettings } from 'gatepass';
import { createVerifier, gatepassFastify } from 'gatepass/verify';

// The environment (and ./.env), exactly as `gatepass serve` reads it: DATABASE_URL, JWT_SECRET, …
const settings = loadSettings(process.env);

// gatepass's server options (credential redaction in logs, TRUST_PROXY, body limit, {detail, code}
// answers to malformed requests) are a good start; any Fastify options work.
const app = Fastify(gatepassServerOptions(settings));

await app.register(gatepass, { settings, prefix: '/auth-api' });

// The team's own routes: gatepass's error answers, security headers and body parsing stay on its own.
app.get('/', async () => ({ service: 'mount-in-fastify', auth: '/auth-api/docs' }));

if (settings.jwt.algorithm.startsWith('HS')) {
  // With an HMAC algorithm the verifier needs the secret; with a key pair, `jwksUrl` instead. The
  // verifier is stateless: it honours a logout when the token expires. A route that must honour it
  // at once asks gatepass (GET /auth-api/users/me).
  await app.register(gatepassFastify(createVerifier({ secret: settings.jwt.accessSecret, algorithms: [settings.jwt.algorithm] })));
  app.get('/api/whoami', { onRequest: app.gatepassAuth.authenticate }, async (request) => ({ user: request.user }));
}

await app.listen({ host: settings.host, port: settings.port });
