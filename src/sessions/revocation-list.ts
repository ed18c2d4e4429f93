import type { Revocation } from '../store/revocations.js';
import { RoleChangeCutoffs } from './role-change-cutoff.js';

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
  /** Per user, a time before which their tokens were minted (role change). */
  readonly cutoffs: RoleChangeCutoffs;
  private nextSweepAt = 0;

  constructor(
    /** How long an access token is honoured (lifetime plus leeway), in milliseconds. */
    readonly accessTokenLifetimeMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.cutoffs = new RoleChangeCutoffs(now);
  }

  apply(revocation: Revocation): void {
    if (revocation.expiresAt <= this.now()) return;
    if (revocation.kind === 'session') {
      this.sessions.set(revocation.sessionId, Math.max(revocation.expiresAt, this.sessions.get(revocation.sessionId) ?? 0));
    } else {
      this.cutoffs.apply(revocation.userId, revocation.issuedBefore, revocation.expiresAt);
    }
    this.sweepIfDue();
  }

  /** True when an access token of this session and user, minted at `issuedAt` (epoch ms), must be refused. */
  isRevoked(sessionId: string, userId: number, issuedAt: number): boolean {
    const now = this.now();
    const sessionUntil = this.sessions.get(sessionId);
    if (sessionUntil !== undefined && sessionUntil > now) return true;
    return this.cutoffs.refuses(userId, issuedAt);
  }

  get size(): number {
    return this.sessions.size + this.cutoffs.size;
  }

  /** Drops entries no live token can need; runs at most once per lifetime/10. */
  private sweepIfDue(): void {
    const now = this.now();
    if (now < this.nextSweepAt) return;
    this.nextSweepAt = now + Math.max(1000, this.accessTokenLifetimeMs / 10);
    for (const [sessionId, until] of this.sessions) if (until <= now) this.sessions.delete(sessionId);
    this.cutoffs.sweep(now);
  }
}
