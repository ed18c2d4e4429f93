import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { DatabaseHandle, Dialect } from './database.js';
import { emailKey } from './email-key.js';

/** Where migrations report what an operator must look at (collisions they did not resolve). */
export interface MigrationLog {
  warn(message: string): void;
}

const consoleLog: MigrationLog = { warn: (message) => console.warn(`warning: ${message}`) };

// The one difference between the dialects that the schema builder does not hide: an auto-incrementing
// key is a `serial` column in PostgreSQL and an `integer … autoincrement` one in SQLite.
function serialIdType(dialect: Dialect): 'serial' | 'integer' {
  return dialect === 'postgres' ? 'serial' : 'integer';
}

/** 0001: accounts, their sessions and refresh tokens, and the tasks they own. */
function coreTables(dialect: Dialect): Migration {
  const serialId = serialIdType(dialect);
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('users')
        .addColumn('id', serialId, (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('email', 'varchar(320)', (c) => c.notNull().unique())
        .addColumn('password_hash', 'varchar(255)', (c) => c.notNull())
        .addColumn('full_name', 'varchar(200)')
        .addColumn('role', 'varchar(32)', (c) => c.notNull().defaultTo('student'))
        .addColumn('is_active', 'boolean', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('sessions')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint', (c) => c.notNull())
        .addColumn('user_agent', 'varchar(512)')
        .addColumn('ip', 'varchar(64)')
        .addColumn('revoked_at', 'bigint')
        .addColumn('revoked_reason', 'varchar(64)')
        .execute();
      await db.schema.createIndex('sessions_user_id').on('sessions').column('user_id').execute();
      await db.schema.createIndex('sessions_revoked_at').on('sessions').column('revoked_at').execute();

      await db.schema
        .createTable('refresh_tokens')
        .addColumn('jti', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('session_id', 'varchar(64)', (c) => c.notNull().references('sessions.id').onDelete('cascade'))
        .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('parent_jti', 'varchar(64)')
        .addColumn('issued_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .execute();
      await db.schema.createIndex('refresh_tokens_session_id').on('refresh_tokens').column('session_id').execute();

      await db.schema
        .createTable('tasks')
        .addColumn('id', serialId, (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('title', 'varchar(200)', (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('done', 'boolean', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('tasks_user_id').on('tasks').columns(['user_id', 'id']).execute();
    },
  };
}

/**
 * 0002: the durable log of revocations that access tokens must honour. It has no foreign key: a
 * deleted user's revocation must outlive the user row, for as long as their tokens could.
 */
function revocationsTable(dialect: Dialect): Migration {
  const serialId = serialIdType(dialect);
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('revocations')
        .addColumn('id', serialId, (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('session_id', 'varchar(64)')
        .addColumn('user_id', 'integer', (c) => c.notNull())
        .addColumn('issued_before', 'bigint')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('revocations_expires_at').on('revocations').column('expires_at').execute();
    },
  };
}

/** 0003: the audit trail and the single-use password-reset tokens. */
function auditAndPasswordResetTables(dialect: Dialect): Migration {
  const serialId = serialIdType(dialect);
  return {
    async up(db: Kysely<unknown>) {
      // Append-only. No foreign keys: an event outlives the user it names (anonymised on deletion).
      await db.schema
        .createTable('audit_events')
        .addColumn('id', serialId, (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('event', 'varchar(64)', (c) => c.notNull())
        .addColumn('user_id', 'integer')
        .addColumn('actor_id', 'integer')
        .addColumn('ip', 'varchar(64)')
        .addColumn('user_agent', 'varchar(512)')
        .addColumn('details', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('audit_events_user_id').on('audit_events').columns(['user_id', 'id']).execute();
      await db.schema.createIndex('audit_events_event').on('audit_events').columns(['event', 'id']).execute();

      await db.schema
        .createTable('password_reset_tokens')
        .addColumn('token_hash', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .execute();
      await db.schema.createIndex('password_reset_tokens_user_id').on('password_reset_tokens').column('user_id').execute();
    },
  };
}

/** 0004: the retention sweep (store/retention.ts) deletes by expiry. Dialect-free, so a plain constant. */
const retentionIndexes: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.createIndex('refresh_tokens_expires_at').on('refresh_tokens').column('expires_at').execute();
    await db.schema.createIndex('password_reset_tokens_expires_at').on('password_reset_tokens').column('expires_at').execute();
  },
};

/**
 * 0005: uniqueness of an email moves from its NFC lower-case form to its identity key (NFKC and case
 * folding, store/email-key.ts). Existing accounts whose keys collide are reported through `log`, never
 * merged: the oldest keeps the key, each later one gets `<key>#<id>` (no real key contains '#' after the
 * '@'), and every one of them still signs in with the email it has.
 */
function emailKeyIdentity(log: MigrationLog): Migration {
  return {
    async up(db: Kysely<unknown>) {
      const users = db as unknown as Kysely<{ users: { id: number; email: string; email_key: string | null } }>;
      await db.schema.alterTable('users').addColumn('email_key', 'text').execute();
      const rows = await users.selectFrom('users').select(['id', 'email']).orderBy('id').execute();
      const owners = new Map<string, number[]>();
      for (const row of rows) {
        const key = emailKey(row.email);
        const ids = owners.get(key) ?? [];
        ids.push(row.id);
        owners.set(key, ids);
        await users
          .updateTable('users')
          .set({ email_key: ids.length === 1 ? key : `${key}#${row.id}` })
          .where('id', '=', row.id)
          .execute();
      }
      for (const ids of owners.values()) {
        if (ids.length > 1) {
          log.warn(
            `accounts ${ids.join(', ')} have emails that are one address under NFKC and case folding; they are kept apart ` +
              `(account ${ids[0]} owns the address, the others sign in only with their exact email): merge or rename them by hand`,
          );
        }
      }
      await db.schema.createIndex('users_email_identity').on('users').column('email_key').unique().execute();
    },
  };
}

/**
 * 0006: one access token revoked by its jti (RFC 7009 revocation, API.md "Services and token
 * endpoints"): a revocation row with `token_id` set.
 */
const tokenRevocations: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('revocations').addColumn('token_id', 'varchar(64)').execute();
  },
};

/**
 * 0007: the credentials other services use for the revocation feed, introspection and revocation.
 * The secret is stored as its SHA-256 only; revoking a credential deletes its row.
 */
function serviceCredentialsTable(dialect: Dialect): Migration {
  const serialId = serialIdType(dialect);
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('service_credentials')
        .addColumn('id', serialId, (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('name', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('client_id', 'varchar(64)', (c) => c.notNull().unique())
        .addColumn('secret_hash', 'varchar(64)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('created_by', 'integer')
        .addColumn('last_used_at', 'bigint')
        .execute();
    },
  };
}

/**
 * 0008: email verification and two-factor sign-in (issue 15). Accounts gain a verified flag (false
 * for accounts made before: nothing verified them); sessions remember how they were signed in (the
 * access tokens' `amr`, RFC 8176; null for older sessions: a password). Secrets are stored as their
 * SHA-256 (verification tokens, recovery codes, MFA challenges) or encrypted (TOTP secrets, which the
 * server must read back).
 */
function emailVerificationAndMfaTables(dialect: Dialect): Migration {
  const serialId = serialIdType(dialect);
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('users')
        .addColumn('email_verified', 'boolean', (c) => c.notNull().defaultTo(false))
        .execute();
      await db.schema.alterTable('users').addColumn('email_verified_at', 'bigint').execute();
      await db.schema.alterTable('sessions').addColumn('amr', 'varchar(64)').execute();

      await db.schema
        .createTable('email_verification_tokens')
        .addColumn('token_hash', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('email', 'varchar(320)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .execute();
      await db.schema.createIndex('email_verification_tokens_user_id').on('email_verification_tokens').column('user_id').execute();
      await db.schema.createIndex('email_verification_tokens_expires_at').on('email_verification_tokens').column('expires_at').execute();

      await db.schema
        .createTable('mfa_totp')
        .addColumn('user_id', 'integer', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
        .addColumn('secret', 'varchar(255)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('confirmed_at', 'bigint')
        .addColumn('last_used_step', 'bigint')
        .execute();

      await db.schema
        .createTable('mfa_recovery_codes')
        .addColumn('id', serialId, (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('code_hash', 'varchar(64)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .execute();
      await db.schema.createIndex('mfa_recovery_codes_user_id').on('mfa_recovery_codes').columns(['user_id', 'code_hash']).execute();

      await db.schema
        .createTable('mfa_challenges')
        .addColumn('token_hash', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('failed_attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('used_at', 'bigint')
        .execute();
      await db.schema.createIndex('mfa_challenges_expires_at').on('mfa_challenges').column('expires_at').execute();
    },
  };
}

/**
 * 0009: passkeys (WebAuthn, issue 16). A credential is keyed by its id (base64url) and keeps its
 * COSE public key (base64url), signature counter and flags; each user has one opaque user handle
 * (the WebAuthn `user.id`, never the email). Challenges live here rather than in one instance's
 * memory, so that options from one instance verify on another; each is spent once, within 5 minutes.
 */
function passkeyTables(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('passkeys')
        .addColumn('id', 'varchar(1400)', (c) => c.primaryKey())
        .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('counter', 'bigint', (c) => c.notNull())
        .addColumn('transports', 'varchar(256)', (c) => c.notNull())
        .addColumn('device_type', 'varchar(16)', (c) => c.notNull())
        .addColumn('backed_up', 'boolean', (c) => c.notNull())
        .addColumn('name', 'varchar(100)', (c) => c.notNull())
        .addColumn('aaguid', 'varchar(36)')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint')
        .execute();
      await db.schema.createIndex('passkeys_user_id').on('passkeys').column('user_id').execute();

      await db.schema
        .createTable('passkey_user_handles')
        .addColumn('user_id', 'integer', (c) => c.primaryKey().references('users.id').onDelete('cascade'))
        .addColumn('handle', 'varchar(128)', (c) => c.notNull().unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('webauthn_challenges')
        .addColumn('challenge_hash', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('purpose', 'varchar(16)', (c) => c.notNull())
        .addColumn('user_id', 'integer', (c) => c.references('users.id').onDelete('cascade'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .execute();
      await db.schema.createIndex('webauthn_challenges_expires_at').on('webauthn_challenges').column('expires_at').execute();
    },
  };
}

/**
 * 0010: a second step remembers the first one. An mfa_token now follows a password or an external
 * provider's sign-in, so the session it completes records which (`pwd` or `fed`) beside the second
 * factor; null for challenges written before: a password.
 */
const mfaFirstFactor: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema.alterTable('mfa_challenges').addColumn('first_factor', 'varchar(16)').execute();
  },
};

/**
 * 0011: external identities (issue 17). An identity is a provider's subject linked to an account,
 * unique per provider; an OAuth flow is the state of one authorization request, keyed by the SHA-256
 * of its `state` and bound to the browser by the SHA-256 of its flow cookie, spent once within 10
 * minutes.
 */
function externalIdentityTables(dialect: Dialect): Migration {
  const serialId = serialIdType(dialect);
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('external_identities')
        .addColumn('id', serialId, (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
        .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
        .addColumn('provider', 'varchar(32)', (c) => c.notNull())
        .addColumn('subject', 'varchar(255)', (c) => c.notNull())
        .addColumn('email', 'varchar(320)')
        .addColumn('email_verified', 'boolean', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint')
        .addUniqueConstraint('external_identities_provider_subject', ['provider', 'subject'])
        .execute();
      await db.schema.createIndex('external_identities_user_id').on('external_identities').column('user_id').execute();

      await db.schema
        .createTable('oauth_flows')
        .addColumn('state_hash', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('browser_binding_hash', 'varchar(64)', (c) => c.notNull())
        .addColumn('provider', 'varchar(32)', (c) => c.notNull())
        .addColumn('code_verifier', 'varchar(128)', (c) => c.notNull())
        .addColumn('nonce', 'varchar(128)')
        .addColumn('redirect_path', 'varchar(512)', (c) => c.notNull())
        .addColumn('link_user_id', 'integer', (c) => c.references('users.id').onDelete('cascade'))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .execute();
      await db.schema.createIndex('oauth_flows_expires_at').on('oauth_flows').column('expires_at').execute();
    },
  };
}

/**
 * Migrations live in code, in order, and are never edited once released: a change is a new entry.
 * Kysely records applied names in `kysely_migration` and takes a lock, so concurrent starts are safe.
 * Each entry is built by its own function above, given only what it depends on (the dialect, the log).
 */
function migrations(dialect: Dialect, log: MigrationLog): Record<string, Migration> {
  return {
    '0001_core': coreTables(dialect),
    '0002_revocations': revocationsTable(dialect),
    '0003_audit_and_password_reset': auditAndPasswordResetTables(dialect),
    '0004_retention_indexes': retentionIndexes,
    '0005_email_key': emailKeyIdentity(log),
    '0006_token_revocations': tokenRevocations,
    '0007_service_credentials': serviceCredentialsTable(dialect),
    '0008_email_verification_and_mfa': emailVerificationAndMfaTables(dialect),
    '0009_passkeys': passkeyTables(),
    '0010_mfa_first_factor': mfaFirstFactor,
    '0011_external_identities': externalIdentityTables(dialect),
  };
}

class InCodeMigrations implements MigrationProvider {
  constructor(
    private readonly dialect: Dialect,
    private readonly log: MigrationLog,
  ) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.dialect, this.log);
  }
}

/**
 * Brings the schema up to date (or, with `upTo`, as far as that migration: tests seed older schemas
 * this way); returns the names of the migrations it applied.
 */
export async function migrateToLatest(handle: DatabaseHandle, options: { log?: MigrationLog; upTo?: string } = {}): Promise<string[]> {
  // Kysely looks for its bookkeeping tables in every schema unless told which one; name the current
  // one, so that a database holding several gatepass schemas (search_path) migrates each on its own.
  const schema =
    handle.dialect === 'postgres'
      ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(handle.db)).rows[0]?.schema
      : undefined;
  const migrator = new Migrator({
    db: handle.db,
    provider: new InCodeMigrations(handle.dialect, options.log ?? consoleLog),
    ...(schema !== undefined && { migrationTableSchema: schema }),
  });
  const { error, results } = options.upTo === undefined ? await migrator.migrateToLatest() : await migrator.migrateTo(options.upTo);
  if (error !== undefined) throw error instanceof Error ? error : new Error('migration failed', { cause: error });
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
