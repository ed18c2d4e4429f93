import type { RedisConnection } from '../store/redis-connection.js';
import { GatepassError } from '../errors.js';

/**
 * Expiring counters and flags, the shared state of rate limits and lockouts. In-process for one
 * instance; in Redis when several instances must agree.
 */
export interface CounterStore {
  /** Adds one to `key` and returns the new count. The key expires `ttlMs` after it was created (a fixed window). */
  increment(key: string, ttlMs: number): Promise<{ count: number; remainingMs: number }>;
  delete(...keys: string[]): Promise<void>;
  /**
   * One attempt against a lock, atomically: while `lockKey` lives, answers how long it still does and
   * counts nothing. Otherwise adds one to `countKey` (kept `countTtlMs` after its last change) and,
   * when the new count reaches `lock.from`, sets `lockKey` for `lockMs(count)` before answering, so
   * no concurrent attempt of any instance slips in between the count and the lock.
   */
  countAttempt(countKey: string, lockKey: string, countTtlMs: number, lock: AttemptLock): Promise<AttemptOutcome>;
}

/** The lock an attempt count sets: from the `from`-th count on, `baseMs` doubled for each count past it, at most `maxMs`. */
export interface AttemptLock {
  from: number;
  baseMs: number;
  maxMs: number;
}

export type AttemptOutcome = { locked: false; count: number } | { locked: true; remainingMs: number };

/** The lock set by the `count`-th attempt (the Redis script below computes the same). */
export function lockMs(lock: AttemptLock, count: number): number {
  return Math.min(lock.baseMs * 2 ** Math.min(count - lock.from, 20), lock.maxMs);
}

export class MemoryCounterStore implements CounterStore {
  private readonly entries = new Map<string, { count: number; expiresAt: number }>();
  private nextSweepAt = 0;

  constructor(private readonly now: () => number = Date.now) {}

  async increment(key: string, ttlMs: number): Promise<{ count: number; remainingMs: number }> {
    const now = this.now();
    this.sweepIfDue(now);
    const live = this.live(key, now);
    const entry = live ?? { count: 0, expiresAt: now + ttlMs };
    entry.count += 1;
    this.entries.set(key, entry);
    return { count: entry.count, remainingMs: entry.expiresAt - now };
  }

  async delete(...keys: string[]): Promise<void> {
    for (const key of keys) this.entries.delete(key);
  }

  async countAttempt(countKey: string, lockKey: string, countTtlMs: number, lock: AttemptLock): Promise<AttemptOutcome> {
    // Synchronous from here to the end: no other attempt of this process runs in between.
    const now = this.now();
    const lockEntry = this.live(lockKey, now);
    if (lockEntry !== undefined) return { locked: true, remainingMs: lockEntry.expiresAt - now };
    const entry = this.live(countKey, now) ?? { count: 0, expiresAt: 0 };
    entry.count += 1;
    entry.expiresAt = now + countTtlMs;
    this.entries.set(countKey, entry);
    if (entry.count >= lock.from) this.entries.set(lockKey, { count: 1, expiresAt: now + lockMs(lock, entry.count) });
    return { locked: false, count: entry.count };
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
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}`;

/** countAttempt in one script: KEYS = count, lock; ARGV = count TTL, lock from, base, max (ms). */
const COUNT_ATTEMPT_SCRIPT = `
local locked = redis.call('PTTL', KEYS[2])
if locked > 0 then return {1, locked} end
local count = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local from = tonumber(ARGV[2])
if count >= from then
  local ms = math.min(tonumber(ARGV[3]) * 2 ^ math.min(count - from, 20), tonumber(ARGV[4]))
  redis.call('SET', KEYS[2], '1', 'PX', math.floor(ms))
end
return {0, count}`;

/**
 * Counters in Redis, under the deployment's prefix. When Redis does not answer, callers get a 503:
 * a limit that cannot be checked is not skipped (fail closed).
 */
export class RedisCounterStore implements CounterStore {
  constructor(
    private readonly redis: RedisConnection,
    private readonly prefix: string,
  ) {}

  async increment(key: string, ttlMs: number): Promise<{ count: number; remainingMs: number }> {
    const [count, remainingMs] = (await this.run(() => this.redis.eval(INCREMENT_SCRIPT, 1, this.key(key), String(ttlMs)))) as [
      number,
      number,
    ];
    return { count, remainingMs: Math.max(remainingMs, 0) };
  }

  async delete(...keys: string[]): Promise<void> {
    if (keys.length > 0) await this.run(() => this.redis.del(...keys.map((key) => this.key(key))));
  }

  async countAttempt(countKey: string, lockKey: string, countTtlMs: number, lock: AttemptLock): Promise<AttemptOutcome> {
    const [locked, value] = (await this.run(() =>
      this.redis.eval(
        COUNT_ATTEMPT_SCRIPT,
        2,
        this.key(countKey),
        this.key(lockKey),
        String(countTtlMs),
        String(lock.from),
        String(lock.baseMs),
        String(lock.maxMs),
      ),
    )) as [number, number];
    return locked === 1 ? { locked: true, remainingMs: value } : { locked: false, count: value };
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
