import { DEFAULT_ROLE_PERMISSIONS, isRole, type Permission, type Role } from '../tokens/roles.js';
import { checkClaims } from '../tokens/claims.js';
import { TokenError } from '../tokens/errors.js';
import {
  ACCESS_TOKEN_DETAILS,
  accessTokenFailure,
  bearerChallenge,
  bearerToken,
  REVOCATION_STATE_UNAVAILABLE,
  TOKEN_FAILURE_STATUS,
} from '../tokens/failures.js';
import { mintTimeOf } from '../tokens/role-change-cutoff.js';
import {
  ASYMMETRIC_ALGORITHMS,
  createHmacKey,
  decodeJsonSegment,
  isHmacAlgorithm,
  keyResolver,
  verifyJws,
  type Algorithm,
  type AsymmetricAlgorithm,
  type KeyResolver,
  type VerificationKey,
} from '../tokens/jws.js';
import { RemoteKeySet } from './remote-key-set.js';
import { RevocationFollower, type RevocationFeedOptions } from './revocation-follower.js';

export type VerifyErrorCode =
  'not_authenticated' | 'invalid_token' | 'token_expired' | 'token_revoked' | 'forbidden' | 'mfa_required' | 'service_unavailable';

const DETAILS: Record<VerifyErrorCode, string> = {
  ...ACCESS_TOKEN_DETAILS,
  mfa_required: 'This needs a sign-in with a second factor',
  service_unavailable: REVOCATION_STATE_UNAVAILABLE,
};
const STATUS: Record<VerifyErrorCode, 401 | 403 | 503> = { ...TOKEN_FAILURE_STATUS, mfa_required: 403, service_unavailable: 503 };

/** A refused request, with the status, body and header the gatepass server would answer. */
export class VerifyError extends Error {
  readonly status: 401 | 403 | 503;
  readonly detail: string;

  constructor(
    readonly code: VerifyErrorCode,
    /** Why, for logs; never sent to the client. */
    readonly reason: string = code,
    /** `cause`: what made the verifier refuse, e.g. a JwksTimeoutError. */
    options?: ErrorOptions,
  ) {
    super(DETAILS[code], options);
    this.name = 'VerifyError';
    this.status = STATUS[code];
    this.detail = DETAILS[code];
  }

  get body(): { detail: string; code: VerifyErrorCode } {
    return { detail: this.detail, code: this.code };
  }

  /** RFC 6750: `WWW-Authenticate` for 401s, with error="invalid_token" when a token was refused. */
  get wwwAuthenticate(): string | undefined {
    return this.status === 401 ? bearerChallenge(this.code) : undefined;
  }
}

/** The caller, as proven by a gatepass access token. */
export interface VerifiedUser {
  /** The gatepass user id. */
  id: number;
  role: string;
  sessionId: string;
  tokenId: string;
  expiresAt: Date;
  /** How the session was signed in (RFC 8176): `pwd`, `otp` (TOTP or recovery code), `hwk`/`swk` (passkey), `fed`. */
  amr: string[];
  /** Whether the address was verified when the token was minted. */
  emailVerified: boolean;
  claims: Record<string, unknown>;
}

export interface VerifierOptions {
  /** gatepass's `/.well-known/jwks.json`, for RS256, PS256, ES256 and EdDSA. */
  jwksUrl?: string;
  /** The shared JWT_SECRET, for HS256/384/512. */
  secret?: string;
  /** Accepted algorithms. Default: HS256 with a secret; the key-pair algorithms with a JWKS. */
  algorithms?: Algorithm[];
  issuer?: string;
  audience?: string;
  /** Clock skew tolerated for exp, nbf and iat (default 30 s, as the server). */
  leewaySeconds?: number;
  /** How long a fetched JWKS is used before it is fetched again (default 300 s). */
  jwksMaxAgeSeconds?: number;
  /**
   * An unknown kid refetches the JWKS at most this often (default 1 s): soon enough that a freshly
   * rotated key works at once, rarely enough that junk tokens cannot flood gatepass.
   */
  jwksMinRefetchSeconds?: number;
  /** A JWKS fetch that takes longer fails (default 5 s); verification then refuses the token. */
  jwksTimeoutSeconds?: number;
  /**
   * Follow gatepass's revocation feed, so that a logged-out, demoted or deactivated user's token is
   * refused here as on the server (401 token_revoked), not only when it expires. Without it, a
   * verifier checks signatures and claims alone.
   */
  revocations?: RevocationFeedOptions;
  /** Role → permissions, for requirePermission (default: gatepass's defaults). */
  rolePermissions?: Partial<Record<Role, Permission[]>>;
  fetch?: typeof fetch;
  now?: () => number;
}

