import type { Insertable, Kysely } from 'kysely';
import type { Database, ServiceCredentialRow, ServiceCredentialsTable } from './schema.js';

/** Raised when an insert collides with an existing name (or, vanishingly unlikely, client id). */
export class DuplicateServiceCredentialError extends Error {
  constructor() {
    super('service credential already exists');
    this.name = 'DuplicateServiceCredentialError';
  }
}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  // PostgreSQL unique_violation, and better-sqlite3's constraint code.
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

/** The credentials of other services. Revoking one deletes its row, so a lookup is the whole check. */
export class ServiceCredentialRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(row: Omit<Insertable<ServiceCredentialsTable>, 'id' | 'last_used_at'>): Promise<ServiceCredentialRow> {
    try {
      return await this.db
        .insertInto('service_credentials')
        .values({ ...row, last_used_at: null })
        .returningAll()
        .executeTakeFirstOrThrow();
    } catch (error) {
      // The unique index decides between concurrent creations of one name, not a read beforehand.
      if (isUniqueViolation(error)) throw new DuplicateServiceCredentialError();
      throw error;
    }
  }

  async findByClientId(clientId: string): Promise<ServiceCredentialRow | undefined> {
    return this.db.selectFrom('service_credentials').selectAll().where('client_id', '=', clientId).executeTakeFirst();
  }

  async findByName(name: string): Promise<ServiceCredentialRow | undefined> {
    return this.db.selectFrom('service_credentials').selectAll().where('name', '=', name).executeTakeFirst();
  }

  /** Oldest first. */
  async list(): Promise<ServiceCredentialRow[]> {
    return this.db.selectFrom('service_credentials').selectAll().orderBy('id').execute();
  }

  /** Whether a row went: of concurrent revocations of one name, exactly one returns true. */
  async deleteByName(name: string): Promise<boolean> {
    const result = await this.db.deleteFrom('service_credentials').where('name', '=', name).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  /**
   * Records a use unless one was recorded since `staleBefore`: the condition is in the statement, so
   * that instances authenticating the same service at once write the row once, not once each.
   */
  async touch(id: number, now: number, staleBefore: number): Promise<void> {
    await this.db
      .updateTable('service_credentials')
      .set({ last_used_at: now })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', staleBefore)]))
      .execute();
  }
}
