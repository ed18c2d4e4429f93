import {
  constants,
  createHmac,
  createSecretKey,
  sign as cryptoSign,
  timingSafeEqual,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import type { Algorithm, AsymmetricAlgorithm, HmacAlgorithm } from './algorithms.js';
import { TokenError } from './errors.js';

/** Tokens longer than this are refused before any parsing or hashing (RFC 8725 §3.1: bound the work). */
export const MAX_TOKEN_LENGTH = 8192;

export { ALGORITHMS, ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, isAlgorithm, isHmacAlgorithm } from './algorithms.js';
export type { Algorithm, AsymmetricAlgorithm, HmacAlgorithm } from './algorithms.js';

const HMAC_DIGEST: Record<HmacAlgorithm, string> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };
/** The key type each asymmetric algorithm needs (RFC 7518 §3, RFC 8037): never another. */
const KEY_TYPE: Record<AsymmetricAlgorithm, string> = { RS256: 'rsa', PS256: 'rsa', ES256: 'ec', EdDSA: 'ed25519' };
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** Header parameters that would let the token choose its own key (RFC 8725 §3.10); we never honour them. */
const KEY_SELECTING_HEADERS = ['jwk', 'jku', 'x5u', 'x5c', 'x5t', 'x5t#S256'];

/** A key that can check signatures of one algorithm. */
export interface VerificationKey {
  readonly algorithm: Algorithm;
  readonly kid: string | undefined;
  /** The encoded header this key's tokens carry, for the fast path that skips header parsing. */
  readonly encodedHeader: string;
  /** `encodedSignature` is the third segment as sent; the comparison is constant-time for HMAC. */
  verify(signingInput: string, encodedSignature: string): boolean;
}

export interface SigningKey extends VerificationKey {
  sign(signingInput: string): Buffer;
}

/** Finds the key for a token's header: by exact encoded header first, then by `alg` and `kid`. */
export interface KeyResolver {
  byEncodedHeader(encodedHeader: string): VerificationKey | undefined;
  byHeader(algorithm: string, kid: string | undefined): VerificationKey | undefined;
}

function encodeHeader(algorithm: Algorithm, kid: string | undefined): string {
  return Buffer.from(JSON.stringify(kid === undefined ? { alg: algorithm, typ: 'JWT' } : { alg: algorithm, typ: 'JWT', kid })).toString(
    'base64url',
  );
}

export function createHmacKey(algorithm: HmacAlgorithm, secret: string): SigningKey {
  const key = createSecretKey(Buffer.from(secret, 'utf8'));
  const sign = (input: string) => createHmac(HMAC_DIGEST[algorithm], key).update(input).digest();
  return {
    algorithm,
    kid: undefined,
    encodedHeader: encodeHeader(algorithm, undefined),
    sign,
    // Compare the exact base64url text: a non-canonical encoding of the right bytes is refused too.
    verify: (input, encodedSignature) => {
      const expected = Buffer.from(sign(input).toString('base64url'));
      const presented = Buffer.from(encodedSignature);
      return presented.length === expected.length && timingSafeEqual(presented, expected);
    },
  };
}

/**
 * RSA moduli shorter than this are refused, wherever the key comes from (a PEM file of the key
 * store, a JWKS): RFC 7518 §3.3 requires 2048 bits, and 1024-bit RSA is within reach of a
 * well-funded attacker (NIST SP 800-131A disallows it).
 */
export const MIN_RSA_MODULUS_BITS = 2048;

function assertKeyFits(algorithm: AsymmetricAlgorithm, key: KeyObject): void {
  const fits =
    key.asymmetricKeyType === KEY_TYPE[algorithm] && (algorithm !== 'ES256' || key.asymmetricKeyDetails?.namedCurve === 'prime256v1');
  if (!fits) throw new Error(`a ${key.asymmetricKeyType ?? 'secret'} key cannot be used for ${algorithm}`);
  const bits = key.asymmetricKeyDetails?.modulusLength;
  if (KEY_TYPE[algorithm] === 'rsa' && (bits === undefined || bits < MIN_RSA_MODULUS_BITS)) {
    throw new Error(`a ${bits ?? 'unknown'}-bit RSA key is too short for ${algorithm}: at least ${MIN_RSA_MODULUS_BITS} bits are required`);
  }
}

function signatureOptions(algorithm: AsymmetricAlgorithm, key: KeyObject) {
  switch (algorithm) {
    case 'PS256':
      return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
    case 'ES256':
      // JWS carries r||s (RFC 7518 §3.4), not DER.
      return { key, dsaEncoding: 'ieee-p1363' as const };
    default:
      return { key };
  }
}

const DIGEST_OF: Record<AsymmetricAlgorithm, string | null> = { RS256: 'sha256', PS256: 'sha256', ES256: 'sha256', EdDSA: null };

