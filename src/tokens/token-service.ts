import { randomUUID } from 'node:crypto';
import type { JwtSettings } from '../config/settings.js';
import { TokenError } from './errors.js';
import { createHmacKey, signJws, verifyJws, type HmacKey } from './jws.js';

export type TokenType = 'access' | 'refresh';

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
 * Issues and verifies gatepass's two kinds of token. Access and refresh tokens are signed with
 * different secrets and carry a `type` claim, so neither can stand in for the other (seeds, Part 4.4).
 */
export class TokenService {
  private readonly accessKey: HmacKey;
  private readonly refreshKey: HmacKey;

  constructor(
    private readonly settings: JwtSettings,
    private readonly now: Clock = Date.now,
  ) {
    this.accessKey = createHmacKey(settings.algorithm, settings.accessSecret);
    this.refreshKey = createHmacKey(settings.algorithm, settings.refreshSecret);
  }

  get accessTtlSeconds(): number {
    return this.settings.accessTtlSeconds;
  }

  get refreshTtlSeconds(): number {
    return this.settings.refreshTtlSeconds;
  }

  issueAccessToken(subject: { userId: number; sessionId: string; role: string }): IssuedToken<AccessClaims> {
    const iat = Math.floor(this.now() / 1000);
    const claims: AccessClaims = {
      sub: String(subject.userId),
      type: 'access',
      sid: subject.sessionId,
      role: subject.role,
      jti: randomUUID(),
      iat,
      exp: iat + this.settings.accessTtlSeconds,
    };
    return { token: signJws(this.withIssuerAndAudience(claims), this.accessKey), claims };
  }

  issueRefreshToken(subject: { userId: number; sessionId: string }): IssuedToken<RefreshClaims> {
    const iat = Math.floor(this.now() / 1000);
    const claims: RefreshClaims = {
      sub: String(subject.userId),
      type: 'refresh',
      sid: subject.sessionId,
      jti: randomUUID(),
      iat,
      exp: iat + this.settings.refreshTtlSeconds,
    };
    return { token: signJws(this.withIssuerAndAudience(claims), this.refreshKey), claims };
  }

  verifyAccessToken(token: string): AccessClaims {
    const payload = this.verify(token, this.accessKey, 'access');
    if (typeof payload.role !== 'string') throw new TokenError('invalid_token', 'role missing');
    return payload as unknown as AccessClaims;
  }

  verifyRefreshToken(token: string): RefreshClaims {
    return this.verify(token, this.refreshKey, 'refresh') as unknown as RefreshClaims;
  }

  private withIssuerAndAudience(claims: object): object {
    const { issuer, audience } = this.settings;
    if (issuer === undefined && audience === undefined) return claims;
    return { ...claims, ...(issuer !== undefined && { iss: issuer }), ...(audience !== undefined && { aud: audience }) };
  }

  private verify(token: string, key: HmacKey, expectedType: TokenType): Record<string, unknown> {
    const payload = verifyJws(token, key);
    const nowSeconds = this.now() / 1000;
    const { leewaySeconds, issuer, audience } = this.settings;

    if (typeof payload.exp !== 'number' || !Number.isFinite(payload.exp)) throw new TokenError('invalid_token', 'exp missing');
    if (typeof payload.iat !== 'number' || !Number.isFinite(payload.iat)) throw new TokenError('invalid_token', 'iat missing');
    if (payload.iat > nowSeconds + leewaySeconds) throw new TokenError('invalid_token', 'iat in the future');
    if (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || payload.nbf > nowSeconds + leewaySeconds)) {
      throw new TokenError('invalid_token', 'not yet valid');
    }
    // User ids are positive 32-bit integers (the users.id column); anything else names no user.
    if (typeof payload.sub !== 'string' || !/^[1-9]\d{0,9}$/.test(payload.sub) || Number(payload.sub) > 2_147_483_647) {
      throw new TokenError('invalid_token', 'bad sub');
    }
    if (typeof payload.sid !== 'string' || payload.sid.length === 0 || payload.sid.length > 64) {
      throw new TokenError('invalid_token', 'bad sid');
    }
    if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 64) {
      throw new TokenError('invalid_token', 'bad jti');
    }
    if (issuer !== undefined && payload.iss !== issuer) throw new TokenError('invalid_token', 'wrong issuer');
    if (audience !== undefined && !audienceMatches(payload.aud, audience)) throw new TokenError('invalid_token', 'wrong audience');
    if (payload.type !== expectedType) throw new TokenError('invalid_token_type', `type is not ${expectedType}`);
    // Expiry is judged last: an expired token must still be genuine and well-formed to earn "expired".
    if (payload.exp <= nowSeconds - leewaySeconds) throw new TokenError('token_expired', 'expired');
    return payload;
  }
}

function audienceMatches(aud: unknown, expected: string): boolean {
  return aud === expected || (Array.isArray(aud) && aud.includes(expected));
}
