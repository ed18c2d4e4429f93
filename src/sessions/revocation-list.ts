import type { Revocation } from '../store/revocations.js';

/**
 * The in-memory cache of revocations that access tokens must honour: revoked sessions, and per user
 * a "tokens issued before" time (logout-all, deactivation, deletion, role change). A check is two
 * Map lookups, so protected routes never query the database.
 *
 * The database is the source of truth (the revocations table); an entry lives only as long as an
 * access token could (lifetime plus leeway), which bounds the size of the maps.
 */
export class RevocationList {
  private readonly sessions = new Map<string, number>();
  /** userId → [tokens issued before (epoch s), entry expiry (epoch ms)] */
  private readonly users = new Map<number, [number, number]>();
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
      const [before, expiresAt] = this.users.get(revocation.userId) ?? [0, 0];
      this.users.set(revocation.userId, [Math.max(before, revocation.tokensIssuedBefore), Math.max(expiresAt, revocation.expiresAt)]);
    }
    this.sweepIfDue();
  }

  /** True when an access token of this session, user and issue time (epoch s) must be refused. */
  isRevoked(sessionId: string, userId: number, issuedAt: number): boolean {
    const now = this.now();
    const sessionUntil = this.sessions.get(sessionId);
    if (sessionUntil !== undefined && sessionUntil > now) return true;
    const user = this.users.get(userId);
    return user !== undefined && user[1] > now && issuedAt < user[0];
  }

  /** The earliest `iat` a new token of this user may carry so that it is not caught by a cutoff. */
  minimumIssuedAt(userId: number): number {
    const user = this.users.get(userId);
    return user !== undefined && user[1] > this.now() ? user[0] : 0;
  }

  get size(): number {
    return this.sessions.size + this.users.size;
  }

  /** Drops entries no live token can need; runs at most once per lifetime/10. */
  private sweepIfDue(): void {
    const now = this.now();
    if (now < this.nextSweepAt) return;
    this.nextSweepAt = now + Math.max(1000, this.accessTokenLifetimeMs / 10);
    for (const [sessionId, until] of this.sessions) if (until <= now) this.sessions.delete(sessionId);
    for (const [userId, [, until]] of this.users) if (until <= now) this.users.delete(userId);
  }
}
