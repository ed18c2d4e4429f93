import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { withStatementCache } from '../../src/store/statement-cache.js';

function memoryConnection(): SQLite.Database {
  const connection = new SQLite(':memory:');
  connection.exec('create table items (id integer primary key, name text not null)');
  return connection;
}

describe('SQLite statement cache', () => {
  it('reuses the statement of a repeated SQL text, and evicts the oldest beyond its capacity', () => {
    const cached = withStatementCache(memoryConnection(), 2);
    const first = cached.prepare('select 1 as a');
    assert.equal(cached.prepare('select 1 as a'), first);
    cached.prepare('select 2 as a');
    cached.prepare('select 3 as a');
    const again = cached.prepare('select 1 as a');
    assert.notEqual(again, first, 'the oldest statement was evicted and prepared anew');
    assert.deepEqual(again.all([]), [{ a: 1 }]);
    cached.close();
  });

  it('gives Kysely correct results with reused statements, also after a schema change', async () => {
    const db = new Kysely<{ items: { id: number; name: string } }>({
      dialect: new SqliteDialect({ database: withStatementCache(memoryConnection()) }),
    });
    for (const [index, name] of ['a', 'b', 'c'].entries())
      await db
        .insertInto('items')
        .values({ id: index + 1, name })
        .execute();
    for (const id of [1, 2, 3, 2]) {
      const row = await db.selectFrom('items').selectAll().where('id', '=', id).executeTakeFirst();
      assert.equal(row?.name, ['a', 'b', 'c'][id - 1]);
    }
    await sql`alter table items add column note text`.execute(db);
    // The cached `select *` is re-prepared by SQLite and sees the new column.
    const row = await db.selectFrom('items').selectAll().where('id', '=', 1).executeTakeFirst();
    assert.deepEqual(row, { id: 1, name: 'a', note: null });
    await db.destroy();
  });
});
