import type { RedisConnection } from '../sessions/redis-connection.js';
import { GatepassError } from '../errors.js';

/**
 * Expiring counters and flags, the shared state of rate limits and lockouts. In-process for one
 * instance; in Redis when several instances must agree.
 */
export interface CounterStore {
  /** Adds one to `key` and returns the new count. The key expires `ttlMs` after it was created, or after this call when `slide` is set. */
  increment(key: string, ttlMs: number, slide?: boolean): Promise<{ count: number; remainingMs: number }>;
  /** Sets `key` (to any value) for `ttlMs`. */
  set(key: string, ttlMs: number): Promise<void>;
  /** Milliseconds until `key` expires; 0 when it does not exist. */
  remaining(key: string): Promise<number>;
  delete(...keys: string[]): Promise<void>;
}

export class MemoryCounterStore implements CounterStore {
  private readonly entries = new Map<string, { count: number; expiresAt: number }>();
  private nextSweepAt = 0;

  constructor(private readonly now: () => number = Date.now) {}

  async increment(key: string, ttlMs: number, slide = false): Promise<{ count: number; remainingMs: number }> {
    const now = this.now();
    this.sweepIfDue(now);
    const live = this.live(key, now);
    const entry = live ?? { count: 0, expiresAt: now + ttlMs };
    entry.count += 1;
    if (slide) entry.expiresAt = now + ttlMs;
    this.entries.set(key, entry);
    return { count: entry.count, remainingMs: entry.expiresAt - now };
  }

  async set(key: string, ttlMs: number): Promise<void> {
    this.entries.set(key, { count: 1, expiresAt: this.now() + ttlMs });
  }

  async remaining(key: string): Promise<number> {
    const now = this.now();
    const entry = this.live(key, now);
    return entry === undefined ? 0 : entry.expiresAt - now;
  }

  async delete(...keys: string[]): Promise<void> {
    for (const key of keys) this.entries.delete(key);
  }

  private live(key: string, now: number): { count: number; expiresAt: number } | undefined {
    const entry = this.entries.get(key);
    if (entry !== undefined && entry.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  /** Bounds memory: expired keys of clients that never came back are dropped once a minute. */
  private sweepIfDue(now: number): void {
    if (now < this.nextSweepAt) return;
    this.nextSweepAt = now + 60_000;
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }
}

/** INCR and (re)arm the expiry in one atomic step, so concurrent instances never lose a count. */
const INCREMENT_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 or ARGV[2] == '1' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}`;

/**
 * Counters in Redis, under the deployment's prefix. When Redis does not answer, callers get a 503:
 * a limit that cannot be checked is not skipped (fail closed).
 */
export class RedisCounterStore implements CounterStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  async increment(key: string, ttlMs: number, slide = false): Promise<{ count: number; remainingMs: number }> {
    const [count, remainingMs] = (await this.run(() => this.redis.eval(INCREMENT_SCRIPT, 1, this.key(key), String(ttlMs), slide ? '1' : '0'))) as [number, number];
    return { count, remainingMs: Math.max(remainingMs, 0) };
  }

  async set(key: string, ttlMs: number): Promise<void> {
    await this.run(() => this.redis.set(this.key(key), '1', 'PX', ttlMs));
  }

  async remaining(key: string): Promise<number> {
    return Math.max(await this.run(() => this.redis.pttl(this.key(key))), 0);
  }

  async delete(...keys: string[]): Promise<void> {
    if (keys.length > 0) await this.run(() => this.redis.del(...keys.map((key) => this.key(key))));
  }

  private key(key: string): string {
    return `${this.prefix}:${key}`;
  }

  private async run<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch {
      throw new GatepassError('service_unavailable', 'Service temporarily unavailable; try again shortly');
    }
  }
}
