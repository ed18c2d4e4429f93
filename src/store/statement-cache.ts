import type { Database as SQLiteConnection, Statement } from 'better-sqlite3';
import type { SqliteDatabase } from 'kysely';

/** Distinct SQL texts kept prepared; queries with variable-length `in (…)` lists make more than our few dozen. */
const CACHED_STATEMENTS = 256;

/**
 * The SQLite connection as Kysely's SqliteDialect sees it, with its prepared statements reused.
 * Kysely prepares every query afresh, and on a hot route such as GET /users/me preparing costs more
 * than running the lookup. A statement is reused only by the next query with the same SQL text;
 * Kysely's SQLite driver runs one query at a time, so a statement is never used twice at once, and
 * SQLite re-prepares a cached statement by itself after a schema change (a migration).
 */
export function withStatementCache(connection: SQLiteConnection, capacity = CACHED_STATEMENTS): SqliteDatabase {
  const statements = new Map<string, Statement>();
  return {
    prepare(sql) {
      let statement = statements.get(sql);
      if (statement === undefined) {
        statement = connection.prepare(sql);
        // Map keeps insertion order: the first key is the oldest statement.
        if (statements.size >= capacity) statements.delete(statements.keys().next().value as string);
        statements.set(sql, statement);
      }
      return statement;
    },
    close: () => {
      statements.clear();
      connection.close();
    },
  };
}
