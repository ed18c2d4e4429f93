import type { Kysely } from 'kysely';
import type { Database, RefreshTokenRow, SessionRow } from './schema.js';

/** Queries over sessions and their refresh-token records. Pass a transaction to group several. */
export class SessionRepository {
  constructor(private readonly db: Kysely<Database>) {}

  withExecutor(db: Kysely<Database>): SessionRepository {
    return new SessionRepository(db);
  }

  async createSession(session: {
    id: string;
    userId: number;
    userAgent: string | null;
    ip: string | null;
    /** RFC 8176 method names of the sign-in. */
    amr: readonly string[];
    now: number;
  }): Promise<void> {
    await this.db
      .insertInto('sessions')
      .values({
        id: session.id,
        user_id: session.userId,
        created_at: session.now,
        last_used_at: session.now,
        user_agent: session.userAgent,
        ip: session.ip,
        revoked_at: null,
        revoked_reason: null,
        amr: JSON.stringify(session.amr),
      })
      .execute();
  }

  /** Takes the session row's lock until the transaction ends (PostgreSQL's SELECT … FOR UPDATE). */
  async lockSession(id: string): Promise<void> {
    await this.db.selectFrom('sessions').select('id').where('id', '=', id).forUpdate().execute();
  }

  async findSession(id: string): Promise<SessionRow | undefined> {
    return this.db.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async touchSession(id: string, now: number, client: { userAgent: string | null; ip: string | null }): Promise<void> {
    await this.db
      .updateTable('sessions')
      .set({ last_used_at: now, user_agent: client.userAgent, ip: client.ip })
      .where('id', '=', id)
      .execute();
  }

  async insertRefreshToken(record: Omit<RefreshTokenRow, 'used_at' | 'revoked_at'>): Promise<void> {
    await this.db
      .insertInto('refresh_tokens')
      .values({ ...record, used_at: null, revoked_at: null })
      .execute();
  }

  async findRefreshToken(jti: string): Promise<RefreshTokenRow | undefined> {
    return this.db.selectFrom('refresh_tokens').selectAll().where('jti', '=', jti).executeTakeFirst();
  }

  /** The refresh token that rotation issued in exchange for `parentJti`. */
  async findChildRefreshToken(sessionId: string, parentJti: string): Promise<RefreshTokenRow | undefined> {
    return this.db
      .selectFrom('refresh_tokens')
      .selectAll()
      .where('session_id', '=', sessionId)
      .where('parent_jti', '=', parentJti)
      .executeTakeFirst();
  }

  /**
   * Marks a refresh token used if, and only if, nobody has used or revoked it yet. The condition is
   * evaluated under the row lock (PostgreSQL) or the single writer (SQLite), so of N concurrent
   * claims exactly one returns true.
   */
  async claimRefreshToken(jti: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('refresh_tokens')
      .set({ used_at: now })
      .where('jti', '=', jti)
      .where('used_at', 'is', null)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Ends a session and every refresh token in it; returns false when it had already ended. */
  async revokeSession(id: string, now: number, reason: string): Promise<boolean> {
    const result = await this.db
      .updateTable('sessions')
      .set({ revoked_at: now, revoked_reason: reason })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    await this.db
      .updateTable('refresh_tokens')
      .set({ revoked_at: now })
      .where('session_id', '=', id)
      .where('revoked_at', 'is', null)
      .execute();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Ends every live session of a user, but `exceptSessionId`; returns the ids it ended. */
  async revokeUserSessions(userId: number, now: number, reason: string, exceptSessionId?: string): Promise<string[]> {
    let sessions = this.db
      .updateTable('sessions')
      .set({ revoked_at: now, revoked_reason: reason })
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null);
    let tokens = this.db
      .updateTable('refresh_tokens')
      .set({ revoked_at: now })
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null);
    if (exceptSessionId !== undefined) {
      sessions = sessions.where('id', '!=', exceptSessionId);
      tokens = tokens.where('session_id', '!=', exceptSessionId);
    }
    const rows = await sessions.returning('id').execute();
    await tokens.execute();
    return rows.map((r) => r.id);
  }

  /** Every session of a user, ended ones included (for the data export). */
  async allSessions(userId: number): Promise<SessionRow[]> {
    return this.db.selectFrom('sessions').selectAll().where('user_id', '=', userId).orderBy('created_at').execute();
  }

  /** How many sessions of all users are not revoked and were used since `activeSince`. */
  async countLive(activeSince: number): Promise<number> {
    const row = await this.db
      .selectFrom('sessions')
      .select((eb) => eb.fn.countAll<number | string>().as('total'))
      .where('revoked_at', 'is', null)
      .where('last_used_at', '>', activeSince)
      .executeTakeFirstOrThrow();
    return Number(row.total);
  }

  /** Sessions not revoked and used since `activeSince`, most recently used first. */
  async liveSessions(userId: number, activeSince: number): Promise<SessionRow[]> {
    return this.db
      .selectFrom('sessions')
      .selectAll()
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .where('last_used_at', '>', activeSince)
      .orderBy('last_used_at', 'desc')
      .execute();
  }
}

/** The sign-in methods a session recorded (RFC 8176 names); a session from before they were recorded was a password sign-in. */
export function sessionAmr(session: Pick<SessionRow, 'amr'>): string[] {
  if (session.amr === null) return ['pwd'];
  try {
    const methods: unknown = JSON.parse(session.amr);
    if (Array.isArray(methods) && methods.every((method) => typeof method === 'string')) return methods;
  } catch {
    // Only gatepass writes the column; anything else is treated as the oldest kind of session.
  }
  return ['pwd'];
}
