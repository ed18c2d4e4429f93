import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { accessTokenLifetimeMs, type JwtSettings } from './jwt-settings.js';
import {
  createAsymmetricSigningKey,
  createHmacKey,
  isHmacAlgorithm,
  keyResolver,
  type AsymmetricAlgorithm,
  type HmacAlgorithm,
  type KeyResolver,
  type SigningKey,
} from './jws.js';

/** A public key as published in the JWKS (RFC 7517). */
export type PublicJwk = Record<string, string>;

/** Where access tokens' keys come from: one HMAC secret, or a rotating set of key pairs. */
export interface AccessKeys {
  /** The key new tokens are signed with. */
  signingKey(): SigningKey;
  /** Every key a live token may have been signed with. */
  resolver(): KeyResolver;
  /** The public keys still needed to verify live tokens; never a private part, never a secret. */
  jwks(): PublicJwk[];
}

/** HS256/384/512: one secret, nothing to publish. */
export function hmacAccessKeys(algorithm: HmacAlgorithm, secret: string): AccessKeys {
  const key = createHmacKey(algorithm, secret);
  const resolver = keyResolver([key]);
  return { signingKey: () => key, resolver: () => resolver, jwks: () => [] };
}

export interface KeyInfo {
  kid: string;
  algorithm: AsymmetricAlgorithm;
  createdAt: number;
  /** When it stopped signing (a rotation); null for the active key. */
  deactivatedAt: number | null;
}

interface Manifest {
  active: string;
  keys: KeyInfo[];
}

export class KeyStoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyStoreError';
  }
}

const MANIFEST = 'keys.json';
/** How often the manifest is reread, so that `gatepass keys rotate` reaches running servers. */
const RELOAD_CHECK_MS = 1000;

function generatePair(algorithm: AsymmetricAlgorithm): KeyObject {
  switch (algorithm) {
    case 'RS256':
    case 'PS256':
      return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    case 'ES256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    case 'EdDSA':
      return generateKeyPairSync('ed25519').privateKey;
  }
}

function newKid(algorithm: AsymmetricAlgorithm, now: number): string {
  return `${algorithm.toLowerCase()}-${new Date(now).toISOString().slice(0, 10).replace(/-/g, '')}-${randomBytes(4).toString('hex')}`;
}

/**
 * The key pairs of an asymmetric algorithm in JWT_KEYS_DIR: one PEM file per key (PKCS#8, mode 600)
 * and a manifest naming the active key. A rotated-out key keeps verifying, and stays in the JWKS,
 * until every token it signed has expired (`tokenLifetimeMs` after its deactivation); `retire`
 * removes it for good. Running servers notice a changed manifest within a second.
 */
export class KeyStore implements AccessKeys {
  private manifest: Manifest = { active: '', keys: [] };
  private signing: SigningKey | undefined;
  private privateKeys = new Map<string, KeyObject>();
  /** The manifest's text as last loaded: a change is a different text, whatever the file times say. */
  private loadedText = '';
  private nextCheck = 0;
  private cachedResolver: KeyResolver = keyResolver([]);
  /** The kids behind cachedResolver, to rebuild it only when the set changes. */
  private resolvedKids = '';

  private constructor(
    private readonly dir: string,
    readonly algorithm: AsymmetricAlgorithm,
    private readonly tokenLifetimeMs: number,
    private readonly now: () => number,
  ) {}

  /**
   * Opens the key directory. With `createIfEmpty` (development, `keys generate`), an empty one gets
   * its first key; otherwise a missing key is an error that says how to make one.
   */
  static open(options: {
    dir: string;
    algorithm: AsymmetricAlgorithm;
    tokenLifetimeMs: number;
    createIfEmpty: boolean;
    now?: () => number;
  }): KeyStore {
    const store = new KeyStore(options.dir, options.algorithm, options.tokenLifetimeMs, options.now ?? Date.now);
    if (!existsSync(path.join(options.dir, MANIFEST))) {
      if (!options.createIfEmpty) {
        throw new KeyStoreError(`no signing key for ${options.algorithm} in ${options.dir}; create one with \`gatepass keys generate\``);
      }
      store.addKey(true);
    }
    store.reload();
    return store;
  }

  signingKey(): SigningKey {
    this.reloadIfChanged();
    if (this.signing === undefined) throw new KeyStoreError(`the active key of ${this.dir} is missing`);
    return this.signing;
  }

  resolver(): KeyResolver {
    this.reloadIfChanged();
    return this.cachedResolver;
  }

  jwks(): PublicJwk[] {
    this.reloadIfChanged();
    return this.liveKeys().map((info) => {
      const jwk = createPublicKey(this.privateKeyOf(info.kid)).export({ format: 'jwk' }) as PublicJwk;
      return { ...jwk, kid: info.kid, alg: info.algorithm, use: 'sig' };
    });
  }

  list(): (KeyInfo & { status: 'active' | 'verifying' | 'expired' })[] {
    this.reload();
    const now = this.now();
    return this.manifest.keys.map((info) => ({
      ...info,
      status:
        info.kid === this.manifest.active
          ? 'active'
          : info.deactivatedAt !== null && info.deactivatedAt + this.tokenLifetimeMs > now
            ? 'verifying'
            : 'expired',
    }));
  }

  /** Makes a new key the signing key; the previous one keeps verifying its tokens until they expire. */
  rotate(): KeyInfo {
    return this.addKey(true);
  }

  /** Removes a key that no longer signs: tokens it signed stop verifying at once. */
  retire(kid: string): void {
    this.reload();
    if (kid === this.manifest.active) throw new KeyStoreError(`${kid} is the active key; rotate first`);
    if (!this.manifest.keys.some((info) => info.kid === kid)) throw new KeyStoreError(`no key ${kid} in ${this.dir}`);
    this.writeManifest({ ...this.manifest, keys: this.manifest.keys.filter((info) => info.kid !== kid) });
    rmSync(this.keyFile(kid), { force: true });
    this.reload();
  }

