import type { Revocation } from './revocation.js';
import { RoleChangeCutoffs } from './role-change-cutoff.js';

/**
 * The in-memory cache of revocations that access tokens must honour: revoked sessions, single
 * tokens (RFC 7009), and per user a time before which their tokens were minted (role change). A
 * check is three Map lookups, so protected routes never query the database. The server keeps one,
 * and so does `gatepass/verify` when it follows the revocation feed.
 *
 * On the server the database is the source of truth (the revocations table); an entry lives only as
 * long as an access token could (lifetime plus leeway), which bounds the size of the maps.
 */
export class RevocationList {
  private readonly sessions = new Map<string, number>();
  private readonly tokens = new Map<string, number>();
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
    switch (revocation.kind) {
      case 'session':
        this.sessions.set(revocation.sessionId, Math.max(revocation.expiresAt, this.sessions.get(revocation.sessionId) ?? 0));
        break;
      case 'token':
        this.tokens.set(revocation.tokenId, Math.max(revocation.expiresAt, this.tokens.get(revocation.tokenId) ?? 0));
        break;
      case 'user':
        this.cutoffs.apply(revocation.userId, revocation.issuedBefore, revocation.expiresAt);
    }
    this.sweepIfDue();
  }

  /**
   * True when an access token must be refused: its session (`sid`) or the token itself (`jti`) was
   * revoked, or its user's (`sub`) tokens minted before its mint time (epoch ms, `mintTimeOf`) were.
   */
  isRevoked(sessionId: string, userId: number, mintedAt: number, tokenId: string): boolean {
    return this.holds(this.sessions, sessionId) || this.holds(this.tokens, tokenId) || this.cutoffs.refuses(userId, mintedAt);
  }

  /** True when the session was ended (its refresh tokens are dead too: introspection asks). */
  isSessionRevoked(sessionId: string): boolean {
    return this.holds(this.sessions, sessionId);
  }

  /** A live entry of `map`. The clock is read only when an entry is found: this runs on every access-token check. */
  private holds(map: Map<string, number>, id: string): boolean {
    const until = map.get(id);
    return until !== undefined && until > this.now();
  }

  get size(): number {
    return this.sessions.size + this.tokens.size + this.cutoffs.size;
  }

  /** Drops entries no live token can need; runs at most once per lifetime/10. */
  private sweepIfDue(): void {
    const now = this.now();
    if (now < this.nextSweepAt) return;
    this.nextSweepAt = now + Math.max(1000, this.accessTokenLifetimeMs / 10);
    for (const map of [this.sessions, this.tokens]) for (const [id, until] of map) if (until <= now) map.delete(id);
    this.cutoffs.sweep(now);
  }
}
