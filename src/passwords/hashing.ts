import { randomBytes } from 'node:crypto';
import { Algorithm, hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';
import bcrypt from 'bcryptjs';

/**
 * OWASP Password Storage Cheat Sheet, argon2id option 2: 19 MiB, 2 iterations, 1 lane.
 * @node-rs/argon2 runs hash and verify on libuv's thread pool, so logins never block the event loop;
 * a concurrency limit keeps them from starving it of CPU too (PASSWORD_HASH_CONCURRENCY).
 */
export const ARGON2_OPTIONS = { algorithm: Algorithm.Argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;
const CURRENT_PARAMETERS = `$argon2id$v=19$m=${ARGON2_OPTIONS.memoryCost},t=${ARGON2_OPTIONS.timeCost},p=${ARGON2_OPTIONS.parallelism}$`;
/** bcrypt as written by passlib (the seeds), PHP and most other libraries. */
const BCRYPT_PREFIX = /^\$2[aby]\$\d{2}\$/;

export interface VerifyResult {
  valid: boolean;
  /** The stored hash is bcrypt or uses older argon2 parameters: store a fresh hash now that we know the password. */
  needsRehash: boolean;
}

/**
 * NIST 800-63B §5.1.1.2: normalise with NFKC so that the same password typed on different
 * keyboards or platforms hashes the same. Never truncates.
 */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

/** Runs at most `limit` tasks at once; the others wait in order. */
class ConcurrencyLimit {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running += 1;
    try {
      return await task();
    } finally {
      this.running -= 1;
      this.waiting.shift()?.();
    }
  }
}

export class PasswordHasher {
  /** A hash of a random password, verified against when the email is unknown so both cases cost the same. */
  private dummyHash: Promise<string> | undefined;
  private readonly limit: ConcurrencyLimit;

  /** `concurrency`: argon2 computations at once; the rest queue (see Settings.passwordHashConcurrency). */
  constructor(concurrency: number) {
    this.limit = new ConcurrencyLimit(concurrency);
  }

  hash(password: string): Promise<string> {
    return this.limit.run(() => argon2Hash(normalizePassword(password), ARGON2_OPTIONS));
  }

  async verify(password: string, storedHash: string): Promise<VerifyResult> {
    if (BCRYPT_PREFIX.test(storedHash)) {
      // Legacy hashes were made from the password as typed, before gatepass normalised anything.
      // bcryptjs's async compare yields to the event loop between rounds; it runs once per imported
      // account, since the hash is replaced by argon2id at that login.
      const valid = await bcrypt.compare(password, storedHash).catch(() => false);
      return { valid, needsRehash: valid };
    }
    if (storedHash.startsWith('$argon2')) {
      const valid = await this.limit.run(() => argon2Verify(storedHash, normalizePassword(password))).catch(() => false);
      return { valid, needsRehash: valid && !storedHash.startsWith(CURRENT_PARAMETERS) };
    }
    return { valid: false, needsRehash: false };
  }

  /** Spends the time of a real verification and always fails. */
  async verifyDummy(password: string): Promise<false> {
    this.dummyHash ??= this.hash(randomBytes(24).toString('base64url'));
    const dummyHash = await this.dummyHash;
    await this.limit.run(() => argon2Verify(dummyHash, normalizePassword(password))).catch(() => false);
    return false;
  }

  /** Computes the dummy hash ahead of the first unknown-email login, so that one is not slower. */
  async warmUp(): Promise<void> {
    this.dummyHash ??= this.hash(randomBytes(24).toString('base64url'));
    await this.dummyHash;
  }
}
