import { createHash, randomInt } from 'node:crypto';

/** Codes in a set: enough for a lost phone and a few more sign-ins until a new set is made. */
export const RECOVERY_CODES_PER_SET = 10;
/**
 * Crockford's base32: no I, L, O or U, so that a code copied from paper is read back right.
 * 12 characters: 60 bits, as the codes are stored under a fast hash.
 */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const CODE_LENGTH = 12;
const WELL_FORMED = new RegExp(`^[${ALPHABET}]{${CODE_LENGTH}}$`);

/** A new set of codes, as shown to the user (`xxxx-xxxx-xxxx`). */
export function newRecoveryCodes(): string[] {
  return Array.from({ length: RECOVERY_CODES_PER_SET }, () => {
    const chars = Array.from({ length: CODE_LENGTH }, () => ALPHABET[randomInt(ALPHABET.length)] ?? '').join('');
    return chars.match(/.{4}/g)?.join('-') ?? chars;
  });
}

/**
 * The code as stored, whatever its spelling: case, dashes and spaces do not matter, and the letters
 * Crockford's alphabet leaves out are read as the digits they look like. Undefined when it cannot be
 * a recovery code at all.
 */
export function normalizeRecoveryCode(input: string): string | undefined {
  const code = input.toLowerCase().replace(/[\s-]/g, '').replace(/[il]/g, '1').replace(/o/g, '0');
  return WELL_FORMED.test(code) ? code : undefined;
}

/**
 * SHA-256 of the normalised code, salted with the user's id: the codes are random and long enough
 * for a fast hash, and the salt keeps one table from serving every account at once.
 */
export function recoveryCodeHash(userId: number, normalized: string): string {
  return createHash('sha256').update(`${userId}:${normalized}`).digest('hex');
}
