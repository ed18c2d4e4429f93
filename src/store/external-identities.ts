import type { Kysely } from 'kysely';
import type { Database, ExternalIdentityRow, OauthFlowRow } from './schema.js';

/** What a new link between a provider's account and a gatepass account is stored with. */
export interface NewExternalIdentity {
  userId: number;
  provider: string;
  subject: string;
  email: string | null;
  emailVerified: boolean;
  now: number;
}

/** What an authorization request in flight is stored with; the state and the flow cookie only as their SHA-256. */
export interface NewOauthFlow {
  stateHash: string;
  browserBindingHash: string;
  provider: string;
  codeVerifier: string;
  nonce: string | null;
  redirectPath: string;
  linkUserId: number | null;
  now: number;
  expiresAt: number;
}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

/**
 * External identities (a provider's subject linked to an account) and the OAuth flows that create and
 * use them. A flow is spent by one conditional UPDATE, so that of concurrent deliveries of one
 * callback exactly one goes on, on SQLite and PostgreSQL alike.
 */
export class ExternalIdentityRepository {
  constructor(private readonly db: Kysely<Database>) {}

  findBySubject(provider: string, subject: string): Promise<ExternalIdentityRow | undefined> {
    return this.db
      .selectFrom('external_identities')
      .selectAll()
      .where('provider', '=', provider)
      .where('subject', '=', subject)
      .executeTakeFirst();
  }

  /** Links the identity; undefined when (provider, subject) is linked already (to anyone: a concurrent first sign-in won). */
  async insert(identity: NewExternalIdentity): Promise<ExternalIdentityRow | undefined> {
    try {
      return await this.db
        .insertInto('external_identities')
        .values({
          user_id: identity.userId,
          provider: identity.provider,
          subject: identity.subject,
          email: identity.email,
          email_verified: identity.emailVerified ? 1 : 0,
          created_at: identity.now,
          last_used_at: identity.now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
    } catch (error) {
      if (isUniqueViolation(error)) return undefined;
      throw error;
    }
  }

  /** A sign-in with the identity: the provider's current address and when. */
  async recordUse(id: number, use: { email: string | null; emailVerified: boolean; now: number }): Promise<void> {
    await this.db
      .updateTable('external_identities')
      .set({ email: use.email, email_verified: use.emailVerified ? 1 : 0, last_used_at: use.now })
      .where('id', '=', id)
      .execute();
  }

  /** A user's identities, oldest first. */
  listOf(userId: number): Promise<ExternalIdentityRow[]> {
    return this.db
      .selectFrom('external_identities')
      .selectAll()
      .where('user_id', '=', userId)
      .orderBy('created_at')
      .orderBy('id')
      .execute();
  }

  async countOf(userId: number): Promise<number> {
    const row = await this.db
      .selectFrom('external_identities')
      .select((eb) => eb.fn.countAll<number | string>().as('count'))
      .where('user_id', '=', userId)
      .executeTakeFirstOrThrow();
    return Number(row.count);
  }

  /** Unlinks one of the user's identities; false when the user has no identity with that id. */
  async remove(userId: number, id: number): Promise<boolean> {
    const result = await this.db.deleteFrom('external_identities').where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows) === 1;
  }

  async insertFlow(flow: NewOauthFlow): Promise<void> {
    await this.db
      .insertInto('oauth_flows')
      .values({
        state_hash: flow.stateHash,
        browser_binding_hash: flow.browserBindingHash,
        provider: flow.provider,
        code_verifier: flow.codeVerifier,
        nonce: flow.nonce,
        redirect_path: flow.redirectPath,
        link_user_id: flow.linkUserId,
        created_at: flow.now,
        expires_at: flow.expiresAt,
        used_at: null,
      })
      .execute();
  }

  /** The flow of a state, spent or not: the caller judges it before spending it. */
  findFlow(stateHash: string): Promise<OauthFlowRow | undefined> {
    return this.db.selectFrom('oauth_flows').selectAll().where('state_hash', '=', stateHash).executeTakeFirst();
  }

  /** Spends a live flow: of concurrent spends exactly one returns true, whichever instance serves them. */
  async spendFlow(stateHash: string, now: number): Promise<boolean> {
    const result = await this.db
      .updateTable('oauth_flows')
      .set({ used_at: now })
      .where('state_hash', '=', stateHash)
      .where('used_at', 'is', null)
      .where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }
}
