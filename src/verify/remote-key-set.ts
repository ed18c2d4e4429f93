import { createPublicKey } from 'node:crypto';
import { TokenError } from '../tokens/errors.js';
import {
  createAsymmetricVerificationKey,
  keyResolver,
  type AsymmetricAlgorithm,
  type KeyResolver,
  type VerificationKey,
} from '../tokens/jws.js';

/** gatepass's JWKS holds a handful of keys; a body this large is not one, and is not read further. */
export const MAX_JWKS_BYTES = 1024 * 1024;

/** The JWKS could not be had: a network error, an answer other than 200 (a redirect included), a body that is no JWKS or too large. */
export class JwksFetchError extends Error {
  constructor(
    readonly url: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'JwksFetchError';
  }
}

/** The JWKS did not arrive, body included, within `jwksTimeoutSeconds`. */
export class JwksTimeoutError extends JwksFetchError {
  constructor(
    url: string,
    readonly timeoutMs: number,
  ) {
    super(url, `JWKS ${url} timed out after ${timeoutMs} ms`);
    this.name = 'JwksTimeoutError';
  }
}

/** What a JWK of each algorithm must be (RFC 7518 §6, RFC 8037 §2): an EC key is never an RS256 key, whatever its alg says. */
const JWK_SHAPE: Record<AsymmetricAlgorithm, { kty: string; crv?: string }> = {
  RS256: { kty: 'RSA' },
  PS256: { kty: 'RSA' },
  ES256: { kty: 'EC', crv: 'P-256' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519' },
};

/** Why a JWK is not used, or undefined when it may verify tokens of `algorithms`. */
function refusal(jwk: Record<string, unknown>, algorithms: readonly string[]): string | undefined {
  const { alg, kty, crv, use, key_ops: keyOps } = jwk;
  // RFC 7517 §4.2-4.3: a key published for encryption, or for operations other than verify, must not verify.
  if (use !== undefined && use !== 'sig') return 'its use is not sig';
  if (keyOps !== undefined && !(Array.isArray(keyOps) && keyOps.includes('verify'))) return 'its key_ops do not include verify';
  // Without alg a key would fit whichever algorithm a token names; gatepass always publishes it.
  if (typeof alg !== 'string' || !algorithms.includes(alg)) return 'its alg is missing or not accepted';
  const shape = JWK_SHAPE[alg as AsymmetricAlgorithm];
  if (kty !== shape.kty || crv !== shape.crv) return `its kty/crv do not fit ${alg}`;
  return undefined;
}

export interface RemoteKeySetOptions {
  url: string;
  algorithms: readonly AsymmetricAlgorithm[];
  /** How long fetched keys are used before a token makes the set fetch again. */
  maxAgeMs: number;
  /** Fetch attempts, failed or not, are at least this far apart, however many unknown kids come. */
  minRefetchMs: number;
  /** The whole fetch, body included, is abandoned after this. */
  timeoutMs: number;
  fetch: typeof fetch;
  now: () => number;
}

/**
 * gatepass's JWKS, fetched and cached for `gatepass/verify`.
 *
 * Written here rather than taken from jose's createRemoteJWKSet: jose's set hands out jose
 * KeyLikes for jose's own (asynchronous, much slower) verify, while tokens are verified on the
 * synchronous node:crypto path of tokens/jws.ts, which needs its VerificationKeys; and these few
 * lines keep every rule of gatepass's own keys (RSA at least 2048 bits, key type per algorithm)
 * in the one place tokens/jws.ts already enforces them for the server.
 */
export class RemoteKeySet {
  private resolver: KeyResolver = keyResolver([]);
  private kids = new Set<string>();
  /** kid → why the last JWKS's key of that kid was not taken, to say so in the refusal's reason. */
  private refused = new Map<string, string>();
  private fetchedAt = Number.NEGATIVE_INFINITY;
  /** When the last attempt ended: the cooldown counts from there, so a host that fails slowly is not asked again at once. */
  private attemptedAt = Number.NEGATIVE_INFINITY;
  /** The last attempt's failure, given as the reason until an attempt succeeds. */
  private failure: JwksFetchError | undefined;
  private inflight: Promise<void> | undefined;

  constructor(private readonly options: RemoteKeySetOptions) {}

  async resolverFor(kid: unknown): Promise<KeyResolver> {
    // The hot path: a known kid within maxAge never waits for a fetch another token started.
    if (this.usable(kid)) return this.resolver;
    const { now, minRefetchMs } = this.options;
    if (this.inflight === undefined && now() - this.attemptedAt >= minRefetchMs) {
      this.inflight = this.load().finally(() => (this.inflight = undefined));
    }
    // A fetch under way may bring the key this token needs: wait for it rather than refuse.
    if (this.inflight !== undefined) await this.inflight;
    if (this.usable(kid)) return this.resolver;
    if (this.failure !== undefined) throw this.failure;
    const why = typeof kid === 'string' ? this.refused.get(kid) : undefined;
    if (why !== undefined) throw new TokenError('invalid_token', `JWKS key ${String(kid).slice(0, 64)} not used: ${why}`);
    return this.resolver;
  }

  private usable(kid: unknown): boolean {
    return typeof kid === 'string' && this.kids.has(kid) && this.options.now() - this.fetchedAt <= this.options.maxAgeMs;
  }

  /** Never rejects: the outcome is the state it leaves. */
  private async load(): Promise<void> {
    try {
      const jwks = await this.download();
      const keys: VerificationKey[] = [];
      const refused = new Map<string, string>();
      for (const jwk of jwks) {
        if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) continue;
        const fields = jwk as Record<string, unknown>;
        // A kid is required: the resolver matches tokens to keys by it, never by trying each key.
        if (typeof fields.kid !== 'string') continue;
        const why = refusal(fields, this.options.algorithms);
        if (why !== undefined) {
          refused.set(fields.kid, why);
          continue;
        }
        try {
          const publicKey = createPublicKey({ key: fields, format: 'jwk' } as never);
          keys.push(createAsymmetricVerificationKey(fields.alg as AsymmetricAlgorithm, publicKey, fields.kid));
        } catch (error) {
          // A malformed key, or one tokens/jws.ts refuses (an RSA key under 2048 bits): skipped, never trusted.
          refused.set(fields.kid, error instanceof Error ? error.message : 'not a valid key');
        }
      }
      this.resolver = keyResolver(keys);
      this.kids = new Set(keys.map((key) => key.kid ?? ''));
      this.refused = refused;
      this.fetchedAt = this.options.now();
      this.failure = undefined;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.failure =
        error instanceof JwksFetchError
          ? error
          : new JwksFetchError(this.options.url, `JWKS ${this.options.url} could not be fetched: ${message}`, { cause: error });
    } finally {
      this.attemptedAt = this.options.now();
    }
  }

  /** The JWKS's `keys`, within the timeout; a fetch() that ignores the abort signal is outrun all the same. */
  private async download(): Promise<unknown[]> {
    const { url, timeoutMs } = this.options;
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        const error = new JwksTimeoutError(url, timeoutMs);
        controller.abort(error);
        reject(error);
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.request(controller.signal), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async request(signal: AbortSignal): Promise<unknown[]> {
    const { url } = this.options;
    // A redirect is a failure, not followed: the keys come from the configured URL or from nowhere,
    // never from wherever a compromised or misconfigured host points.
    const response = await this.options.fetch(url, { headers: { accept: 'application/json' }, redirect: 'manual', signal });
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined);
      throw new JwksFetchError(url, `JWKS ${url} answered ${response.status}`);
    }
    const text = await readBounded(response, url);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new JwksFetchError(url, `JWKS ${url} is not JSON`);
    }
    const keys = typeof body === 'object' && body !== null ? (body as { keys?: unknown }).keys : undefined;
    if (!Array.isArray(keys)) throw new JwksFetchError(url, `JWKS ${url} has no keys list`);
    return keys as unknown[];
  }
}

/** The body as text, refused as soon as it passes MAX_JWKS_BYTES, whatever Content-Length claims. */
async function readBounded(response: Response, url: string): Promise<string> {
  const tooLarge = () => new JwksFetchError(url, `JWKS ${url} is larger than ${MAX_JWKS_BYTES} bytes`);
  if (Number(response.headers.get('content-length') ?? 0) > MAX_JWKS_BYTES) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge();
  }
  if (response.body === null) return '';
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_JWKS_BYTES) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}
