import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { HmacAlgorithm } from '../config/settings.js';
import { TokenError } from './errors.js';

/** Tokens longer than this are refused before any parsing or hashing (RFC 8725 §3.1: bound the work). */
export const MAX_TOKEN_LENGTH = 8192;

const DIGEST: Record<HmacAlgorithm, string> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** Header parameters that would let the token choose its own key (RFC 8725 §3.10); we never honour them. */
const KEY_SELECTING_HEADERS = ['jwk', 'jku', 'x5u', 'x5c', 'x5t', 'x5t#S256'];

export interface HmacKey {
  algorithm: HmacAlgorithm;
  key: KeyObject;
  /** The encoded header we emit; a token carrying exactly this header skips header parsing. */
  encodedHeader: string;
}

export function createHmacKey(algorithm: HmacAlgorithm, secret: string): HmacKey {
  return {
    algorithm,
    key: createSecretKey(Buffer.from(secret, 'utf8')),
    encodedHeader: Buffer.from(JSON.stringify({ alg: algorithm, typ: 'JWT' })).toString('base64url'),
  };
}

function signature(key: HmacKey, signingInput: string): Buffer {
  return createHmac(DIGEST[key.algorithm], key.key).update(signingInput).digest();
}

/** Produces a JWS compact serialisation of `payload` with the key's algorithm. */
export function signJws(payload: object, key: HmacKey): string {
  const signingInput = `${key.encodedHeader}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return `${signingInput}.${signature(key, signingInput).toString('base64url')}`;
}

/**
 * Checks the structure, header and signature of a compact JWS and returns its payload object.
 * Claims are not looked at here; see token-service.ts.
 */
export function verifyJws(token: string, key: HmacKey): Record<string, unknown> {
  if (token.length > MAX_TOKEN_LENGTH) throw new TokenError('invalid_token', 'token too large');
  const firstDot = token.indexOf('.');
  const secondDot = token.indexOf('.', firstDot + 1);
  if (firstDot <= 0 || secondDot <= firstDot + 1 || token.indexOf('.', secondDot + 1) !== -1) {
    throw new TokenError('invalid_token', 'not a compact JWS');
  }
  const encodedHeader = token.slice(0, firstDot);
  const encodedPayload = token.slice(firstDot + 1, secondDot);
  const encodedSignature = token.slice(secondDot + 1);
  if (encodedHeader !== key.encodedHeader) checkHeader(encodedHeader, key.algorithm);
  if (!BASE64URL.test(encodedPayload) || !BASE64URL.test(encodedSignature)) {
    throw new TokenError('invalid_token', 'not base64url');
  }

  // Compare the exact base64url text: a non-canonical encoding of the right bytes is refused too.
  const expected = Buffer.from(signature(key, token.slice(0, secondDot)).toString('base64url'));
  const presented = Buffer.from(encodedSignature);
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected)) {
    throw new TokenError('invalid_token', 'bad signature');
  }
  const payload = parseJsonObject(encodedPayload);
  if (payload === undefined) throw new TokenError('invalid_token', 'payload is not a JSON object');
  return payload;
}

function checkHeader(encodedHeader: string, algorithm: HmacAlgorithm): void {
  if (!BASE64URL.test(encodedHeader)) throw new TokenError('invalid_token', 'header is not base64url');
  const header = parseJsonObject(encodedHeader);
  if (header === undefined) throw new TokenError('invalid_token', 'header is not a JSON object');
  // Only the configured algorithm, spelled exactly: never "none", never a family the key was not made for.
  if (header.alg !== algorithm) throw new TokenError('invalid_token', `algorithm ${String(header.alg)} not allowed`);
  if (header.typ !== undefined && header.typ !== 'JWT') throw new TokenError('invalid_token', 'typ is not JWT');
  // We understand no extension header, so any "crit" must be refused (RFC 7515 §4.1.11).
  if (header.crit !== undefined) throw new TokenError('invalid_token', 'unsupported crit header');
  if (header.b64 !== undefined) throw new TokenError('invalid_token', 'unencoded payloads are not accepted');
  for (const name of KEY_SELECTING_HEADERS) {
    if (name in header) throw new TokenError('invalid_token', `${name} header not accepted`);
  }
}

function parseJsonObject(encoded: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
