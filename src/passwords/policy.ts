import { dictionary } from '@zxcvbn-ts/language-common';
import { normalizePassword } from './hashing.js';

export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 128;

/** The common-password list of zxcvbn-ts (about 49,000 entries, from real breach corpora). */
let commonPasswords: Set<string> | undefined;

function isCommonPassword(password: string): boolean {
  commonPasswords ??= new Set(dictionary.passwords.filter((p) => p.length >= PASSWORD_MIN_LENGTH).map((p) => p.toLowerCase()));
  return commonPasswords.has(password.toLowerCase());
}

/**
 * Returns why a new password is refused, or undefined when it is acceptable.
 * Length is counted in code points after normalisation, as the user sees characters.
 */
export function passwordPolicyViolation(password: string): { message: string; type: string } | undefined {
  const normalized = normalizePassword(password);
  // Code points on purpose (as Python's len(), which the seeds' FastAPI limits count), not graphemes.
  // eslint-disable-next-line @typescript-eslint/no-misused-spread -- counting code points is the intent
  const length = [...normalized].length;
  if (length < PASSWORD_MIN_LENGTH) {
    return { message: `String should have at least ${PASSWORD_MIN_LENGTH} characters`, type: 'string_too_short' };
  }
  if (length > PASSWORD_MAX_LENGTH) {
    return { message: `String should have at most ${PASSWORD_MAX_LENGTH} characters`, type: 'string_too_long' };
  }
  if (isCommonPassword(normalized)) {
    return { message: 'Password is too common; choose a less predictable one', type: 'password_too_common' };
  }
  return undefined;
}
