/**
 * The sessions whose access tokens must be refused before they expire (logout, reuse detected,
 * deactivation). Checking it is one Map lookup, so protected routes never query the database.
 *
 * The database is the source of truth (sessions.revoked_at); this is a cache of the revocations that
 * can still matter: an entry is kept only as long as an access token of that session may live, which
 * bounds the size of the map. It is rebuilt from the database at start.
 */
export class RevocationList {
  private readonly revokedUntil = new Map<string, number>();
  private nextSweepAt = 0;

  constructor(
    /** How long an access token is honoured (lifetime plus leeway), in milliseconds. */
    readonly accessTokenLifetimeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records that `sessionId` was revoked at `revokedAt` (epoch ms). */
  revokeSession(sessionId: string, revokedAt: number = this.now()): void {
    const until = revokedAt + this.accessTokenLifetimeMs;
    if (until <= this.now()) return;
    this.revokedUntil.set(sessionId, Math.max(until, this.revokedUntil.get(sessionId) ?? 0));
    this.sweepIfDue();
  }

  isSessionRevoked(sessionId: string): boolean {
    const until = this.revokedUntil.get(sessionId);
    return until !== undefined && until > this.now();
  }

  get size(): number {
    return this.revokedUntil.size;
  }

  /** Drops entries whose every access token has expired anyway; runs at most once per lifetime/10. */
  private sweepIfDue(): void {
    const now = this.now();
    if (now < this.nextSweepAt) return;
    this.nextSweepAt = now + Math.max(1000, this.accessTokenLifetimeMs / 10);
    for (const [sessionId, until] of this.revokedUntil) {
      if (until <= now) this.revokedUntil.delete(sessionId);
    }
  }
}