export function createAsymmetricVerificationKey(algorithm: AsymmetricAlgorithm, publicKey: KeyObject, kid: string): VerificationKey {
  assertKeyFits(algorithm, publicKey);
  const options = signatureOptions(algorithm, publicKey);
  return {
    algorithm,
    kid,
    encodedHeader: encodeHeader(algorithm, kid),
    verify: (input, encodedSignature) => {
      const signature = Buffer.from(encodedSignature, 'base64url');
      // Refuse non-canonical encodings, so one signature has exactly one spelling.
      if (signature.length === 0 || signature.toString('base64url') !== encodedSignature) return false;
      try {
        return cryptoVerify(DIGEST_OF[algorithm], Buffer.from(input), options, signature);
      } catch {
        return false;
      }
    },
  };
}

export function createAsymmetricSigningKey(
  algorithm: AsymmetricAlgorithm,
  privateKey: KeyObject,
  publicKey: KeyObject,
  kid: string,
): SigningKey {
  assertKeyFits(algorithm, privateKey);
  const options = signatureOptions(algorithm, privateKey);
  return {
    ...createAsymmetricVerificationKey(algorithm, publicKey, kid),
    sign: (input) => cryptoSign(DIGEST_OF[algorithm], Buffer.from(input), options),
  };
}

/** A resolver over a fixed list of keys. */
export function keyResolver(keys: readonly VerificationKey[]): KeyResolver {
  const byEncoded = new Map(keys.map((key) => [key.encodedHeader, key]));
  return {
    byEncodedHeader: (encoded) => byEncoded.get(encoded),
    byHeader: (algorithm, kid) => keys.find((key) => key.algorithm === algorithm && (key.kid === undefined || key.kid === kid)),
  };
}

/** Produces a JWS compact serialisation of `payload` with the key. */
export function signJws(payload: object, key: SigningKey): string {
  const signingInput = `${key.encodedHeader}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return `${signingInput}.${key.sign(signingInput).toString('base64url')}`;
}

/**
 * Checks the structure, header and signature of a compact JWS and returns its payload object.
 * Claims are not looked at here; see token-service.ts.
 */
export function verifyJws(token: string, keys: KeyResolver | VerificationKey): Record<string, unknown> {
  if (token.length > MAX_TOKEN_LENGTH) throw new TokenError('invalid_token', 'token too large');
  const firstDot = token.indexOf('.');
  const secondDot = token.indexOf('.', firstDot + 1);
  if (firstDot <= 0 || secondDot <= firstDot + 1 || token.indexOf('.', secondDot + 1) !== -1) {
    throw new TokenError('invalid_token', 'not a compact JWS');
  }
  const encodedHeader = token.slice(0, firstDot);
  const encodedPayload = token.slice(firstDot + 1, secondDot);
  const encodedSignature = token.slice(secondDot + 1);
  const resolver = 'byHeader' in keys ? keys : keyResolver([keys]);
  const key = resolver.byEncodedHeader(encodedHeader) ?? keyForHeader(encodedHeader, resolver);
  if (!BASE64URL.test(encodedPayload) || !BASE64URL.test(encodedSignature)) throw new TokenError('invalid_token', 'not base64url');
  if (!key.verify(token.slice(0, secondDot), encodedSignature)) throw new TokenError('invalid_token', 'bad signature');
  const payload = decodeJsonSegment(encodedPayload);
  if (payload === undefined) throw new TokenError('invalid_token', 'payload is not a JSON object');
  return payload;
}

function keyForHeader(encodedHeader: string, resolver: KeyResolver): VerificationKey {
  if (!BASE64URL.test(encodedHeader)) throw new TokenError('invalid_token', 'header is not base64url');
  const header = decodeJsonSegment(encodedHeader);
  if (header === undefined) throw new TokenError('invalid_token', 'header is not a JSON object');
  if (header.typ !== undefined && header.typ !== 'JWT') throw new TokenError('invalid_token', 'typ is not JWT');
  // We understand no extension header, so any "crit" must be refused (RFC 7515 §4.1.11).
  if (header.crit !== undefined) throw new TokenError('invalid_token', 'unsupported crit header');
  if (header.b64 !== undefined) throw new TokenError('invalid_token', 'unencoded payloads are not accepted');
  for (const name of KEY_SELECTING_HEADERS) {
    if (name in header) throw new TokenError('invalid_token', `${name} header not accepted`);
  }
  if (header.kid !== undefined && typeof header.kid !== 'string') throw new TokenError('invalid_token', 'kid is not a string');
  // Only a configured algorithm, spelled exactly, with a key made for it: never "none", never an
  // HMAC key made of a public key. The kid only picks among our own keys.
  if (typeof header.alg !== 'string') throw new TokenError('invalid_token', 'alg is not a string');
  const key = resolver.byHeader(header.alg, header.kid);
  // Only strings are quoted into the reason: an attacker's object could not be turned into text safely.
  if (key === undefined)
    throw new TokenError('invalid_token', `no key for algorithm ${header.alg.slice(0, 20)} and kid ${(header.kid ?? '').slice(0, 64)}`);
  return key;
}

/** A base64url segment decoded as a JSON object (a token's header or payload); undefined for anything else. */
export function decodeJsonSegment(encoded: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
