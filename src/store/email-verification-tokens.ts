import type { Kysely, Selectable } from 'kysely';
import type { Database, EmailVerificationTokensTable } from './schema.js';

export type EmailVerificationTokenRow = Selectable<EmailVerificationTokensTable>;

/** Email verification tokens, stored by their hash. Pass a transaction to group a spend with other changes. */
export class EmailVerificationTokenRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(row: Omit<EmailVerificationTokenRow, 'used_at'>): Promise<void> {
    await this.db
      .insertInto('email_verification_tokens')
      .values({ ...row, used_at: null })
      .execute();
  }

  async findByHash(tokenHash: string): Promise<EmailVerificationTokenRow | undefined> {
    return this.db.selectFrom('email_verification_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
  }

  /**
   * Spends one token if nobody has yet and it has not expired: of concurrent spends, exactly one
   * returns true (PostgreSQL re-checks the conditions on the row once the first spender commits).
   */
  async spend(tokenHash: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('email_verification_tokens')
      .set({ used_at: now })
      .where('token_hash', '=', tokenHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Spends every open token of a user, so that only the newest mail works. */
  async spendAllOf(userId: number, now: number): Promise<void> {
    await this.db
      .updateTable('email_verification_tokens')
      .set({ used_at: now })
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .execute();
  }

  /** The newest open token of a user for an address other than `currentEmail`: an email change waiting for its verification. */
  async pendingChange(userId: number, currentEmail: string, now: number): Promise<EmailVerificationTokenRow | undefined> {
    return this.db
      .selectFrom('email_verification_tokens')
      .selectAll()
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .where('email', '<>', currentEmail)
      .orderBy('created_at', 'desc')
      .limit(1)
      .executeTakeFirst();
  }
}
