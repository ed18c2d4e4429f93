import type { Kysely } from 'kysely';
import type { Database, PasswordResetTokenRow } from './schema.js';
import { SingleUseTokenRepository } from './single-use-tokens.js';

/** Password-reset tokens (single-use-tokens.ts: their spending rules). */
export class PasswordResetTokenRepository extends SingleUseTokenRepository {
  constructor(db: Kysely<Database>) {
    super(db, 'password_reset_tokens');
  }

  async insert(row: Omit<PasswordResetTokenRow, 'used_at'>): Promise<void> {
    await this.db
      .insertInto('password_reset_tokens')
      .values({ ...row, used_at: null })
      .execute();
  }

  async findByHash(tokenHash: string): Promise<PasswordResetTokenRow | undefined> {
    return this.db.selectFrom('password_reset_tokens').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
  }
}
