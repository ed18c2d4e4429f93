import { randomUUID } from 'node:crypto';
import type { JwtSettings } from './jwt-settings.js';
import { checkClaims } from './claims.js';
import { uuidv7 } from './uuid7.js';
import { createHmacKey, isHmacAlgorithm, signJws, verifyJws, type KeyResolver, type SigningKey } from './jws.js';
import type { AccessKeys } from './key-store.js';

export type TokenType = 'access' | 'refresh';

/** RFC 8176's name for a password sign-in: the `amr` of sessions that recorded none. */
export const PASSWORD_AMR: readonly string[] = ['pwd'];

interface CommonClaims {
  /** The user id, as a decimal string. */
  sub: string;
  /** The session (refresh family) the token belongs to. */
  sid: string;
  jti: string;
  iat: number;
  exp: number;
}

export interface AccessClaims extends CommonClaims {
  type: 'access';
  role: string;
  email_verified: boolean;
  /** How the session was signed in (RFC 8176 method names), e.g. `["pwd"]` or `["pwd","otp"]`. */
  amr: string[];
}

export interface RefreshClaims extends CommonClaims {
  type: 'refresh';
}

export interface IssuedToken<C> {
  token: string;
  claims: C;
}

export type Clock = () => number;

/**
 * Issues and verifies gatepass's two kinds of token. Access tokens are signed with the configured
 * algorithm (an HMAC secret or a rotating key pair); refresh tokens, which only gatepass ever reads,
 * with a different HMAC secret. Both carry a `type` claim, so neither can stand in for the other
 * (seeds, Part 4.4).
 */
export class TokenService {
  private readonly refreshKey: SigningKey;

  constructor(
    private readonly settings: JwtSettings,
    readonly accessKeys: AccessKeys,
    private readonly now: Clock = Date.now,
  ) {
    this.refreshKey = createHmacKey(isHmacAlgorithm(settings.algorithm) ? settings.algorithm : 'HS256', settings.refreshSecret);
  }

  get accessTtlSeconds(): number {
    return this.settings.accessTtlSeconds;
  }

  get refreshTtlSeconds(): number {
    return this.settings.refreshTtlSeconds;
  }

  /** `mintedAt` (epoch ms, default now) dates the token's UUIDv7 jti, which role-change revocations compare. */
  issueAccessToken(subject: {
    userId: number;
    sessionId: string;
    role: string;
    /** Default false. */
    emailVerified?: boolean;
    /** Default `["pwd"]`: a password sign-in. */
    amr?: readonly string[];
    mintedAt?: number;
  }): IssuedToken<AccessClaims> {
    const iat = Math.floor(this.now() / 1000);
    const claims: AccessClaims = {
      sub: String(subject.userId),
      type: 'access',
      sid: subject.sessionId,
      role: subject.role,
      email_verified: subject.emailVerified ?? false,
      amr: [...(subject.amr ?? PASSWORD_AMR)],
      jti: uuidv7(subject.mintedAt ?? this.now()),
      iat,
      exp: iat + this.settings.accessTtlSeconds,
    };
    return { token: this.signAccess(claims), claims };
  }

  issueRefreshToken(subject: { userId: number; sessionId: string }): IssuedToken<RefreshClaims> {
    const iat = Math.floor(this.now() / 1000);
    return this.signRefreshToken({
      userId: subject.userId,
      sessionId: subject.sessionId,
      jti: randomUUID(),
      iat,
      exp: iat + this.settings.refreshTtlSeconds,
    });
  }

  /**
   * Signs the refresh token with exactly these claims. HMAC signatures are deterministic, so the
   * claims of an issued token (its stored record) give back the very same token: what a refresh
   * within the grace window answers, so that the session stays one chain.
   */
  signRefreshToken(record: { userId: number; sessionId: string; jti: string; iat: number; exp: number }): IssuedToken<RefreshClaims> {
    const claims: RefreshClaims = {
      sub: String(record.userId),
      type: 'refresh',
      sid: record.sessionId,
      jti: record.jti,
      iat: record.iat,
      exp: record.exp,
    };
    return { token: signJws(this.withIssuerAndAudience(claims), this.refreshKey), claims };
  }

  /** Signs any payload with the current access-token key (iss and aud added when configured). */
  signAccess(payload: object): string {
    return signJws(this.withIssuerAndAudience(payload), this.accessKeys.signingKey());
  }

  verifyAccessToken(token: string): AccessClaims {
    return this.verify(token, this.accessKeys.resolver(), 'access') as unknown as AccessClaims;
  }

  verifyRefreshToken(token: string): RefreshClaims {
    return this.verify(token, this.refreshKey, 'refresh') as unknown as RefreshClaims;
  }

  private withIssuerAndAudience(claims: object): object {
    const { issuer, audience } = this.settings;
    if (issuer === undefined && audience === undefined) return claims;
    return { ...claims, ...(issuer !== undefined && { iss: issuer }), ...(audience !== undefined && { aud: audience }) };
  }

  private verify(token: string, keys: KeyResolver | SigningKey, type: TokenType): Record<string, unknown> {
    const payload = verifyJws(token, keys);
    const { leewaySeconds, issuer, audience } = this.settings;
    checkClaims(payload, { type, leewaySeconds, issuer, audience, nowSeconds: this.now() / 1000 });
    return payload;
  }
}
