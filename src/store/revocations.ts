import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

/**
 * A revocation as stored, broadcast and applied: a session (every access token of it), or a user's
 * access tokens minted before `issuedBefore` (epoch ms).
 */
export type Revocation =
  | { kind: 'session'; sessionId: string; userId: number; expiresAt: number }
  | { kind: 'user'; userId: number; issuedBefore: number; expiresAt: number };

export class RevocationRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(revocation: Revocation, now: number): Promise<void> {
    await this.db
      .insertInto('revocations')
      .values({
        session_id: revocation.kind === 'session' ? revocation.sessionId : null,
        user_id: revocation.userId,
        issued_before: revocation.kind === 'user' ? revocation.issuedBefore : null,
        created_at: now,
        expires_at: revocation.expiresAt,
      })
      .execute();
  }

  /** Every revocation that can still matter at `now`. */
  async active(now: number): Promise<Revocation[]> {
    const rows = await this.db.selectFrom('revocations').selectAll().where('expires_at', '>', now).execute();
    return rows.map((row) =>
      row.session_id !== null
        ? { kind: 'session', sessionId: row.session_id, userId: row.user_id, expiresAt: row.expires_at }
        : { kind: 'user', userId: row.user_id, issuedBefore: row.issued_before ?? 0, expiresAt: row.expires_at },
    );
  }

  /** Forgets revocations no token can need any more. */
  async deleteExpired(now: number): Promise<void> {
    await this.db.deleteFrom('revocations').where('expires_at', '<=', now).execute();
  }
}
