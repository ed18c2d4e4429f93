import type { Kysely } from 'kysely';
import type { AuditEventRow, Database } from '../store/schema.js';

export const AUDIT_EVENTS = [
  'register',
  'login_success',
  'login_failure',
  'login_locked',
  'refresh',
  'refresh_reuse_detected',
  'logout',
  'logout_all',
  'session_revoked',
  'password_changed',
  'password_removed',
  'password_reset_requested',
  'password_reset',
  'role_changed',
  'user_deactivated',
  'user_activated',
  'user_deleted',
  'service_created',
  'service_revoked',
  'token_revoked',
  'email_verification_sent',
  'email_verified',
  'email_change_requested',
  'email_changed',
  'mfa_setup_started',
  'mfa_enabled',
  'mfa_disabled',
  'mfa_reset',
  'mfa_recovery_codes_regenerated',
  'mfa_challenge_started',
  'mfa_code_failed',
  'mfa_recovery_code_used',
  'passkey_registered',
  'passkey_registration_failed',
  'passkey_renamed',
  'passkey_deleted',
  'passkey_counter_regressed',
  'identity_linked',
  'identity_unlinked',
  'external_sign_in_failed',
] as const;
export type AuditEventName = (typeof AUDIT_EVENTS)[number];

/** Where a request came from: recorded with every audit event, and on sessions for the user's own review. */
export interface ClientInfo {
  userAgent: string | null;
  ip: string | null;
}

export interface AuditEntry {
  event: AuditEventName;
  userId: number | null;
  /** Set when someone other than the user acted (an admin). */
  actorId?: number | null;
  client: ClientInfo;
  /** Small facts: ids, reasons, old and new values. Never a secret. */
  details?: Record<string, string | number | boolean | null>;
}

export interface AuditEvent {
  id: number;
  createdAt: number;
  event: string;
  userId: number | null;
  actorId: number | null;
  ip: string | null;
  userAgent: string | null;
  details: Record<string, unknown>;
}

function toEvent(row: AuditEventRow): AuditEvent {
  return {
    id: row.id,
    createdAt: row.created_at,
    event: row.event,
    userId: row.user_id,
    actorId: row.actor_id,
    ip: row.ip,
    userAgent: row.user_agent,
    details: JSON.parse(row.details) as Record<string, unknown>,
  };
}

/**
 * The append-only audit trail. Pass the transaction of the change being recorded, so that the
 * change and its record commit (or fail) together.
 */
export class AuditLog {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly now: () => number = Date.now,
    /** Told of every recorded event (the metrics count them). */
    private readonly onRecord: (event: AuditEventName) => void = () => undefined,
  ) {}

  async record(entry: AuditEntry, executor: Kysely<Database> = this.db): Promise<void> {
    this.onRecord(entry.event);
    await executor
      .insertInto('audit_events')
      .values({
        created_at: this.now(),
        event: entry.event,
        user_id: entry.userId,
        actor_id: entry.actorId ?? null,
        ip: entry.client.ip,
        user_agent: entry.client.userAgent,
        details: JSON.stringify(entry.details ?? {}),
      })
      .execute();
  }

  /** Newest first; `before` is the id of the last event of the previous page (a cursor). */
  async query(filter: { userId?: number; event?: string; before?: number; limit: number }): Promise<AuditEvent[]> {
    let query = this.db.selectFrom('audit_events').selectAll().orderBy('id', 'desc').limit(filter.limit);
    if (filter.userId !== undefined) query = query.where('user_id', '=', filter.userId);
    if (filter.event !== undefined) query = query.where('event', '=', filter.event);
    if (filter.before !== undefined) query = query.where('id', '<', filter.before);
    return (await query.execute()).map(toEvent);
  }

  /**
   * Every event about a user, oldest first, as the user may see them (the data export): where someone
   * else acted (an admin changed their role), the event and its time stay, but that person's ip and
   * user agent are not the user's data and are left out.
   */
  async forUser(userId: number): Promise<AuditEvent[]> {
    const rows = await this.db.selectFrom('audit_events').selectAll().where('user_id', '=', userId).orderBy('id').execute();
    return rows
      .map(toEvent)
      .map((event) => (event.actorId === null || event.actorId === userId ? event : { ...event, ip: null, userAgent: null }));
  }

  /** Keeps a deleted user's events as facts about the system, without who, where or how. */
  async anonymize(userId: number, executor: Kysely<Database> = this.db): Promise<void> {
    await executor.updateTable('audit_events').set({ ip: null, user_agent: null, details: '{}' }).where('user_id', '=', userId).execute();
  }
}
