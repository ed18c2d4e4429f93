/** Starting the servers under test, each as a child process on a free loopback port, with seeded users. */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { Redis } from 'ioredis';
import pg from 'pg';
import { hashPassword, insertUsers, openMigrated } from './gatepass-internals.js';
import { requestJson } from './load.js';
import { freePort, startServer, tsNodeArgs, type ChildServer } from './processes.js';
import { DEBIAN_PYTHON, FASTAPI_SEED_DIR, seedFastapiDatabase } from './python.js';
import type { BenchContext } from './report.js';
import { BENCH_PASSWORD, benchEmail } from './users.js';

let argon2Hash: Promise<string> | undefined;
/** One argon2id hash of BENCH_PASSWORD with the app's parameters, shared by every seeded gatepass user. */
export function benchPasswordHash(): Promise<string> {
  argon2Hash ??= hashPassword(BENCH_PASSWORD);
  return argon2Hash;
}

let bcryptHash: string | undefined;
/** bcryptjs cost 10, as the seeds' TypeScript guide hashes. */
function benchBcryptHash(): string {
  bcryptHash ??= bcrypt.hashSync(BENCH_PASSWORD, 10);
  return bcryptHash;
}

/** A private working directory for one server under the run's scratch directory. */
export function scratchDir(context: BenchContext, name: string): string {
  const dir = path.join(context.tmpRoot, `${name}-${randomBytes(3).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * The environment gatepass is started with: production mode, fresh secrets, warnings-only logs.
 * Every bench request comes from 127.0.0.1, one client IP, so the per-IP login limit is raised to its
 * maximum; the limiter still counts every login, it just never trips within a bench run.
 */
export function gatepassEnv(databaseUrl: string): Record<string, string> {
  return {
    NODE_ENV: 'production',
    LOGIN_RATE_LIMIT_PER_MINUTE: '1000000',
    JWT_SECRET: randomBytes(32).toString('hex'),
    JWT_REFRESH_SECRET: randomBytes(32).toString('hex'),
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: 'warn',
    HOST: '127.0.0.1',
    PORT: '0',
  };
}

function readyToken(server: ChildServer): string {
  if (server.readyToken === undefined) throw new Error(`${server.name} printed no token`);
  return server.readyToken;
}

/** Creates the schema and `users` accounts (one shared argon2id hash), inserted with Kysely in batches. */
export async function seedGatepass(databaseUrl: string, cwd: string, users: number): Promise<void> {
  const database = await openMigrated(databaseUrl, cwd);
  try {
    await insertUsers(database, users, await benchPasswordHash());
  } finally {
    await database.close();
  }
}

export interface RunningServer {
  server: ChildServer;
  /** An access token for user 1, obtained the way a client of that server would (login), where it has one. */
  token: string;
}

/** `readyPath`: polled until it answers 2xx (default /ping; /health/ready also waits for Redis and the database). */
export async function startGatepass(name: string, cwd: string, env: Record<string, string>, readyPath?: string): Promise<ChildServer> {
  return startServer({
    name,
    command: process.execPath,
    args: tsNodeArgs('servers/gatepass.ts'),
    cwd,
    env,
    ...(readyPath !== undefined && { readyPath }),
  });
}

export interface TokenPairBody {
  access_token: string;
  refresh_token: string;
}

export async function loginGatepass(baseUrl: string, userIndex: number): Promise<TokenPairBody> {
  const { status, json } = await requestJson('POST', `${baseUrl}/auth/login`, {
    email: benchEmail(userIndex),
    password: BENCH_PASSWORD,
  });
  if (status !== 200) throw new Error(`gatepass login answered ${status}: ${JSON.stringify(json)}`);
  return json as TokenPairBody;
}

/** gatepass on a fresh SQLite database with `users` accounts. */
export async function gatepassOnSqlite(
  context: BenchContext,
  users: number,
): Promise<RunningServer & { env: Record<string, string>; cwd: string }> {
  const cwd = scratchDir(context, 'gatepass');
  const env = gatepassEnv('sqlite:./data/gatepass.db');
  await seedGatepass(env.DATABASE_URL ?? '', cwd, users);
  const server = await startGatepass('gatepass', cwd, env);
  try {
    return { server, token: (await loginGatepass(server.baseUrl, 1)).access_token, env, cwd };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** The bare node:http ceiling, on a seeded gatepass SQLite database; it prints a token it accepts. */
export async function bareOnSqlite(context: BenchContext, users: number): Promise<RunningServer> {
  const cwd = scratchDir(context, 'bare');
  const env = gatepassEnv('sqlite:./data/gatepass.db');
  await seedGatepass(env.DATABASE_URL ?? '', cwd, users);
  const server = await startServer({
    name: 'bare node:http',
    command: process.execPath,
    args: tsNodeArgs('baselines/bare-node-http.ts'),
    cwd,
    env,
  });
  return { server, token: readyToken(server) };
}

/** Diagnostic: Fastify with only the auth guard (servers/fastify-guard-only.ts); it prints a token it accepts. */
export async function fastifyGuardOnly(context: BenchContext): Promise<RunningServer> {
  const cwd = scratchDir(context, 'fastify-guard');
  const env = gatepassEnv('sqlite:./data/gatepass.db');
  const server = await startServer({
    name: 'Fastify + guard only',
    command: process.execPath,
    args: tsNodeArgs('servers/fastify-guard-only.ts'),
    cwd,
    env,
  });
  return { server, token: readyToken(server) };
}

export async function startExpress(context: BenchContext, users: number): Promise<RunningServer> {
  const cwd = scratchDir(context, 'express');
  const server = await startServer({
    name: 'Express + jsonwebtoken + bcryptjs',
    command: process.execPath,
    args: tsNodeArgs('baselines/express-server.ts'),
    cwd,
    env: {
      NODE_ENV: 'production',
      DATABASE_PATH: path.join(cwd, 'express.db'),
      JWT_SECRET: randomBytes(32).toString('hex'),
      REFRESH_TOKEN_SECRET: randomBytes(32).toString('hex'),
      SEED_USERS: String(users),
      SEED_PASSWORD_HASH: benchBcryptHash(),
    },
  });
  try {
    const { status, json } = await requestJson('POST', `${server.baseUrl}/login`, {
      email: benchEmail(1),
      password: BENCH_PASSWORD,
    });
    if (status !== 200) throw new Error(`Express login answered ${status}: ${JSON.stringify(json)}`);
    return { server, token: (json as { accessToken: string }).accessToken };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** The seeds' FastAPI system under Debian's python3 and uvicorn (one worker, no reload, no access log). */
export async function startFastapi(context: BenchContext, users: number): Promise<RunningServer> {
  const cwd = scratchDir(context, 'fastapi');
  const databaseUrl = `sqlite:///${path.join(cwd, 'fastapi.db')}`;
  await seedFastapiDatabase(databaseUrl, users, BENCH_PASSWORD);
  const port = await freePort();
  const server = await startServer({
    name: 'FastAPI seed (uvicorn)',
    command: DEBIAN_PYTHON,
    args: ['-m', 'uvicorn', 'app.main:app', '--host', '127.0.0.1', '--port', String(port), '--log-level', 'warning', '--no-access-log'],
    cwd: FASTAPI_SEED_DIR,
    port,
    env: {
      DATABASE_URL: databaseUrl,
      JWT_SECRET: randomBytes(32).toString('hex'),
      ACCESS_TOKEN_EXPIRE_MINUTES: '30',
      PYTHONDONTWRITEBYTECODE: '1',
    },
  });
  try {
    const { status, json } = await requestJson('POST', `${server.baseUrl}/login`, {
      email: benchEmail(1),
      password: BENCH_PASSWORD,
    });
    if (status !== 200) throw new Error(`FastAPI login answered ${status}: ${JSON.stringify(json)}`);
    return { server, token: (json as { access_token: string }).access_token };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

/** A private schema in the PostgreSQL database, as test/helpers/app.ts makes one; `drop` removes it. */
export async function privatePostgresSchema(postgresUrl: string): Promise<{ url: string; serverVersion: string; drop(): Promise<void> }> {
  const schema = `gp_bench_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: 5000 });
  await admin.connect();
  let serverVersion = '?';
  try {
    const { rows } = await admin.query<{ server_version: string }>('show server_version');
    serverVersion = rows[0]?.server_version ?? '?';
    await admin.query(`create schema ${schema}`);
  } finally {
    await admin.end();
  }
  const url = new URL(postgresUrl);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: url.toString(),
    serverVersion,
    drop: async () => {
      const client = new pg.Client({ connectionString: postgresUrl, connectionTimeoutMillis: 5000 });
      await client.connect();
      try {
        await client.query(`drop schema if exists ${schema} cascade`);
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * A private key prefix on the Redis of `redisUrl` (`gp_bench_…`, for REDIS_PREFIX), after a PING shows
 * Redis answers; `drop` deletes every key under it.
 */
export async function privateRedisPrefix(redisUrl: string): Promise<{ prefix: string; serverVersion: string; drop(): Promise<void> }> {
  const connect = async (): Promise<Redis> => {
    const client = new Redis(redisUrl, {
      lazyConnect: true,
      connectTimeout: 5000,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => null,
    });
    // ioredis reports the cause (ECONNREFUSED, …) as an event and rejects connect() with a vaguer "Connection is closed".
    let cause: Error | undefined;
    client.on('error', (error: Error) => {
      cause ??= error;
    });
    try {
      await client.connect();
      // Typed as always 'PONG', but checked: whatever listens there may not be Redis.
      const pong: string = await client.ping();
      if (pong !== 'PONG') throw new Error('PING did not answer PONG');
    } catch (error) {
      client.disconnect();
      throw cause ?? error;
    }
    return client;
  };
  const prefix = `gp_bench_${randomBytes(6).toString('hex')}`;
  const client = await connect();
  let serverVersion = '?';
  try {
    serverVersion = /redis_version:(\S+)/.exec(await client.info('server'))?.[1] ?? '?';
  } finally {
    client.disconnect();
  }
  return {
    prefix,
    serverVersion,
    drop: async () => {
      const cleaner = await connect();
      try {
        let cursor = '0';
        do {
          const [next, keys] = await cleaner.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
          if (keys.length > 0) await cleaner.del(...keys);
          cursor = next;
        } while (cursor !== '0');
      } finally {
        cleaner.disconnect();
      }
    },
  };
}

/** Answers GET `route` with `token` 200? Checked once before a server is measured. */
export async function assertAuthorized(server: ChildServer, route: string, token: string): Promise<void> {
  const { status, json } = await requestJson('GET', `${server.baseUrl}${route}`, undefined, { authorization: `Bearer ${token}` });
  if (status !== 200) throw new Error(`${server.name} answered ${status} on ${route}: ${JSON.stringify(json)}`);
}
