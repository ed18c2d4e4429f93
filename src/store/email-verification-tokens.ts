import type { Kysely, Selectable } from 'kysely';
import type { Database, EmailVerificationTokensTable } from './schema.js';
import { SingleUseTokenRepository } from './single-use-tokens.js';

export type EmailVerificationTokenRow = Selectable<EmailVerificationTokensTable>;

/** Email verification tokens (single-use-tokens.ts: their spending rules), and the email change one may stand for. */
export class EmailVerificationTokenRepository extends SingleUseTokenRepository {
  constructor(db: Kysely<Database>) {
    super(db, 'email_verification_tokens');
  }

  async insert(row: Omit<EmailVerificationTokenRow, 'used_at'>): Promise<void> {
    await this.db
      .insertInto('email_verification_tokens')
      .values({ ...row, used_at: null })
      .execute();
  }

  async findByHash(tokenHash: string): Promise<EmailVerificationTokenRow | undefined> {
    return this.db.selectFrom('email_verification_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
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
