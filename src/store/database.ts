import { mkdirSync } from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from './schema.js';
import { withStatementCache } from './statement-cache.js';

export type Dialect = 'sqlite' | 'postgres';

export interface DatabaseHandle {
  db: Kysely<Database>;
  dialect: Dialect;
  /** Resolves when the database answers a trivial query; rejects otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

const INT8_OID = 20;

/**
 * Opens `sqlite:<path>` (created on first use, WAL mode) or `postgres://…`.
 * Relative SQLite paths are resolved against `cwd`.
 */
export function openDatabase(url: string, cwd: string = process.cwd()): DatabaseHandle {
  const db = url.startsWith('sqlite:') ? openSqlite(url, cwd) : openPostgres(url);
  return {
    db,
    dialect: url.startsWith('sqlite:') ? 'sqlite' : 'postgres',
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    close: () => db.destroy(),
  };
}

function openSqlite(url: string, cwd: string): Kysely<Database> {
  const location = url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '');
  const file = location === ':memory:' ? location : path.resolve(cwd, location);
  if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
  const connection = new SQLite(file);
  connection.pragma('journal_mode = WAL');
  connection.pragma('foreign_keys = ON');
  // Another process (the CLI, a migration) may hold the write lock briefly; wait rather than fail.
  connection.pragma('busy_timeout = 5000');
  return new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(connection) }) });
}

/** pg's own parser of each type (typed `any` by pg-types), by type oid. */
const defaultTypeParser = pg.types.getTypeParser as (oid: number, format?: 'text' | 'binary') => unknown;

function openPostgres(url: string): Kysely<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    // Times are epoch milliseconds in bigint columns; they fit a JavaScript number exactly.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
        oid === INT8_OID ? (value: string) => Number(value) : defaultTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client that loses its connection emits here; without a listener the process would crash.
  pool.on('error', () => undefined);
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}