export interface Verifier {
  /** Verifies a bare token. */
  verify(token: string): Promise<VerifiedUser>;
  /** Verifies an `Authorization: Bearer …` header value (undefined → not_authenticated). */
  verifyAuthorization(header: string | undefined): Promise<VerifiedUser>;
  /** Whether the user's role grants the permission. */
  can(user: VerifiedUser, permission: Permission): boolean;
  /** Whether the session was signed in with one of these methods (RFC 8176 `amr` values, e.g. `otp`). */
  signedInWith(user: VerifiedUser, methods: readonly string[]): boolean;
  /** Resolves once the revocation feed has been caught up with (at once without a feed). */
  ready(): Promise<void>;
  /** Stops following the revocation feed. */
  close(): Promise<void>;
}

function headerOf(token: string): { alg?: unknown; kid?: unknown } {
  return decodeJsonSegment(token.slice(0, token.indexOf('.'))) ?? {};
}

/**
 * Verifies gatepass access tokens in another service, statelessly: with the JWKS (key pairs) or
 * the shared secret (HMAC). The checks are the server's own (algorithm allow-list, no token-chosen
 * keys, type, exp/nbf/iat with leeway, iss/aud when given), and failures carry the server's answers.
 */
export function createVerifier(options: VerifierOptions): Verifier {
  const now = options.now ?? Date.now;
  const fetchImpl = options.fetch ?? fetch;
  const leewaySeconds = options.leewaySeconds ?? 30;
  const permissions = { ...DEFAULT_ROLE_PERMISSIONS, ...options.rolePermissions };
  let resolve: (token: string) => Promise<KeyResolver | VerificationKey>;

  if (options.secret !== undefined) {
    if (options.jwksUrl !== undefined) throw new Error('createVerifier: give either jwksUrl or secret, not both');
    const algorithms = options.algorithms ?? ['HS256'];
    const keys = algorithms.filter(isHmacAlgorithm).map((algorithm) => createHmacKey(algorithm, options.secret ?? ''));
    if (keys.length !== algorithms.length) throw new Error('createVerifier: a secret verifies only HS256, HS384 and HS512');
    const resolver = keyResolver(keys);
    resolve = async () => resolver;
  } else if (options.jwksUrl !== undefined) {
    const algorithms = options.algorithms ?? [...ASYMMETRIC_ALGORITHMS];
    if (algorithms.some(isHmacAlgorithm)) throw new Error('createVerifier: a JWKS verifies only RS256, PS256, ES256 and EdDSA');
    const keySet = new RemoteKeySet({
      url: options.jwksUrl,
      algorithms: algorithms as AsymmetricAlgorithm[],
      maxAgeMs: (options.jwksMaxAgeSeconds ?? 300) * 1000,
      minRefetchMs: (options.jwksMinRefetchSeconds ?? 1) * 1000,
      fetch: fetchImpl,
      timeoutMs: (options.jwksTimeoutSeconds ?? 5) * 1000,
      now,
    });
    resolve = (token) => keySet.resolverFor(headerOf(token).kid);
  } else {
    throw new Error('createVerifier: jwksUrl or secret is required');
  }

  // Started only once the options have been accepted, so a refused configuration leaves nothing running.
  const follower = options.revocations === undefined ? undefined : new RevocationFollower(options.revocations, fetchImpl, now);

  /** Refuses a token the server would refuse as revoked, or any token while the list may be stale. */
  function checkRevocation(payload: Record<string, unknown>): void {
    if (follower === undefined) return;
    if (!follower.current) {
      if (follower.refusesWhenSilent) throw new VerifyError('service_unavailable', 'the revocation feed is silent');
      follower.acceptedWhileSilent();
    }
    const claims = payload as { sid: string; sub: string; jti: string; iat: number };
    if (follower.list.isRevoked(claims.sid, Number(claims.sub), mintTimeOf(claims), claims.jti)) throw new VerifyError('token_revoked');
  }

  async function verify(token: string): Promise<VerifiedUser> {
    try {
      const payload = verifyJws(token, await resolve(token));
      checkClaims(payload, { type: 'access', leewaySeconds, issuer: options.issuer, audience: options.audience, nowSeconds: now() / 1000 });
      checkRevocation(payload);
      return {
        id: Number(payload.sub),
        role: payload.role as string,
        sessionId: payload.sid as string,
        tokenId: payload.jti as string,
        expiresAt: new Date((payload.exp as number) * 1000),
        amr: Array.isArray(payload.amr) ? payload.amr.filter((method): method is string => typeof method === 'string') : [],
        emailVerified: payload.email_verified === true,
        claims: payload,
      };
    } catch (error) {
      if (error instanceof VerifyError) throw error;
      if (error instanceof TokenError) throw new VerifyError(accessTokenFailure(error), error.reason);
      // The JWKS could not be fetched: refuse (fail closed), but say why in the reason.
      throw new VerifyError('invalid_token', error instanceof Error ? error.message : String(error), { cause: error });
    }
  }

  return {
    verify,
    async verifyAuthorization(header) {
      const token = bearerToken(header);
      if (token === undefined) throw new VerifyError('not_authenticated');
      return verify(token);
    },
    can: (user, permission) => isRole(user.role) && permissions[user.role].includes(permission),
    signedInWith: (user, methods) => methods.some((method) => user.amr.includes(method)),
    ready: async () => follower?.caughtUp(),
    close: async () => follower?.close(),
  };
}
