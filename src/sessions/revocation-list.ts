import type { Revocation } from '../store/revocations.js';

/**
 * The in-memory cache of revocations that access tokens must honour: revoked sessions, and per user
 * the role set by a recent role change (tokens carrying another role are stale). A check is two Map
 * lookups, so protected routes never query the database.
 *
 * The database is the source of truth (the revocations table); an entry lives only as long as an
 * access token could (lifetime plus leeway), which bounds the size of the maps.
 */
export class RevocationList {
  private readonly sessions = new Map<string, number>();
  /** userId → the role their tokens must carry, and until when that rule matters (epoch ms) */
  private readonly roles = new Map<number, { role: string; until: number }>();
  private nextSweepAt = 0;

  constructor(
    /** How long an access token is honoured (lifetime plus leeway), in milliseconds. */
    readonly accessTokenLifetimeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  apply(revocation: Revocation): void {
    if (revocation.expiresAt <= this.now()) return;
    if (revocation.kind === 'session') {
      this.sessions.set(revocation.sessionId, Math.max(revocation.expiresAt, this.sessions.get(revocation.sessionId) ?? 0));
    } else {
      // Revocations may arrive out of order (database reload, pub/sub): the latest change wins.
      const known = this.roles.get(revocation.userId);
      if (known === undefined || revocation.expiresAt >= known.until) this.roles.set(revocation.userId, { role: revocation.role, until: revocation.expiresAt });
    }
    this.sweepIfDue();
  }

  /** True when an access token of this session, user and role must be refused. */
  isRevoked(sessionId: string, userId: number, role: string): boolean {
    const now = this.now();
    const sessionUntil = this.sessions.get(sessionId);
    if (sessionUntil !== undefined && sessionUntil > now) return true;
    const current = this.roles.get(userId);
    return current !== undefined && current.until > now && current.role !== role;
  }

  get size(): number {
    return this.sessions.size + this.roles.size;
  }

  /** Drops entries no live token can need; runs at most once per lifetime/10. */
  private sweepIfDue(): void {
    const now = this.now();
    if (now < this.nextSweepAt) return;
    this.nextSweepAt = now + Math.max(1000, this.accessTokenLifetimeMs / 10);
    for (const [sessionId, until] of this.sessions) if (until <= now) this.sessions.delete(sessionId);
    for (const [userId, { until }] of this.roles) if (until <= now) this.roles.delete(userId);
  }
}
