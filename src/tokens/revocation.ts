/**
 * A revocation as stored, broadcast between instances and applied: a session (every access token
 * of it), a user's access tokens minted before `issuedBefore` (epoch ms), or one access token by its
 * jti (RFC 7009). `expiresAt` (epoch ms): when no token it refuses can still be live, so it can be
 * forgotten.
 */
export type Revocation =
  | { kind: 'session'; sessionId: string; userId: number; expiresAt: number }
  | { kind: 'user'; userId: number; issuedBefore: number; expiresAt: number }
  | { kind: 'token'; tokenId: string; userId: number; expiresAt: number };

/**
 * A revocation as the feed publishes it to other services (API.md "Services and token endpoints"):
 * the token's own claim names (`sid`, `sub`, `jti`) and ISO-8601 times.
 */
export type RevocationEntry =
  | { kind: 'session'; sid: string; until: string }
  | { kind: 'user'; sub: string; before: string; until: string }
  | { kind: 'token'; jti: string; until: string };

export function toRevocationEntry(revocation: Revocation): RevocationEntry {
  const until = new Date(revocation.expiresAt).toISOString();
  switch (revocation.kind) {
    case 'session':
      return { kind: 'session', sid: revocation.sessionId, until };
    case 'user':
      return { kind: 'user', sub: String(revocation.userId), before: new Date(revocation.issuedBefore).toISOString(), until };
    case 'token':
      return { kind: 'token', jti: revocation.tokenId, until };
  }
}

const MAX_ID_LENGTH = 128;

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH;
}

function time(value: unknown): number | undefined {
  if (typeof value !== 'string' || value.length > 40) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * Reads one entry of the feed back into a Revocation, or undefined for anything malformed (a
 * verifier skips those rather than trusting them). A `user` entry whose `sub` is not a gatepass user
 * id cannot match any token, so it is refused too.
 */
export function fromRevocationEntry(value: unknown): Revocation | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const entry = value as Partial<Record<string, unknown>>;
  const expiresAt = time(entry.until);
  if (expiresAt === undefined) return undefined;
  switch (entry.kind) {
    case 'session':
      return isId(entry.sid) ? { kind: 'session', sessionId: entry.sid, userId: 0, expiresAt } : undefined;
    case 'token':
      return isId(entry.jti) ? { kind: 'token', tokenId: entry.jti, userId: 0, expiresAt } : undefined;
    case 'user': {
      const issuedBefore = time(entry.before);
      const userId = typeof entry.sub === 'string' && /^[1-9][0-9]{0,15}$/.test(entry.sub) ? Number(entry.sub) : undefined;
      return issuedBefore !== undefined && userId !== undefined ? { kind: 'user', userId, issuedBefore, expiresAt } : undefined;
    }
    default:
      return undefined;
  }
}

/** Whether a value is a Revocation as instances broadcast them (a message from Redis is checked before use). */
export function isRevocation(value: unknown): value is Revocation {
  const r = value as Partial<Record<string, unknown>> | null;
  if (typeof r !== 'object' || r === null || typeof r.userId !== 'number' || typeof r.expiresAt !== 'number') return false;
  switch (r.kind) {
    case 'session':
      return typeof r.sessionId === 'string';
    case 'user':
      return typeof r.issuedBefore === 'number';
    case 'token':
      return typeof r.tokenId === 'string';
    default:
      return false;
  }
}
