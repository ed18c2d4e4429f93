import { uuidv7Time } from './uuid7.js';

/**
 * When an access token was minted (epoch ms): the millisecond of its UUIDv7 jti (tokens/uuid7.ts),
 * finer than `iat`'s seconds, or `iat` for a token whose jti is not a UUIDv7.
 */
export function mintTimeOf(claims: { jti: string; iat: number }): number {
  return uuidv7Time(claims.jti) ?? claims.iat * 1000;
}

/**
 * The role-change cutoff, the subtlest rule of revocation, in one place: it dates the access tokens
 * it will later judge. A role change refuses every access token of the user minted until then (they
 * carry the old role), the whole millisecond of the change included, since a token's date is only
 * known to the millisecond. So a token minted later in that same millisecond, with the new role, is
 * dated ahead to the cutoff (`mintTime`) rather than mistaken for one minted before it.
 *
 * A cutoff lives as long as an access token could (`until`), which bounds the map.
 */
export class RoleChangeCutoffs {
  /** userId → tokens minted before `issuedBefore` (epoch ms) are refused, until `until` (epoch ms) */
  private readonly users = new Map<number, { issuedBefore: number; until: number }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Records a cutoff. They may arrive in any order (database reload, pub/sub): the latest wins. */
  apply(userId: number, issuedBefore: number, until: number): void {
    const known = this.users.get(userId);
    this.users.set(userId, { issuedBefore: Math.max(issuedBefore, known?.issuedBefore ?? 0), until: Math.max(until, known?.until ?? 0) });
  }

  /** The cutoff of a role change made now: every token minted until now, this millisecond included, and those dated ahead to an earlier cutoff. */
  next(userId: number): number {
    return this.mintTime(userId) + 1;
  }

  /** The time (epoch ms) a new access token of the user is dated with: now, or the user's cutoff while that is still ahead. */
  mintTime(userId: number): number {
    return Math.max(this.now(), this.live(userId));
  }

  /** True when a token of the user minted at `mintedAt` (epoch ms, see `mintTimeOf`) must be refused. */
  refuses(userId: number, mintedAt: number): boolean {
    // The clock is read only for a user who has a cutoff: this runs on every access-token check.
    const user = this.users.get(userId);
    return user !== undefined && mintedAt < user.issuedBefore && user.until > this.now();
  }

  get size(): number {
    return this.users.size;
  }

  /** Drops the cutoffs no live token can need. */
  sweep(now: number): void {
    for (const [userId, { until }] of this.users) if (until <= now) this.users.delete(userId);
  }

  /** The user's live cutoff, or 0 when there is none. */
  private live(userId: number): number {
    const user = this.users.get(userId);
    return user !== undefined && user.until > this.now() ? user.issuedBefore : 0;
  }
}
