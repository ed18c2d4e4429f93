import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const VERSION = 'v1';
const IV_BYTES = 12;
// Stated on decryption too: Node would otherwise accept a tag cut down to 4 bytes.
const TAG_BYTES = 16;
// Fixed labels: they separate this key from anything else ever derived from the same server secret.
const HKDF_SALT = 'gatepass';
const HKDF_INFO = 'gatepass mfa totp secret v1';

/**
 * Encrypts TOTP secrets at rest (AES-256-GCM), under a key derived by HKDF-SHA-256 from a server
 * secret: the server must read a secret back to check codes, so hashing is no option, and a copy of
 * the database alone must not be enough to compute a user's codes. Each value is bound to its user
 * (additional data), so that a row copied onto another account does not decrypt.
 */
export class SecretBox {
  private readonly key: Buffer;

  constructor(serverSecret: string) {
    this.key = Buffer.from(hkdfSync('sha256', serverSecret, HKDF_SALT, HKDF_INFO, 32));
  }

  seal(plaintext: string, userId: number): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(aadOf(userId));
    const sealed = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [VERSION, iv.toString('base64url'), sealed.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
  }

  /** The plaintext, or undefined when the value was sealed under another key (MFA_ENCRYPTION_KEY changed) or altered. */
  open(value: string, userId: number): string | undefined {
    const [version, iv, sealed, tag] = value.split('.');
    if (version !== VERSION || iv === undefined || sealed === undefined || tag === undefined) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
      decipher.setAAD(aadOf(userId));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(sealed, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }
}

const aadOf = (userId: number) => Buffer.from(`mfa_totp:${userId}`);
