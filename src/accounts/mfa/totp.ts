import { Secret, TOTP } from 'otpauth';

/**
 * TOTP (RFC 6238) as authenticator apps compute it: HMAC-SHA-1, 6 digits, 30-second steps. The
 * arithmetic is otpauth's; this module fixes the parameters, so that enrolment and every check agree.
 */
export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;
/** A code of the step before or after the current one is accepted too: phone clocks drift, people type slowly. */
export const TOTP_WINDOW = 1;
/** RFC 4226 §4 asks for at least 128 bits and recommends 160: the length of an HMAC-SHA-1 key. */
const SECRET_BYTES = 20;

/** A new shared secret, base32 (RFC 4648, no padding) as authenticator apps take it. */
export function newTotpSecret(): string {
  // otpauth draws it from the platform's CSPRNG (crypto.getRandomValues).
  return new Secret({ size: SECRET_BYTES }).base32;
}

function totpOf(secretBase32: string, options: { issuer?: string; label?: string; digits?: number } = {}): TOTP {
  return new TOTP({
    issuer: options.issuer ?? '',
    label: options.label ?? '',
    secret: Secret.fromBase32(secretBase32),
    algorithm: 'SHA1',
    digits: options.digits ?? TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
  });
}

/** The `otpauth://totp/…` URI that authenticator apps read from the QR code. */
export function totpUri(secretBase32: string, issuer: string, accountName: string): string {
  return totpOf(secretBase32, { issuer, label: accountName }).toString();
}

/** The time step (RFC 6238 T) of a moment in epoch milliseconds. */
export function totpStep(timestampMs: number): number {
  return Math.floor(timestampMs / 1000 / TOTP_PERIOD_SECONDS);
}

/** The code of a moment; `digits` other than 6 only for the RFC's test vectors (8 digits). */
export function totpCode(secretBase32: string, timestampMs: number, digits = TOTP_DIGITS): string {
  return totpOf(secretBase32, { digits }).generate({ timestamp: timestampMs });
}

/**
 * The time step whose code `code` is, within the window around `timestampMs`, or null. The caller
 * still has to refuse a step that was used before (replay): that needs the store.
 */
export function matchTotpStep(secretBase32: string, code: string, timestampMs: number, digits = TOTP_DIGITS): number | null {
  if (!new RegExp(`^\\d{${digits}}$`).test(code)) return null;
  const delta = totpOf(secretBase32, { digits }).validate({ token: code, timestamp: timestampMs, window: TOTP_WINDOW });
  return delta === null ? null : totpStep(timestampMs) + delta;
}
