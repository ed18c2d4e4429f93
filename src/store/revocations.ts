import type { Kysely, Selectable } from 'kysely';
import type { Revocation } from '../tokens/revocation.js';
import type { Database, RevocationsTable } from './schema.js';

export type { Revocation };

export class RevocationRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(revocation: Revocation, now: number): Promise<void> {
    await this.db
      .insertInto('revocations')
      .values({
        session_id: revocation.kind === 'session' ? revocation.sessionId : null,
        user_id: revocation.userId,
        issued_before: revocation.kind === 'user' ? revocation.issuedBefore : null,
        token_id: revocation.kind === 'token' ? revocation.tokenId : null,
        created_at: now,
        expires_at: revocation.expiresAt,
      })
      .execute();
  }

  /** Every revocation that can still matter at `now`. */
  async active(now: number): Promise<Revocation[]> {
    const rows = await this.db.selectFrom('revocations').selectAll().where('expires_at', '>', now).execute();
    return rows.map(toRevocation);
  }

  /** The number of the newest stored revocation; 0 when there is none. */
  async lastId(): Promise<number> {
    const row = await this.db
      .selectFrom('revocations')
      .select((eb) => eb.fn.max('id').as('last'))
      .executeTakeFirst();
    return row?.last ?? 0;
  }

  /** At most `limit` revocations numbered above `afterId` that can still matter at `now`, in order, with their numbers. */
  async liveNumberedAfter(afterId: number, now: number, limit: number): Promise<{ id: number; revocation: Revocation }[]> {
    const rows = await this.db
      .selectFrom('revocations')
      .selectAll()
      .where('id', '>', afterId)
      .where('expires_at', '>', now)
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map((row) => ({ id: row.id, revocation: toRevocation(row) }));
  }

  /** The revocations numbered above `afterId`, in order, with their numbers. */
  async numberedAfter(afterId: number): Promise<{ id: number; revocation: Revocation }[]> {
    const rows = await this.db.selectFrom('revocations').selectAll().where('id', '>', afterId).orderBy('id').execute();
    return rows.map((row) => ({ id: row.id, revocation: toRevocation(row) }));
  }
}

function toRevocation(row: Selectable<RevocationsTable>): Revocation {
  if (row.session_id !== null) return { kind: 'session', sessionId: row.session_id, userId: row.user_id, expiresAt: row.expires_at };
  if (row.token_id !== null) return { kind: 'token', tokenId: row.token_id, userId: row.user_id, expiresAt: row.expires_at };
  return { kind: 'user', userId: row.user_id, issuedBefore: row.issued_before ?? 0, expiresAt: row.expires_at };
}
