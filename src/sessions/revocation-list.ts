import type { Revocation } from '../store/revocations.js';

/**
 * The in-memory cache of revocations that access tokens must honour: revoked sessions, and per user
 * a time before which their tokens were minted (role change). A check is two Map lookups, so
 * protected routes never query the database.
 *
 * The database is the source of truth (the revocations table); an entry lives only as long as an
 * access token could (lifetime plus leeway), which bounds the size of the maps.
 */
export class RevocationList {
  private readonly sessions = new Map<string, number>();
  /** userId → tokens minted before `issuedBefore` (epoch ms) are refused, until `until` (epoch ms) */
  private readonly users = new Map<number, { issuedBefore: number; until: number }>();
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
      // Revocations may arrive in any order (database reload, pub/sub): the latest cutoff wins.
      const known = this.users.get(revocation.userId);
      this.users.set(revocation.userId, {
        issuedBefore: Math.max(revocation.issuedBefore, known?.issuedBefore ?? 0),
        until: Math.max(revocation.expiresAt, known?.until ?? 0),
      });
    }
    this.sweepIfDue();
  }

  /** True when an access token of this session and user, minted at `issuedAt` (epoch ms), must be refused. */
  isRevoked(sessionId: string, userId: number, issuedAt: number): boolean {
    const now = this.now();
    const sessionUntil = this.sessions.get(sessionId);
    if (sessionUntil !== undefined && sessionUntil > now) return true;
    const user = this.users.get(userId);
    return user !== undefined && user.until > now && issuedAt < user.issuedBefore;
  }

  /** The user's live cutoff (their tokens minted before it are refused), or 0 when there is none. */
  userCutoff(userId: number): number {
    const user = this.users.get(userId);
    return user !== undefined && user.until > this.now() ? user.issuedBefore : 0;
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
    for (const [userId, { until }] of this.users) if (until <= now) this.users.delete(userId);
  }
}