  private liveKeys(manifest: Manifest = this.manifest): KeyInfo[] {
    const now = this.now();
    return manifest.keys.filter(
      (info) => info.kid === manifest.active || (info.deactivatedAt !== null && info.deactivatedAt + this.tokenLifetimeMs > now),
    );
  }

  private addKey(activate: boolean): KeyInfo {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const manifestExists = existsSync(path.join(this.dir, MANIFEST));
    if (manifestExists) this.reload();
    const now = this.now();
    const info: KeyInfo = { kid: newKid(this.algorithm, now), algorithm: this.algorithm, createdAt: now, deactivatedAt: null };
    const file = this.keyFile(info.kid);
    writeFileSync(file, generatePair(this.algorithm).export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    chmodSync(file, 0o600);
    const keys = (manifestExists ? this.manifest.keys : []).map((key) =>
      activate && key.kid === this.manifest.active && key.deactivatedAt === null ? { ...key, deactivatedAt: now } : key,
    );
    this.writeManifest({ active: activate || !manifestExists ? info.kid : this.manifest.active, keys: [...keys, info] });
    this.reload();
    return info;
  }

  private keyFile(kid: string): string {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(kid)) throw new KeyStoreError(`invalid kid ${kid}`);
    return path.join(this.dir, `${kid}.pem`);
  }

  /** Writes the manifest atomically, so that a reading server never sees half of it. */
  private writeManifest(manifest: Manifest): void {
    const target = path.join(this.dir, MANIFEST);
    const temporary = `${target}.${process.pid}.tmp`;
    writeFileSync(temporary, `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
    renameSync(temporary, target);
  }

  private privateKeyOf(kid: string): KeyObject {
    let key = this.privateKeys.get(kid);
    if (key === undefined) {
      key = createPrivateKey(readFileSync(this.keyFile(kid)));
      this.privateKeys.set(kid, key);
    }
    return key;
  }

  private reloadIfChanged(): void {
    const now = this.now();
    if (now < this.nextCheck) return;
    this.nextCheck = now + RELOAD_CHECK_MS;
    try {
      // The text, not the modification time: two writes within the file system's timestamp tick
      // (a rotation and a retirement in one script) leave the time unchanged. The file is small.
      if (readFileSync(path.join(this.dir, MANIFEST), 'utf8') !== this.loadedText) this.reload();
    } catch {
      // Keep serving with the keys in memory; the next check tries again.
    }
    // Time alone moves keys out of the verification window.
    this.rebuildResolverIfNeeded();
  }

  private reload(): void {
    const file = path.join(this.dir, MANIFEST);
    const text = readFileSync(file, 'utf8');
    const manifest = JSON.parse(text) as Manifest;
    if (!manifest.keys.some((info) => info.kid === manifest.active)) throw new KeyStoreError(`${file} names no active key`);
    for (const info of manifest.keys) {
      if (info.algorithm !== this.algorithm) {
        throw new KeyStoreError(
          `${file} holds ${info.algorithm} keys but JWT_ALGORITHM is ${this.algorithm}; rotate to a new key of the configured algorithm`,
        );
      }
    }
    // Every key the manifest makes live is judged before it is taken: a running server that reads a
    // manifest naming a weak key keeps the keys it has, and a starting one stops.
    const signing = this.signingKeyOf(manifest.active);
    for (const info of this.liveKeys(manifest)) this.signingKeyOf(info.kid);
    this.manifest = manifest;
    for (const kid of this.privateKeys.keys()) if (!manifest.keys.some((info) => info.kid === kid)) this.privateKeys.delete(kid);
    this.signing = signing;
    this.loadedText = text;
    this.resolvedKids = '';
    this.rebuildResolverIfNeeded();
  }

  private rebuildResolverIfNeeded(): void {
    const live = this.liveKeys();
    const kids = live.map((info) => info.kid).join(',');
    if (kids === this.resolvedKids) return;
    this.cachedResolver = keyResolver(live.map((info) => this.signingKeyOf(info.kid)));
    this.resolvedKids = kids;
  }

  /**
   * tokens/jws.ts judges the key (type, curve, RSA size) as it does a JWKS's for `gatepass/verify`;
   * a KeyStoreError naming the file stops the server at start rather than sign with a weak key.
   */
  private signingKeyOf(kid: string): SigningKey {
    const privateKey = this.privateKeyOf(kid);
    try {
      return createAsymmetricSigningKey(this.algorithm, privateKey, createPublicKey(privateKey), kid);
    } catch (error) {
      throw new KeyStoreError(
        `${this.keyFile(kid)}: ${error instanceof Error ? error.message : String(error)}; replace the key directory's keys (move them aside and run \`gatepass keys generate\`)`,
      );
    }
  }
}

/**
 * The access-token keys of the configured algorithm: the HMAC secret, or the key store in
 * `jwt.keysDir` (created with a first key when `createIfEmpty`, as in development).
 */
export function openAccessKeys(jwt: JwtSettings, options: { createIfEmpty: boolean; now?: () => number }): AccessKeys {
  if (isHmacAlgorithm(jwt.algorithm)) return hmacAccessKeys(jwt.algorithm, jwt.accessSecret);
  return KeyStore.open({
    dir: jwt.keysDir,
    algorithm: jwt.algorithm,
    // A rotated-out key must verify until the last token it signed expires, leeway included.
    tokenLifetimeMs: accessTokenLifetimeMs(jwt),
    createIfEmpty: options.createIfEmpty,
    ...(options.now !== undefined && { now: options.now }),
  });
}
