import { emailKey, MAX_EMAIL_KEY_LENGTH } from '../store/email-key.js';

/**
 * Emails are stored in one canonical form: trimmed, Unicode NFC, lower-case.
 * Lower-casing the local part deviates from RFC 5321 on paper, but no mainstream provider
 * distinguishes case, and treating Alice@ and alice@ as two accounts invites takeover confusion.
 *
 * Which account an email names is decided on a stricter key, NFKC and case folding
 * (store/email-key.ts): `ｃarol@example.com` is stored as typed here but names carol@example.com.
 */
export function normalizeEmail(email: string): string {
  return email.trim().normalize('NFC').toLowerCase();
}

const MAX_EMAIL_LENGTH = 254;
// A pragmatic address check (the shape browsers use for <input type=email>): local@label.label…
const EMAIL_SHAPE =
  /^[\p{L}\p{N}.!#$%&'*+/=?^_`{|}~-]+@[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?)+$/u;

/** True when the normalised form of `email` is an address we accept. */
export function isValidEmail(email: string): boolean {
  const normalized = normalizeEmail(email);
  if (normalized.length > MAX_EMAIL_LENGTH || !EMAIL_SHAPE.test(normalized) || emailKey(normalized).length > MAX_EMAIL_KEY_LENGTH)
    return false;
  const [local = ''] = normalized.split('@');
  return local.length <= 64 && !local.startsWith('.') && !local.endsWith('.') && !local.includes('..');
}
