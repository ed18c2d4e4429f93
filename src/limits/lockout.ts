import { GatepassError } from '../errors.js';
import { emailKey } from '../store/email-key.js';
import type { AttemptLock, CounterStore } from './counter-store.js';

/** The lockout's whole policy (config/settings.ts reads it from the ACCOUNT_LOCKOUT_* settings). */
export interface LockoutPolicy {
  /** Consecutive failures that lock the account; 0 disables lockout. */
  threshold: number;
  /** The first lock; each further failure doubles it. */
  lockSeconds: number;
  /** No lock lasts longer than this. */
  maxLockSeconds: number;
  /** Failures are forgotten this long after the last one. */
  memorySeconds: number;
}

/**
 * Per-account lockout after consecutive failed password checks (OWASP ASVS V2.2.1), keyed by the
 * email's identity key (NFKC and case folding, as accounts are told apart), so that look-alike
 * spellings of one address share one budget, and unknown emails lock exactly like real ones.
 *
 * An attempt is counted before its password is checked, and the attempt that reaches the threshold
 * sets the lock before its check runs: a burst of concurrent guesses, from any number of addresses
 * and instances, gets at most `threshold` passwords checked, and one more per expired lock. Counting
 * after the (slow) check let every request of a burst pass the "locked?" test first.
 */
export class AccountLockout {
  private readonly lock: AttemptLock;
  private readonly memoryMs: number;

  constructor(
    private readonly store: CounterStore,
    private readonly policy: LockoutPolicy,
    /** Keeps another budget of the same accounts apart (the second factor's), under the same policy. */
    private readonly namespace = 'lockout',
  ) {
    this.lock = { from: policy.threshold, baseMs: policy.lockSeconds * 1000, maxMs: policy.maxLockSeconds * 1000 };
    this.memoryMs = policy.memorySeconds * 1000;
  }

  /**
   * Counts an attempt to check the password of `email`; throws 429 `account_locked` while the account
   * is locked, whatever the password. Call it before every password check; `recordSuccess` after a
   * correct one.
   */
  async beginAttempt(email: string): Promise<void> {
    if (this.policy.threshold === 0) return;
    const outcome = await this.store.countAttempt(
      failuresKey(this.namespace, email),
      lockKey(this.namespace, email),
      this.memoryMs,
      this.lock,
    );
    if (outcome.locked) throw lockedError(outcome.remainingMs);
  }

  async recordSuccess(email: string): Promise<void> {
    if (this.policy.threshold === 0) return;
    await this.store.delete(failuresKey(this.namespace, email), lockKey(this.namespace, email));
  }
}

// One hash tag ({…}) for both keys, so that on a Redis Cluster they share a slot, as one script needs.
const failuresKey = (namespace: string, email: string) => `${namespace}:{${emailKey(email)}}:failures`;
const lockKey = (namespace: string, email: string) => `${namespace}:{${emailKey(email)}}:lock`;

function lockedError(remainingMs: number): GatepassError {
  const seconds = Math.max(1, Math.ceil(remainingMs / 1000));
  return new GatepassError(
    'account_locked',
    `Account temporarily locked after repeated failed logins; try again in ${seconds} seconds`,
    seconds,
  );
}
