import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.js';
import { RevocationRepository } from '../store/revocations.js';
import type { Revocation } from '../tokens/revocation.js';
import type { RevocationList } from '../tokens/revocation-list.js';
import type { Logger } from '../logging.js';
import type { RevocationBus } from './revocation-bus.js';
import { RevocationFeed } from './revocation-feed.js';

/**
 * Every revocation goes three places, in this order: the database (inside the caller's transaction,
 * the source of truth), this instance's RevocationList, and the bus to the other instances. The
 * feed that other services follow reads the database, and is woken whenever the list learns of one.
 */
export class Revocations {
  private readonly repository: RevocationRepository;
  readonly feed: RevocationFeed;

  constructor(
    db: Kysely<Database>,
    private readonly list: RevocationList,
    private readonly bus: RevocationBus,
    log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.repository = new RevocationRepository(db);
    this.feed = new RevocationFeed(this.repository, log, now);
  }

  /** Starts listening to other instances; the bus has the live revocations loaded (onResync) before it resolves. */
  async start(): Promise<void> {
    await this.bus.start({
      onRevocation: (revocation) => {
        this.list.apply(revocation);
        this.feed.notify();
      },
      onResync: () => this.reload(),
    });
  }

  /** False while revocations made elsewhere might be unknown here: checks must then fail closed. */
  get available(): boolean {
    return this.bus.healthy;
  }

  get busStatus(): string {
    return this.bus.status;
  }

  /** `mintedAt` in epoch milliseconds (`mintTimeOf`). */
  isRevoked(sessionId: string, userId: number, mintedAt: number, tokenId: string): boolean {
    return this.list.isRevoked(sessionId, userId, mintedAt, tokenId);
  }

  session(sessionId: string, userId: number): Revocation {
    return { kind: 'session', sessionId, userId, expiresAt: this.now() + this.list.accessTokenLifetimeMs };
  }

  isSessionRevoked(sessionId: string): boolean {
    return this.list.isSessionRevoked(sessionId);
  }

  /** One access token, by its jti (RFC 7009 revocation). */
  token(tokenId: string, userId: number): Revocation {
    return { kind: 'token', tokenId, userId, expiresAt: this.now() + this.list.accessTokenLifetimeMs };
  }

  /** Every access token of the user minted until now (a role change: they carry the old role); see role-change-cutoff.ts. */
  userTokens(userId: number): Revocation {
    return { kind: 'user', userId, issuedBefore: this.list.cutoffs.next(userId), expiresAt: this.now() + this.list.accessTokenLifetimeMs };
  }

  /** The time (epoch ms) a new access token of the user is dated with (role-change-cutoff.ts). */
  mintTime(userId: number): number {
    return this.list.cutoffs.mintTime(userId);
  }

  /** Stores revocations, in the caller's transaction when one is given. Call `announce` after commit. */
  async persist(revocations: Revocation[], executor?: Kysely<Database>): Promise<void> {
    const repository = executor === undefined ? this.repository : new RevocationRepository(executor);
    for (const revocation of revocations) await repository.insert(revocation, this.now());
  }

  /** Applies committed revocations here and tells the other instances. */
  async announce(revocations: Revocation[]): Promise<void> {
    for (const revocation of revocations) this.list.apply(revocation);
    if (revocations.length > 0) this.feed.notify();
    await this.bus.publish(revocations);
  }

  async close(): Promise<void> {
    await this.feed.close();
    await this.bus.close();
  }

  private async reload(): Promise<void> {
    const now = this.now();
    // Expired rows are deleted by the retention sweep (store/retention.ts).
    for (const revocation of await this.repository.active(now)) this.list.apply(revocation);
  }
}
