import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import pg from 'pg';
import { loadSettings, type Settings } from '../../src/config/settings.js';
import { buildApp, type GatepassApp } from '../../src/http/app.js';

export type Backend = 'sqlite' | 'postgres';

/** PostgreSQL comes from GATEPASS_TEST_POSTGRES_URL (.ci/run always sets it). */
export const POSTGRES_URL = process.env.GATEPASS_TEST_POSTGRES_URL;

/** Redis comes from GATEPASS_TEST_REDIS_URL (.ci/run always sets it). */
export const REDIS_URL = process.env.GATEPASS_TEST_REDIS_URL;

/** A Chromium binary for the browser suites (.ci/run installs Debian's and sets it); never a downloaded one. */
export const CHROME_PATH = process.env.GATEPASS_TEST_CHROME;

/**
 * Declares a suite that needs services from the environment. Without them it is skipped with the
 * reason on a developer's machine, and fails in CI, where nothing may be skipped.
 */
export function describeNeeding(name: string, needs: { postgres?: boolean; redis?: boolean; chrome?: boolean }, define: () => void): void {
  const missing = [
    needs.postgres === true && POSTGRES_URL === undefined && 'GATEPASS_TEST_POSTGRES_URL',
    needs.redis === true && REDIS_URL === undefined && 'GATEPASS_TEST_REDIS_URL',
    needs.chrome === true && CHROME_PATH === undefined && 'GATEPASS_TEST_CHROME',
  ].filter((variable): variable is string => typeof variable === 'string');
  if (missing.length === 0) {
    describe(name, define);
    return;
  }
  const reason = `${missing.join(' and ')} not set`;
  if (process.env.CI !== undefined) {
    describe(name, () => {
      it('needs its services', () => {
        throw new Error(`${reason}; CI must provide them`);
      });
    });
    return;
  }
  describe(name, { skip: reason }, () => undefined);
}

/** Declares the PostgreSQL variant of a suite (see describeNeeding). */
export function describePostgres(name: string, define: () => void): void {
  describeNeeding(`${name} (postgres)`, { postgres: true }, define);
}

export interface TestApp {
  app: GatepassApp;
  settings: Settings;
  databaseUrl: string;
  /** The directory relative SQLite paths resolve against. */
  cwd: string;
  close(): Promise<void>;
}

/**
 * A private database for one test app: a fresh SQLite file in a temporary directory, or a fresh
 * schema in the test PostgreSQL database (dropped on close).
 */
export async function createTestDatabase(backend: Backend): Promise<{ url: string; cwd: string; drop(): Promise<void> }> {
  const cwd = mkdtempSync(path.join(tmpdir(), 'gatepass-test-'));
  const removeDir = () => rmSync(cwd, { recursive: true, force: true });
  if (backend === 'sqlite') return { url: 'sqlite:./data/test.db', cwd, drop: async () => removeDir() };
  if (POSTGRES_URL === undefined) throw new Error('GATEPASS_TEST_POSTGRES_URL is not set');
  const schema = `gp_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const url = new URL(POSTGRES_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: url.toString(),
    cwd,
    drop: async () => {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`drop schema if exists ${schema} cascade`);
      await client.end();
      removeDir();
    },
  };
}

/** Settings every app of this test process starts from (a test file sets them before defining its suites). */
let testDefaults: Record<string, string> = {};

/** Makes every app this process creates use `env` underneath its own settings, e.g. another JWT_ALGORITHM. */
export function useTestDefaults(env: Record<string, string>): void {
  testDefaults = env;
}

/** Builds the real app on a private database, with settings from an environment like an operator's. */
export async function createTestApp(
  backend: Backend,
  env: Record<string, string> = {},
  options: { now?: () => number; logStream?: NodeJS.WritableStream } = {},
): Promise<TestApp> {
  const database = await createTestDatabase(backend);
  const settings = loadSettings(
    {
      NODE_ENV: 'test',
      JWT_SECRET: randomBytes(32).toString('hex'),
      JWT_REFRESH_SECRET: randomBytes(32).toString('hex'),
      DATABASE_URL: database.url,
      // Every test request comes from 127.0.0.1: suites that test the limits set their own values.
      LOGIN_RATE_LIMIT_PER_MINUTE: '0',
      ACCOUNT_LOCKOUT_THRESHOLD: '0',
      ...testDefaults,
      ...env,
    },
    { cwd: database.cwd },
  );
  const app = await buildApp(settings, { cwd: database.cwd, ...options });
  return {
    app,
    settings,
    databaseUrl: database.url,
    cwd: database.cwd,
    close: async () => {
      await app.close();
      await database.drop();
    },
  };
}

/** Settings for a second app on the same database as `t`, from the same kind of environment (no login limit or lockout, as createTestApp). */
export function sameDatabaseEnv(t: TestApp, extra: Record<string, string>): Record<string, string> {
  return {
    NODE_ENV: 'test',
    JWT_SECRET: t.settings.jwt.accessSecret,
    JWT_REFRESH_SECRET: t.settings.jwt.refreshSecret,
    DATABASE_URL: t.databaseUrl,
    LOGIN_RATE_LIMIT_PER_MINUTE: '0',
    ACCOUNT_LOCKOUT_THRESHOLD: '0',
    ...extra,
  };
}
