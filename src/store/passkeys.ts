import type { Kysely } from 'kysely';
import type { Database, PasskeyRow } from './schema.js';

export type ChallengePurpose = 'register' | 'login';

/** What a new passkey is stored with. */
export interface NewPasskey {
  id: string;
  userId: number;
  publicKey: string;
  counter: number;
  transports: readonly string[];
  deviceType: string;
  backedUp: boolean;
  name: string;
  aaguid: string | null;
  now: number;
}

/** How long spent and expired challenges are kept before a new one sweeps them away. */
const CHALLENGE_SWEEP_AFTER_MS = 60 * 60_000;

/**
 * Passkeys, their users' WebAuthn handles and the challenges of their ceremonies. Every spend is one
 * conditional UPDATE, so that of concurrent spends exactly one wins, on SQLite and PostgreSQL alike.
 */
export class PasskeyRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Stores a passkey; false when a passkey with that credential id exists already. */
  async insert(passkey: NewPasskey): Promise<boolean> {
    const result = await this.db
      .insertInto('passkeys')
      .values({
        id: passkey.id,
        user_id: passkey.userId,
        public_key: passkey.publicKey,
        counter: passkey.counter,
        transports: JSON.stringify(passkey.transports),
        device_type: passkey.deviceType,
        backed_up: passkey.backedUp ? 1 : 0,
        name: passkey.name,
        aaguid: passkey.aaguid,
        created_at: passkey.now,
        last_used_at: null,
      })
      .onConflict((conflict) => conflict.column('id').doNothing())
      .executeTakeFirst();
    return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
  }

  findById(id: string): Promise<PasskeyRow | undefined> {
    return this.db.selectFrom('passkeys').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** A user's passkeys, oldest first. */
  listOf(userId: number): Promise<PasskeyRow[]> {
    return this.db.selectFrom('passkeys').selectAll().where('user_id', '=', userId).orderBy('created_at').orderBy('id').execute();
  }

  /** Renames one of the user's passkeys; undefined when the user has no passkey with that id. */
  async countOf(userId: number): Promise<number> {
    const row = await this.db
      .selectFrom('passkeys')
      .select((eb) => eb.fn.countAll<number | string>().as('count'))
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return Number(row?.count ?? 0);
  }

  async rename(userId: number, id: string, name: string): Promise<PasskeyRow | undefined> {
    const result = await this.db
      .updateTable('passkeys')
      .set({ name })
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) return undefined;
    return this.findById(id);
  }

  /** Deletes one of the user's passkeys; false when the user has no passkey with that id. */
  async remove(userId: number, id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('passkeys').where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  /**
   * Records a use of the passkey with the counter its authenticator reported, only if that counter
   * went up (or, for authenticators that keep none, is 0 as before): false otherwise. One statement,
   * so that of two assertions carrying the same counter (a cloned authenticator) at most one passes.
   */
  async recordUse(id: string, use: { counter: number; backedUp: boolean; now: number }): Promise<boolean> {
    const result = await this.db
      .updateTable('passkeys')
      .set({ counter: use.counter, backed_up: use.backedUp ? 1 : 0, last_used_at: use.now })
      .where('id', '=', id)
      .where('counter', use.counter === 0 ? '=' : '<', use.counter)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  findUserHandle(userId: number): Promise<string | undefined> {
    return this.db
      .selectFrom('passkey_user_handles')
      .select('handle')
      .where('user_id', '=', userId)
      .executeTakeFirst()
      .then((row) => row?.handle);
  }

  /** The user's handle: the stored one, or `candidate` stored now (the first writer wins a race). */
  async userHandle(userId: number, candidate: string, now: number): Promise<string> {
    const stored = await this.findUserHandle(userId);
    if (stored !== undefined) return stored;
    await this.db
      .insertInto('passkey_user_handles')
      .values({ user_id: userId, handle: candidate, created_at: now })
      .onConflict((conflict) => conflict.column('user_id').doNothing())
      .execute();
    const written = await this.findUserHandle(userId);
    if (written === undefined) throw new Error(`no passkey user handle for user ${userId}`);
    return written;
  }

  /** Stores a challenge (by its hash), and sweeps away challenges long spent or expired. */
  async insertChallenge(challenge: {
    hash: string;
    purpose: ChallengePurpose;
    userId: number | null;
    now: number;
    expiresAt: number;
  }): Promise<void> {
    await this.db
      .deleteFrom('webauthn_challenges')
      .where('expires_at', '<', challenge.now - CHALLENGE_SWEEP_AFTER_MS)
      .execute();
    await this.db
      .insertInto('webauthn_challenges')
      .values({
        challenge_hash: challenge.hash,
        purpose: challenge.purpose,
        user_id: challenge.userId,
        created_at: challenge.now,
        expires_at: challenge.expiresAt,
        used_at: null,
      })
      .execute();
  }

  /**
   * Spends a live challenge made for `purpose` (and, for a registration, for that user): of
   * concurrent spends, exactly one returns true, whichever instance serves them.
   */
  async spendChallenge(hash: string, purpose: ChallengePurpose, userId: number | null, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('webauthn_challenges')
      .set({ used_at: now })
      .where('challenge_hash', '=', hash)
      .where('purpose', '=', purpose)
      .where('user_id', userId === null ? 'is' : '=', userId)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }
}

/** The transports stored with a passkey (a JSON array of strings). */
export function passkeyTransports(row: Pick<PasskeyRow, 'transports'>): string[] {
  try {
    const parsed: unknown = JSON.parse(row.transports);
    return Array.isArray(parsed) ? parsed.filter((item): item is string => typeof item === 'string') : [];
  } catch {
    return [];
  }
}
