import type { Kysely } from 'kysely';
import type { Database, PasswordResetTokenRow } from './schema.js';

/** Password-reset tokens, stored by their hash. Pass a transaction to group a spend with other changes. */
export class PasswordResetTokenRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(row: Omit<PasswordResetTokenRow, 'used_at'>): Promise<void> {
    await this.db
      .insertInto('password_reset_tokens')
      .values({ ...row, used_at: null })
      .execute();
  }

  async findByHash(tokenHash: string): Promise<PasswordResetTokenRow | undefined> {
    return this.db.selectFrom('password_reset_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
  }

  /** Spends one token if nobody has yet: of concurrent spends, exactly one returns true. */
  async spend(tokenHash: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('password_reset_tokens')
      .set({ used_at: now })
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Spends every open token of a user. */
  async spendAllOf(userId: number, now: number): Promise<void> {
    await this.db
      .updateTable('password_reset_tokens')
      .set({ used_at: now })
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .execute();
  }
}
