import { GatepassError } from '../errors.js';
import type { CounterStore } from './counter-store.js';

export interface LockoutPolicy {
  /** Consecutive failures that lock the account; 0 disables lockout. */
  threshold: number;
  /** The first lock; each further failure doubles it. */
  lockSeconds: number;
  /** No lock lasts longer than this. */
  maxLockSeconds: number;
}

/** Failures are forgotten after a day without any. */
const FAILURE_MEMORY_MS = 24 * 3600 * 1000;

/**
 * Per-account lockout after consecutive failed logins (OWASP ASVS V2.2.1), keyed by the normalised
 * email, so unknown emails lock exactly like real ones and reveal nothing.
 */
export class AccountLockout {
  constructor(
    private readonly store: CounterStore,
    private readonly policy: LockoutPolicy,
  ) {}

  /** Throws 429 `account_locked` while the account is locked, whatever the password. */
  async assertNotLocked(email: string): Promise<void> {
    if (this.policy.threshold === 0) return;
    const remainingMs = await this.store.remaining(`lock:${email}`);
    if (remainingMs > 0) throw lockedError(remainingMs);
  }

  /** Counts a failure; the one that reaches the threshold locks, and each later one locks twice as long. */
  async recordFailure(email: string): Promise<void> {
    if (this.policy.threshold === 0) return;
    const { count } = await this.store.increment(`failures:${email}`, FAILURE_MEMORY_MS, true);
    if (count < this.policy.threshold) return;
    const seconds = Math.min(this.policy.lockSeconds * 2 ** Math.min(count - this.policy.threshold, 20), this.policy.maxLockSeconds);
    await this.store.set(`lock:${email}`, seconds * 1000);
  }

  async recordSuccess(email: string): Promise<void> {
    if (this.policy.threshold === 0) return;
    await this.store.delete(`failures:${email}`, `lock:${email}`);
  }
}

function lockedError(remainingMs: number): GatepassError {
  const seconds = Math.ceil(remainingMs / 1000);
  return new GatepassError('account_locked', `Account temporarily locked after repeated failed logins; try again in ${seconds} seconds`, seconds);
}
