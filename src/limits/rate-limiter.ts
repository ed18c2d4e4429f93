import { GatepassError } from '../errors.js';
import type { CounterStore } from './counter-store.js';

/** A fixed-window request budget per client and route. */
export class RateLimiter {
  constructor(
    private readonly store: CounterStore,
    /** Requests allowed per window; 0 disables the limit. */
    private readonly limit: number,
    private readonly onLimited: (bucket: string) => void = () => undefined,
    private readonly windowMs: number = 60_000,
  ) {}

  /** Counts one request of `client` on `bucket`; throws 429 `rate_limited` once the budget is spent. */
  async consume(bucket: string, client: string): Promise<void> {
    const retryAfterMs = await this.take(bucket, client);
    if (retryAfterMs === undefined) return;
    const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
    throw new GatepassError('rate_limited', `Too many requests; try again in ${seconds} seconds`, seconds);
  }

  /** Counts one request of `client` on `bucket`; false once the budget is spent (for work that is skipped, not refused). */
  async allows(bucket: string, client: string): Promise<boolean> {
    return (await this.take(bucket, client)) === undefined;
  }

  /** Counts one request; undefined while within budget, else the milliseconds until the window ends. */
  private async take(bucket: string, client: string): Promise<number | undefined> {
    if (this.limit === 0) return undefined;
    const { count, remainingMs } = await this.store.increment(`rate:${bucket}:${client}`, this.windowMs);
    if (count <= this.limit) return undefined;
    this.onLimited(bucket);
    return remainingMs;
  }
}
