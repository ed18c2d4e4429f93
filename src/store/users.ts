import { CompiledQuery, PostgresAdapter, sql, type Kysely } from 'kysely';
import { emailKey } from './email-key.js';
import type { Database, UserRow } from './schema.js';

export interface User {
  id: number;
  email: string;
  fullName: string | null;
  role: string;
  isActive: boolean;
  emailVerified: boolean;
  /** When the address was verified (epoch ms); null while it is not. */
  emailVerifiedAt: number | null;
  /** Null for an account with no password (it signs in with passkeys or an external provider only). */
  passwordHash: string | null;
  createdAt: number;
  updatedAt: number;
}

/**
 * How "no password" is stored: users.password_hash stays NOT NULL because SQLite cannot drop that
 * constraint without rebuilding the table, which its foreign keys' cascades make unsafe. No hash
 * function ever produces the empty string, so it can never verify; nothing above this module sees it.
 */
const NO_PASSWORD = '';

export function toUser(row: UserRow): User {
  return {
    id: row.id,
    email: row.email,
    fullName: row.full_name,
    role: row.role,
    isActive: Boolean(row.is_active),
    emailVerified: Boolean(row.email_verified),
    emailVerifiedAt: row.email_verified_at,
    passwordHash: row.password_hash === NO_PASSWORD ? null : row.password_hash,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Raised when an insert collides with an existing (normalised) email. */
export class DuplicateEmailError extends Error {
  constructor() {
    super('email already registered');
    this.name = 'DuplicateEmailError';
  }
}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  // PostgreSQL unique_violation, and better-sqlite3's constraint codes.
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

export class UserRepository {
  /** findById's SQL, compiled once: every request of a data route runs it, and compiling costs as much as the lookup. */
  private readonly findByIdSql: string;

  constructor(private readonly db: Kysely<Database>) {
    this.findByIdSql = db.selectFrom('users').selectAll().where('id', '=', 0).compile().sql;
  }

  async create(input: {
    email: string;
    passwordHash: string | null;
    fullName: string | null;
    role?: string | undefined;
    /** Set when the address is known good without a mail (an operator created the account). */
    emailVerified?: boolean;
    now: number;
  }): Promise<User> {
    try {
      const row = await this.db
        .insertInto('users')
        .values({
          email: input.email,
          email_key: emailKey(input.email),
          password_hash: input.passwordHash ?? NO_PASSWORD,
          full_name: input.fullName,
          ...(input.role !== undefined && { role: input.role }),
          is_active: 1,
          ...(input.emailVerified === true && { email_verified: 1, email_verified_at: input.now }),
          created_at: input.now,
          updated_at: input.now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toUser(row);
    } catch (error) {
      if (isUniqueViolation(error)) throw new DuplicateEmailError();
      throw error;
    }
  }

  /**
   * The account an email names: the one stored with exactly this (normalised) email, else the one
   * whose identity key (email-key.ts) it shares. The exact match comes first so that accounts whose
   * keys collided before keys existed (the 0005 migration kept them apart) each stay reachable.
   */
  async findByEmail(email: string): Promise<User | undefined> {
    const row = await this.db
      .selectFrom('users')
      .selectAll()
      .where((eb) => eb.or([eb('email', '=', email), eb('email_key', '=', emailKey(email))]))
      .orderBy(sql`case when email = ${email} then 0 else 1 end`)
      .limit(1)
      .executeTakeFirst();
    return row && toUser(row);
  }

  /**
   * The ids of the active admins, read under a lock held until the transaction ends, so that two
   * transactions each removing an admin decide one after the other, the second on the first's
   * committed result. PostgreSQL: a transaction-scoped advisory lock (the key spells "gatepass"),
   * then a fresh read (READ COMMITTED) — rather than row locks, which would take users' rows in
   * another order than the sign-in and session code does and could deadlock with it. SQLite: Kysely
   * runs one transaction at a time on its single connection; a no-op write takes the database's write
   * lock before the read, so that another process (the CLI) changing admins at the same moment is
   * waited for (busy_timeout) rather than read stale and then refused with SQLITE_BUSY_SNAPSHOT.
   */
  async lockActiveAdminIds(): Promise<number[]> {
    if (this.db.getExecutor().adapter instanceof PostgresAdapter)
      await sql`select pg_advisory_xact_lock(7449363237673464691)`.execute(this.db);
    else await sql`update users set id = id where 0`.execute(this.db);
    const rows = await this.db
      .selectFrom('users')
      .select('id')
      .where('role', '=', 'admin')
      .where('is_active', '=', 1)
      .orderBy('id')
      .execute();
    return rows.map((row) => row.id);
  }

  async findById(id: number): Promise<User | undefined> {
    const { rows } = await this.db.executeQuery<UserRow>(CompiledQuery.raw(this.findByIdSql, [id]));
    const row = rows[0];
    return row && toUser(row);
  }

  /**
   * Reads the user and holds the row until the transaction ends (PostgreSQL row locks; pass no mode on
   * SQLite, where one write transaction runs at a time): `share` keeps it from changing while a
   * decision is made on it (sign-in, refresh), `update` takes it before changing what hangs on it.
   */
  async findLocked(id: number, mode: 'share' | 'update' | undefined): Promise<User | undefined> {
    const query = this.db.selectFrom('users').selectAll().where('id', '=', id);
    const row = await (mode === 'share' ? query.forShare() : mode === 'update' ? query.forUpdate() : query).executeTakeFirst();
    return row && toUser(row);
  }

  /**
   * Reads the user and holds it against every other change until the transaction ends, on either
   * dialect: a row lock on PostgreSQL; on SQLite a no-op write first, which takes the database's write
   * lock (as lockActiveAdminIds does), so another process is waited for rather than read stale.
   */
  async lockForChange(id: number): Promise<User | undefined> {
    if (this.db.getExecutor().adapter instanceof PostgresAdapter) return this.findLocked(id, 'update');
    await sql`update users set id = id where 0`.execute(this.db);
    return this.findLocked(id, undefined);
  }

  async update(
    id: number,
    changes: { fullName?: string | null; passwordHash?: string | null; isActive?: boolean; role?: string; emailVerifiedAt?: number | null },
    now: number,
  ): Promise<User | undefined> {
    const row = await this.db
      .updateTable('users')
      .set({
        ...(changes.fullName !== undefined && { full_name: changes.fullName }),
        ...(changes.passwordHash !== undefined && { password_hash: changes.passwordHash ?? NO_PASSWORD }),
        ...(changes.isActive !== undefined && { is_active: changes.isActive ? 1 : 0 }),
        ...(changes.role !== undefined && { role: changes.role }),
        ...(changes.emailVerifiedAt !== undefined && {
          email_verified: changes.emailVerifiedAt === null ? 0 : 1,
          email_verified_at: changes.emailVerifiedAt,
        }),
        updated_at: now,
      })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirst();
    return row && toUser(row);
  }

  /**
   * Moves the account to a new address its owner has just proven to hold (so it is verified);
   * DuplicateEmailError when another account has it, or its identity key, by now.
   */
  async changeEmail(id: number, email: string, now: number): Promise<void> {
    try {
      await this.db
        .updateTable('users')
        .set({ email, email_key: emailKey(email), email_verified: 1, email_verified_at: now, updated_at: now })
        .where('id', '=', id)
        .execute();
    } catch (error) {
      if (isUniqueViolation(error)) throw new DuplicateEmailError();
      throw error;
    }
  }

  /** A page of users, oldest first, filtered by a fragment of the email, an exact role and/or whether the email is verified. */
  async list(filter: {
    emailContains?: string;
    role?: string;
    emailVerified?: boolean;
    limit: number;
    offset: number;
  }): Promise<{ items: User[]; total: number }> {
    let base = this.db.selectFrom('users');
    if (filter.emailContains !== undefined) {
      // LIKE wildcards in the fragment are literal characters here.
      const escaped = filter.emailContains.replace(/[\\%_]/g, (c) => `\\${c}`);
      base = base.where(sql<boolean>`email like ${`%${escaped}%`} escape '\\'`);
    }
    if (filter.role !== undefined) base = base.where('role', '=', filter.role);
    if (filter.emailVerified !== undefined) base = base.where('email_verified', '=', filter.emailVerified ? 1 : 0);
    const [rows, count] = await Promise.all([
      base.selectAll().orderBy('id').limit(filter.limit).offset(filter.offset).execute(),
      base.select((eb) => eb.fn.countAll<number | string>().as('total')).executeTakeFirstOrThrow(),
    ]);
    return { items: rows.map(toUser), total: Number(count.total) };
  }

  async delete(id: number): Promise<void> {
    await this.db.deleteFrom('users').where('id', '=', id).execute();
  }
}
