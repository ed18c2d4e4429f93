/**
 * Memory: one process running the real app (buildApp, listening), into which the bench puts 10,000
 * users (Kysely on the app's own database handle, batches, one precomputed argon2id hash), 20,000
 * sessions (the app's SessionService, as a login does after its password check) and 100,000 session
 * revocations (the app's Revocations, i.e. its RevocationList). RSS and heap are read after a full GC
 * at each stage. Run with --expose-gc; prints RESULT_MARKER and the result as JSON.
 */
import { randomBytes } from 'node:crypto';
import { RESULT_MARKER } from '../lib/processes.js';
import { BENCH_PASSWORD, benchEmail } from '../lib/users.js';

const USERS = Number(process.env.BENCH_USERS ?? '10000');
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? '20000');
const REVOCATIONS = Number(process.env.BENCH_REVOCATIONS ?? '100000');

const gc = globalThis.gc;
if (gc === undefined) throw new Error('run with --expose-gc');

/** One measurement; the memory section reads the printed result with these types. */
export interface Stage {
  stage: string;
  rssBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
  seconds: number;
}

export interface MemoryResult {
  stages: Stage[];
  rows: Record<string, number>;
}
const stages: Stage[] = [];
let stageStarted = performance.now();

function record(stage: string): void {
  gc?.();
  gc?.();
  const usage = process.memoryUsage();
  stages.push({
    stage,
    rssBytes: usage.rss,
    heapUsedBytes: usage.heapUsed,
    externalBytes: usage.external,
    seconds: (performance.now() - stageStarted) / 1000,
  });
  stageStarted = performance.now();
}

// What the process costs before any of gatepass is loaded (Node and tsx's TypeScript loader).
record('node + tsx loader, no gatepass module loaded');
const { loadSettings } = await import('../../src/config/settings.js');
const { buildApp } = await import('../../src/http/app.js');
const { countRows, insertUsers, revokeSessions, startSessions } = await import('../lib/gatepass-internals.js');
const { benchPasswordHash } = await import('../lib/servers.js');

const cwd = process.cwd();
const settings = loadSettings(
  {
    NODE_ENV: 'production',
    JWT_SECRET: randomBytes(32).toString('hex'),
    JWT_REFRESH_SECRET: randomBytes(32).toString('hex'),
    DATABASE_URL: 'sqlite:./data/gatepass.db',
    LOG_LEVEL: 'warn',
  },
  { cwd },
);
const app = await buildApp(settings, { cwd });
await app.listen({ host: '127.0.0.1', port: 0 });
for (let i = 0; i < 200; i++) await app.inject({ method: 'GET', url: '/ping' });
const passwordHash = await benchPasswordHash();
record('app started and listening (empty database)');

await insertUsers(app.gatepass.database, USERS, passwordHash);
record(`${USERS.toLocaleString('en-US')} users inserted`);

await startSessions(app.gatepass, SESSIONS, USERS);
record(`${SESSIONS.toLocaleString('en-US')} sessions started`);

// The data is live for the app: a login and a protected read of a seeded user go through.
const login = await app.inject({
  method: 'POST',
  url: '/auth/login',
  payload: { email: benchEmail(Math.ceil(USERS / 2)), password: BENCH_PASSWORD },
});
if (login.statusCode !== 200) throw new Error(`login of a seeded user answered ${login.statusCode}: ${login.body}`);
const me = await app.inject({
  method: 'GET',
  url: '/users/me',
  headers: { authorization: `Bearer ${login.json<{ access_token: string }>().access_token}` },
});
if (me.statusCode !== 200) throw new Error(`GET /users/me answered ${me.statusCode}`);
record('after one login and GET /users/me');

await revokeSessions(app.gatepass, REVOCATIONS);
record(`${REVOCATIONS.toLocaleString('en-US')} revocations in the app's RevocationList`);

const rows = await countRows(app.gatepass);
await app.close();
const result: MemoryResult = { stages, rows };
console.log(`${RESULT_MARKER} ${JSON.stringify(result)}`);
