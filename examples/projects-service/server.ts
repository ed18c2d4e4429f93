/**
 * The seeds' "GET /api/projects" service: an API of its own that trusts gatepass access tokens
 * without calling gatepass for each request. It fetches gatepass's public keys (JWKS) and verifies
 * each token locally; a rotated key is picked up when a token names a kid it has not seen.
 *
 * Given a service credential (GATEPASS_CLIENT_ID, GATEPASS_CLIENT_SECRET), it also follows
 * gatepass's revocation feed: a logged-out, demoted or deactivated user's token is refused here
 * within moments, as on gatepass itself, and every request is refused (503) while the feed is silent.
 */
import Fastify from 'fastify';
import { createVerifier, gatepassFastify } from 'gatepass/verify';

const gatepassUrl = (process.env.GATEPASS_URL ?? 'http://127.0.0.1:8000').replace(/\/+$/, '');
const clientId = process.env.GATEPASS_CLIENT_ID;
const clientSecret = process.env.GATEPASS_CLIENT_SECRET;
const verifier = createVerifier({
  jwksUrl: process.env.GATEPASS_JWKS_URL ?? `${gatepassUrl}/.well-known/jwks.json`,
  ...(process.env.JWT_ISSUER !== undefined && { issuer: process.env.JWT_ISSUER }),
  ...(process.env.JWT_AUDIENCE !== undefined && { audience: process.env.JWT_AUDIENCE }),
  ...(clientId !== undefined &&
    clientSecret !== undefined && {
      revocations: {
        url: `${gatepassUrl}/auth/revocations`,
        clientId,
        clientSecret,
        ...(process.env.REVOCATION_MAX_SILENCE_SECONDS !== undefined && {
          maxSilenceSeconds: Number(process.env.REVOCATION_MAX_SILENCE_SECONDS),
        }),
      },
    }),
});

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } });
await app.register(gatepassFastify(verifier));
app.addHook('onClose', () => verifier.close());

/** A stand-in for this service's own data: projects per owner. */
const projects = [
  { id: 1, name: 'Compilers course', owner_id: 1 },
  { id: 2, name: 'Databases lab', owner_id: 2 },
];

app.get('/api/projects', { onRequest: app.gatepassAuth.authenticate }, async (request) => {
  const user = request.user!;
  return { user_id: user.id, role: user.role, projects: projects.filter((project) => project.owner_id === user.id) };
});

// Teachers and admins see every project: the role comes from the token, checked here.
app.get('/api/projects/all', { onRequest: app.gatepassAuth.requireRole('teacher', 'admin') }, async () => ({ projects }));

// Ready once the revocation feed has been caught up with (at once without one).
let ready = false;
void verifier.ready().then(() => (ready = true));
app.get('/health', async (_request, reply) => reply.code(ready ? 200 : 503).send({ status: ready ? 'ok' : 'starting' }));

await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 8100) });
