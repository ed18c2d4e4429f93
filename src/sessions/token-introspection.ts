import type { Kysely } from 'kysely';
import type { AuditLog, ClientInfo } from '../audit/audit-log.js';
import { GatepassError } from '../errors.js';
import type { Database } from '../store/schema.js';
import { SessionRepository } from '../store/sessions.js';
import { UserRepository } from '../store/users.js';
import { REVOCATION_STATE_UNAVAILABLE } from '../tokens/failures.js';
import { mintTimeOf } from '../tokens/role-change-cutoff.js';
import type { AccessClaims, Clock, RefreshClaims, TokenService } from '../tokens/token-service.js';
import type { Revocations } from './revocations.js';
import type { SessionService } from './session-service.js';

/** RFC 7662's answer: the claims of a live token, or only `active: false`, whatever the reason. */
export type Introspection =
  | { active: false }
  | {
      active: true;
      sub: string;
      sid: string;
      role: string;
      exp: number;
      iat: number;
      jti: string;
      token_type: 'access_token' | 'refresh_token';
    };

/** RFC 7009's hint, and what RFC 7662 accepts as well. */
export type TokenTypeHint = 'access_token' | 'refresh_token';

const INACTIVE: Introspection = { active: false };

/** Who asked, for the audit trail: a service credential's name and the request's origin. */
export interface ServiceCaller {
  name: string;
  client: ClientInfo;
}

/**
 * Token introspection (RFC 7662) and revocation (RFC 7009) for other services: the server's own
 * judgement of a token, so that a service in any language sees what gatepass's guards see. A token
 * is tried as the hinted type first, then as the other; the two are told apart by their keys and
 * `type` claim, so a hint only saves work.
 */
export class TokenIntrospection {
  private readonly users: UserRepository;
  private readonly sessionRows: SessionRepository;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly tokens: TokenService,
    private readonly revocations: Revocations,
    private readonly sessions: SessionService,
    private readonly audit: AuditLog,
    private readonly now: Clock = Date.now,
  ) {
    this.users = new UserRepository(db);
    this.sessionRows = new SessionRepository(db);
  }

  async introspect(token: string, hint?: TokenTypeHint): Promise<Introspection> {
    const genuine = this.genuine(token, hint);
    if (genuine === undefined) return INACTIVE;
    return genuine.type === 'access_token' ? this.introspectAccess(genuine.claims) : this.introspectRefresh(genuine.claims);
  }

  /**
   * Revokes a genuine token: a refresh token ends its session (and with it every token of it), an
   * access token is refused from now on, on every instance and by every verifier that follows the
   * feed. Anything else is ignored, as RFC 7009 asks (the caller learns nothing about the token).
   */
  async revoke(token: string, hint: TokenTypeHint | undefined, caller: ServiceCaller): Promise<void> {
    const genuine = this.genuine(token, hint);
    if (genuine === undefined) return;
    const { claims } = genuine;
    const userId = Number(claims.sub);
    if (genuine.type === 'refresh_token') {
      await this.sessions.endSession(userId, claims.sid, {
        event: 'session_revoked',
        userId,
        client: caller.client,
        details: { service: caller.name },
      });
      return;
    }
    const revocation = this.revocations.token(claims.jti, userId);
    await this.db.transaction().execute(async (trx) => {
      await this.revocations.persist([revocation], trx);
      await this.audit.record(
        { event: 'token_revoked', userId, client: caller.client, details: { service: caller.name, session_id: claims.sid } },
        trx,
      );
    });
    await this.revocations.announce([revocation]);
  }

  /** The token's verified claims, tried as the hinted type first; undefined when it is neither (forged, expired, malformed). */
  private genuine(
    token: string,
    hint: TokenTypeHint | undefined,
  ): { type: 'access_token'; claims: AccessClaims } | { type: 'refresh_token'; claims: RefreshClaims } | undefined {
    for (const type of order(hint)) {
      try {
        return type === 'access_token'
          ? { type, claims: this.tokens.verifyAccessToken(token) }
          : { type, claims: this.tokens.verifyRefreshToken(token) };
      } catch {
        // Not this type: try the other.
      }
    }
    return undefined;
  }

  private async introspectAccess(claims: AccessClaims): Promise<Introspection> {
    // Fail closed, as the guards do: a revocation made elsewhere may be unknown here.
    if (!this.revocations.available) throw new GatepassError('service_unavailable', REVOCATION_STATE_UNAVAILABLE);
    const userId = Number(claims.sub);
    const user = await this.users.findById(userId);
    if (user === undefined || !user.isActive) return INACTIVE;
    // Checked after the last read, with nothing awaited after it: a logout that has answered its
    // caller while that read was pending has applied its revocation here, so it is seen.
    if (this.revocations.isRevoked(claims.sid, userId, mintTimeOf(claims), claims.jti)) return INACTIVE;
    const { sub, sid, role, exp, iat, jti } = claims;
    return { active: true, sub, sid, role, exp, iat, jti, token_type: 'access_token' };
  }

  /** Active while it can still be exchanged: unused, its session live, its account active. */
  private async introspectRefresh(claims: RefreshClaims): Promise<Introspection> {
    const userId = Number(claims.sub);
    const record = await this.sessionRows.findRefreshToken(claims.jti);
    if (record === undefined || record.session_id !== claims.sid || record.user_id !== userId) return INACTIVE;
    if (record.used_at !== null || record.revoked_at !== null || record.expires_at <= this.now()) return INACTIVE;
    const session = await this.sessionRows.findSession(claims.sid);
    if (session === undefined || session.revoked_at !== null) return INACTIVE;
    const user = await this.users.findById(userId);
    if (user === undefined || !user.isActive) return INACTIVE;
    // As for access tokens: a logout that answered while the reads above were pending is seen here.
    if (this.revocations.isSessionRevoked(claims.sid)) return INACTIVE;
    const { sub, sid, exp, iat, jti } = claims;
    return { active: true, sub, sid, role: user.role, exp, iat, jti, token_type: 'refresh_token' };
  }
}

function order(hint: TokenTypeHint | undefined): TokenTypeHint[] {
  return hint === 'refresh_token' ? ['refresh_token', 'access_token'] : ['access_token', 'refresh_token'];
}
