/**
 * The seeds' "GET /api/projects" service: an API of its own that trusts gatepass access tokens
 * without calling gatepass. It fetches gatepass's public keys once (JWKS) and verifies each token
 * locally; a rotated key is picked up when a token names a kid it has not seen.
 */
import Fastify from 'fastify';
import { createVerifier, gatepassFastify } from 'gatepass/verify';

const jwksUrl = process.env.GATEPASS_JWKS_URL ?? 'http://127.0.0.1:8000/.well-known/jwks.json';
const verifier = createVerifier({
  jwksUrl,
  ...(process.env.JWT_ISSUER !== undefined && { issuer: process.env.JWT_ISSUER }),
  ...(process.env.JWT_AUDIENCE !== undefined && { audience: process.env.JWT_AUDIENCE }),
});

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } });
await app.register(gatepassFastify(verifier));

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

app.get('/health', async () => ({ status: 'ok' }));

await app.listen({ host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 8100) });
