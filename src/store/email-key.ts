/**
 * The identity of an email address: two addresses with the same key are one account. The key is the
 * trimmed address under Unicode NFKC and case folding, so that compatibility look-alikes (fullwidth
 * `ｃarol@…`, ligatures, `ſ`) and case variants (`ß`/`SS`, `ς`/`Σ`) all name the same account.
 *
 * JavaScript has no casefold(); `toUpperCase().toLowerCase()` (locale-independent) comes closest to
 * Unicode full case folding: it maps `ß` to `ss` and final `ς` to `σ`, which `toLowerCase()` alone
 * does not. It also folds dotless `ı` to `i`, which casefold keeps apart; one more look-alike merged
 * is the safe direction for an identity key. NFKC runs again after the case mapping because case
 * mapping can leave a string that is not normalised (the iteration of Unicode's NFKC_Casefold).
 */
export function emailKey(email: string): string {
  return email.trim().normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC');
}

/** The longest key an account may have (the email column's bound; NFKC can lengthen an address). */
export const MAX_EMAIL_KEY_LENGTH = 320;
