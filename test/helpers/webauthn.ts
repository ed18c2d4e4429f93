import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';

/**
 * A software WebAuthn authenticator and client for HTTP tests without a browser: it answers the
 * server's options JSON with RegistrationResponseJSON / AuthenticationResponseJSON built as the
 * WebAuthn spec says (§6.1 authenticator data, §6.5 attestation object with the 'none' format, §5.8.1
 * client data), over an ES256 key pair of node:crypto. Every part can be overridden to forge a bad
 * response (another origin, another RP ID, a counter, missing flags).
 */

// A minimal CBOR encoder (RFC 8949): unsigned and negative integers, byte and text strings, arrays and maps — all that attestation objects and COSE keys use.
export type CborValue = number | string | Uint8Array | CborValue[] | Map<CborValue, CborValue>;

function head(major: number, length: number): Buffer {
  if (length < 24) return Buffer.from([(major << 5) | length]);
  if (length < 0x100) return Buffer.from([(major << 5) | 24, length]);
  if (length < 0x10000) {
    const out = Buffer.alloc(3);
    out[0] = (major << 5) | 25;
    out.writeUInt16BE(length, 1);
    return out;
  }
  const out = Buffer.alloc(5);
  out[0] = (major << 5) | 26;
  out.writeUInt32BE(length, 1);
  return out;
}

export function cborEncode(value: CborValue): Buffer {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error('only integers');
    return value >= 0 ? head(0, value) : head(1, -1 - value);
  }
  if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    return Buffer.concat([head(3, bytes.length), bytes]);
  }
  if (value instanceof Uint8Array) return Buffer.concat([head(2, value.length), value]);
  if (Array.isArray(value)) return Buffer.concat([head(4, value.length), ...value.map(cborEncode)]);
  const parts: Buffer[] = [head(5, value.size)];
  for (const [key, item] of value) parts.push(cborEncode(key), cborEncode(item));
  return Buffer.concat(parts);
}

export const FLAG_UP = 0x01;
export const FLAG_UV = 0x04;
export const FLAG_BE = 0x08;
export const FLAG_BS = 0x10;
export const FLAG_AT = 0x40;

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();
const b64url = (data: Uint8Array) => Buffer.from(data).toString('base64url');

/** The options fields the authenticator reads (the server's JSON). */
export interface CreationOptionsJson {
  challenge: string;
  rp: { id?: string; name: string };
  user: { id: string; name: string; displayName: string };
  excludeCredentials?: { id: string }[];
  authenticatorSelection?: { residentKey?: string; userVerification?: string };
}
export interface RequestOptionsJson {
  challenge: string;
  rpId?: string;
  allowCredentials?: { id: string }[];
  userVerification?: string;
}

export interface RegistrationResponseJson {
  id: string;
  rawId: string;
  type: 'public-key';
  response: { clientDataJSON: string; attestationObject: string; transports: string[] };
  authenticatorAttachment: 'platform' | 'cross-platform';
  clientExtensionResults: Record<string, never>;
  name?: string;
}
export interface AuthenticationResponseJson {
  id: string;
  rawId: string;
  type: 'public-key';
  response: { clientDataJSON: string; authenticatorData: string; signature: string; userHandle?: string };
  authenticatorAttachment: 'platform' | 'cross-platform';
  clientExtensionResults: Record<string, never>;
}

/** One credential the authenticator holds. */
export interface SoftCredential {
  id: Buffer;
  privateKey: KeyObject;
  /** The COSE_Key of its public key. */
  cosePublicKey: Buffer;
  rpId: string;
  userHandle: string;
  /** The signature counter; stays 0 for a synced credential. */
  counter: number;
  synced: boolean;
}

/** What a test may change in a ceremony, to forge a response the server must refuse. */
export interface Overrides {
  origin?: string;
  rpId?: string;
  challenge?: string;
  type?: string;
  flags?: number;
  counter?: number;
  userHandle?: string | null;
}

/** Device-bound (counter kept, BE/BS clear: amr hwk) or synced (BE|BS, counter 0: amr swk). */
export class SoftAuthenticator {
  readonly credentials: SoftCredential[] = [];

