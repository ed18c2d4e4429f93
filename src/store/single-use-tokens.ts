import type { Kysely } from 'kysely';
import type { Database } from './schema.js';

/** The tables of tokens mailed to a user and spent once: they share these columns and their rules. */
export type SingleUseTokenTable = 'password_reset_tokens' | 'email_verification_tokens';

/**
 * The rules every mailed single-use token follows, whatever its table: stored by its hash, spent at
 * most once before it expires, and all of a user's open ones void together. Pass a transaction to
 * group a spend with the change it authorises.
 */
export class SingleUseTokenRepository {
  constructor(
    protected readonly db: Kysely<Database>,
    private readonly table: SingleUseTokenTable,
  ) {}

  /**
   * Spends one token if nobody has yet and it has not expired: of concurrent spends, exactly one
   * returns true (PostgreSQL re-checks the conditions on the row once the first spender commits).
   */
  async spend(tokenHash: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable(this.table)
      .set({ used_at: now })
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Spends every open token of a user, so that only a newer mail can work. */
  async spendAllOf(userId: number, now: number): Promise<void> {
    await this.db.updateTable(this.table).set({ used_at: now }).where('user_id', '=', userId).where('used_at', 'is', null).execute();
  }
}
