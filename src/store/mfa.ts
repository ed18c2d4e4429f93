import type { Kysely, Selectable } from 'kysely';
import type { Database, MfaChallengesTable, MfaTotpTable } from './schema.js';

export type MfaTotpRow = Selectable<MfaTotpTable>;
export type MfaChallengeRow = Selectable<MfaChallengesTable>;

/**
 * The second factor's rows: TOTP enrolments, recovery codes and sign-in challenges. Every spend is
 * one conditional UPDATE, so that of concurrent spends of one thing exactly one wins, on SQLite and
 * PostgreSQL alike. Pass a transaction to group changes.
 */
export class MfaRepository {
  constructor(private readonly db: Kysely<Database>) {}

  findTotp(userId: number): Promise<MfaTotpRow | undefined> {
    return this.db.selectFrom('mfa_totp').selectAll().where('user_id', '=', userId).executeTakeFirst();
  }

  /** Stores a pending (unconfirmed) secret, replacing any pending one; false when TOTP is already on. */
  async savePendingTotp(userId: number, secret: string, now: number): Promise<boolean> {
    const result = await this.db
      .insertInto('mfa_totp')
      .values({ user_id: userId, secret, created_at: now, confirmed_at: null, last_used_step: null })
      .onConflict((conflict) =>
        conflict
          .column('user_id')
          .doUpdateSet({ secret, created_at: now, last_used_step: null })
          .where('mfa_totp.confirmed_at', 'is', null),
      )
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  /** Turns the pending secret `secret` on, the step of its confirming code used; false when it is no longer the pending one. */
  async confirmTotp(userId: number, secret: string, step: number, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('mfa_totp')
      .set({ confirmed_at: now, last_used_step: step })
      .where('user_id', '=', userId)
      .where('secret', '=', secret)
      .where('confirmed_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Records `step` as used if no later or equal step was: of concurrent claims of one step, exactly one returns true. */
  async claimStep(userId: number, step: number): Promise<boolean> {
    const result = await this.db
      .updateTable('mfa_totp')
      .set({ last_used_step: step })
      .where('user_id', '=', userId)
      .where('confirmed_at', 'is not', null)
      .where((eb) => eb.or([eb('last_used_step', 'is', null), eb('last_used_step', '<', step)]))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Removes the TOTP enrolment and every recovery code; whether anything was there. */
  async removeAll(userId: number): Promise<boolean> {
    const totp = await this.db.deleteFrom('mfa_totp').where('user_id', '=', userId).executeTakeFirst();
    const codes = await this.db.deleteFrom('mfa_recovery_codes').where('user_id', '=', userId).executeTakeFirst();
    return Number(totp.numDeletedRows) + Number(codes.numDeletedRows) > 0;
  }

  /** Replaces the user's recovery codes by a new set (their hashes). */
  async replaceRecoveryCodes(userId: number, codeHashes: string[], now: number): Promise<void> {
    await this.db.deleteFrom('mfa_recovery_codes').where('user_id', '=', userId).execute();
    await this.db
      .insertInto('mfa_recovery_codes')
      .values(codeHashes.map((codeHash) => ({ user_id: userId, code_hash: codeHash, created_at: now, used_at: null })))
      .execute();
  }

  /** Spends one unused recovery code: of concurrent spends, exactly one returns true. */
  async spendRecoveryCode(userId: number, codeHash: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('mfa_recovery_codes')
      .set({ used_at: now })
      .where('user_id', '=', userId)
      .where('code_hash', '=', codeHash)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async countUnusedRecoveryCodes(userId: number): Promise<number> {
    const row = await this.db
      .selectFrom('mfa_recovery_codes')
      .select((eb) => eb.fn.countAll<number | string>().as('count'))
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(row?.count ?? 0);
  }

  async insertChallenge(row: { tokenHash: string; userId: number; firstFactor: string; now: number; expiresAt: number }): Promise<void> {
    await this.db
      .insertInto('mfa_challenges')
      .values({
        token_hash: row.tokenHash,
        user_id: row.userId,
        first_factor: row.firstFactor,
        created_at: row.now,
        expires_at: row.expiresAt,
        used_at: null,
      })
      .execute();
  }

  findChallenge(tokenHash: string): Promise<MfaChallengeRow | undefined> {
    return this.db.selectFrom('mfa_challenges').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
  }

  /**
   * Spends a challenge that is still open (unused, unexpired, fewer than `maxFailures` wrong codes):
   * its user, or undefined. Within a transaction, it also holds the row (PostgreSQL) until the end,
   * so that concurrent submissions of one challenge are decided one after the other.
   */
  async spendChallenge(tokenHash: string, now: number, maxFailures: number): Promise<number | undefined> {
    const row = await this.db
      .updateTable('mfa_challenges')
      .set({ used_at: now })
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .where('failed_attempts', '<', maxFailures)
      .returning('user_id')
      .executeTakeFirst();
    return row?.user_id;
  }

  /** Spends every open challenge of a user: a sign-in half done before their sessions ended must not finish after. */
  async spendChallengesOf(userId: number, now: number): Promise<void> {
    await this.db.updateTable('mfa_challenges').set({ used_at: now }).where('user_id', '=', userId).where('used_at', 'is', null).execute();
  }

  /** Counts a wrong code against an open challenge, atomically. */
  async countChallengeFailure(tokenHash: string): Promise<void> {
    await this.db
      .updateTable('mfa_challenges')
      .set((eb) => ({ failed_attempts: eb('failed_attempts', '+', 1) }))
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .execute();
  }
}
