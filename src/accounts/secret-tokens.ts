import { createHash, randomBytes } from 'node:crypto';

/**
 * The single-use secrets gatepass mails or hands out (reset and verification tokens, mfa_tokens,
 * WebAuthn user handles): 32 random bytes, URL-safe. They are stored only as their SHA-256: a
 * 256-bit random value cannot be searched for, so a fast hash suffices and a database leak reveals
 * no usable token.
 */
export function newSecretToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The SHA-256 (hex) a secret token is stored and looked up by. */
export function digestOf(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}