  constructor(
    readonly origin: string,
    readonly options: { synced?: boolean } = {},
  ) {}

  private get backupFlags(): number {
    return this.options.synced === true ? FLAG_BE | FLAG_BS : 0;
  }

  private clientData(type: string, challenge: string, origin: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }), 'utf8');
  }

  /**
   * navigator.credentials.create(): a new ES256 credential for options.rp.id, attested with 'none'
   * (or, with `reuse`, an existing credential attested again: what a tampered client could send).
   */
  create(options: CreationOptionsJson, overrides: Overrides = {}, reuse?: SoftCredential): RegistrationResponseJson {
    const rpId = overrides.rpId ?? options.rp.id ?? new URL(this.origin).hostname;
    const credential = reuse ?? this.newCredential(rpId, options.user.id);
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(credential.id.length);
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(overrides.counter ?? 0);
    const flags = overrides.flags ?? FLAG_UP | FLAG_UV | FLAG_AT | this.backupFlags;
    const authData = Buffer.concat([
      sha256(rpId),
      Buffer.from([flags]),
      counter,
      Buffer.alloc(16),
      idLength,
      credential.id,
      credential.cosePublicKey,
    ]);
    const attestationObject = cborEncode(
      new Map<CborValue, CborValue>([
        ['fmt', 'none'],
        ['attStmt', new Map()],
        ['authData', authData],
      ]),
    );
    if (reuse === undefined) this.credentials.push(credential);
    const clientDataJSON = this.clientData(
      overrides.type ?? 'webauthn.create',
      overrides.challenge ?? options.challenge,
      overrides.origin ?? this.origin,
    );
    return {
      id: b64url(credential.id),
      rawId: b64url(credential.id),
      type: 'public-key',
      response: {
        clientDataJSON: b64url(clientDataJSON),
        attestationObject: b64url(attestationObject),
        transports: ['internal', 'hybrid'],
      },
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
    };
  }

  private newCredential(rpId: string, userHandle: string): SoftCredential {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const cosePublicKey = cborEncode(
      new Map<CborValue, CborValue>([
        [1, 2], // kty: EC2
        [3, -7], // alg: ES256
        [-1, 1], // crv: P-256
        [-2, Buffer.from(jwk.x ?? '', 'base64url')],
        [-3, Buffer.from(jwk.y ?? '', 'base64url')],
      ]),
    );
    return { id: randomBytes(32), privateKey, cosePublicKey, rpId, userHandle, counter: 0, synced: this.options.synced === true };
  }

  /**
   * navigator.credentials.get(): an assertion by `credential` (by default the newest), its counter
   * moved on by one unless the credential is synced.
   */
  get(options: RequestOptionsJson, overrides: Overrides = {}, credential = this.credentials.at(-1)): AuthenticationResponseJson {
    if (credential === undefined) throw new Error('the authenticator holds no credential');
    if (overrides.counter === undefined && !credential.synced) credential.counter += 1;
    const rpId = overrides.rpId ?? options.rpId ?? credential.rpId;
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(overrides.counter ?? credential.counter);
    const flags = overrides.flags ?? FLAG_UP | FLAG_UV | this.backupFlags;
    const authenticatorData = Buffer.concat([sha256(rpId), Buffer.from([flags]), counter]);
    const clientDataJSON = this.clientData(
      overrides.type ?? 'webauthn.get',
      overrides.challenge ?? options.challenge,
      overrides.origin ?? this.origin,
    );
    // ES256 signatures are DER-encoded ECDSA over authenticatorData || SHA-256(clientDataJSON) (WebAuthn §6.3.3, §6.5.6).
    const signature = sign('sha256', Buffer.concat([authenticatorData, sha256(clientDataJSON)]), credential.privateKey);
    const userHandle = overrides.userHandle === undefined ? credential.userHandle : overrides.userHandle;
    return {
      id: b64url(credential.id),
      rawId: b64url(credential.id),
      type: 'public-key',
      response: {
        clientDataJSON: b64url(clientDataJSON),
        authenticatorData: b64url(authenticatorData),
        signature: b64url(signature),
        ...(userHandle !== null && { userHandle }),
      },
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
    };
  }
}
