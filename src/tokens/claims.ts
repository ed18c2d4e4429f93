import { TokenError } from './errors.js';

export interface ClaimRules {
  /** The `type` claim the token must carry (seeds Part 4.4: access and refresh tokens never stand in for each other). */
  type: 'access' | 'refresh';
  leewaySeconds: number;
  issuer: string | undefined;
  audience: string | undefined;
  nowSeconds: number;
}

function audienceMatches(aud: unknown, expected: string): boolean {
  return aud === expected || (Array.isArray(aud) && aud.includes(expected));
}

/**
 * The claim checks of API.md, for a payload whose signature is already verified. Shared by the
 * server and by `gatepass/verify`, so both accept exactly the same tokens.
 */
export function checkClaims(payload: Record<string, unknown>, rules: ClaimRules): void {
  const { leewaySeconds, issuer, audience, nowSeconds } = rules;
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
  if (typeof payload.sid !== 'string' || payload.sid.length === 0 || payload.sid.length > 64)
    throw new TokenError('invalid_token', 'bad sid');
  if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 64)
    throw new TokenError('invalid_token', 'bad jti');
  if (issuer !== undefined && payload.iss !== issuer) throw new TokenError('invalid_token', 'wrong issuer');
  if (audience !== undefined && !audienceMatches(payload.aud, audience)) throw new TokenError('invalid_token', 'wrong audience');
  if (payload.type !== rules.type) throw new TokenError('invalid_token_type', `type is not ${rules.type}`);
  if (rules.type === 'access' && typeof payload.role !== 'string') throw new TokenError('invalid_token', 'role missing');
  // Expiry is judged last: an expired token must still be genuine and well-formed to earn "expired".
  if (payload.exp <= nowSeconds - leewaySeconds) throw new TokenError('token_expired', 'expired');
}
