import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AuditEntry, AuditLog, ClientInfo } from '../audit/audit-log.js';
import { GatepassError, SIGN_IN_DETAILS } from '../errors.js';
import { MfaRepository } from '../store/mfa.js';
import { PasswordResetTokenRepository } from '../store/password-reset-tokens.js';
import type { Database, RefreshTokenRow, SessionRow } from '../store/schema.js';
import { SessionRepository, sessionAmr } from '../store/sessions.js';
import { UserRepository, type User } from '../store/users.js';
import { TokenError } from '../tokens/errors.js';
import { REFRESH_TOKEN_DETAILS } from '../tokens/failures.js';
import { PASSWORD_AMR, type Clock, type TokenService } from '../tokens/token-service.js';
import type { Revocations } from './revocations.js';

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  refreshExpiresIn: number;
}

/**
 * An account change that commits with the sessions it ends. It gets the account as it is now, read
 * under the row lock the ending took (undefined when the user is gone), to judge its own preconditions.
 */
export type AccountChange = (trx: Kysely<Database>, account: User | undefined) => Promise<void>;

/** A session as its access tokens describe it: its id and how it was signed in (RFC 8176 `amr`). */
interface SignedInSession {
  id: string;
  amr: readonly string[];
}

type RotationOutcome = { kind: 'issued'; pair: TokenPair } | { kind: 'reused'; sessionId: string };

/**
 * Sessions are refresh-token families: a login starts one, every refresh rotates to a new token in
 * it, and presenting an already-used token outside the grace window is treated as theft and ends it
 * (seeds, Part 4.6).
 */
export class SessionService {
  private readonly sessions: SessionRepository;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly tokens: TokenService,
    private readonly revocations: Revocations,
    private readonly audit: AuditLog,
    private readonly options: {
      refreshReuseGraceSeconds: number;
      /**
       * Take row locks (PostgreSQL), always in one order: the user, then the session, then its
       * tokens. Decisions read the user under a share lock and changes take it for update first, so
       * a login or refresh never mints from an account that a concurrent change has just altered,
       * and a change never misses a session started beside it. Rotations lock the session row
       * before its tokens: the winner locking token then session while a reuse revoked session then
       * tokens deadlocked (seen in CI). SQLite runs one write transaction at a time.
       */
      rowLocks: boolean;
    },
    private readonly now: Clock = Date.now,
  ) {
    this.sessions = new SessionRepository(db);
  }

  /**
   * Starts a session for a user who just proved who they are, and returns its first token pair.
   * `checked` is the account as the proof was checked against it; the pair is minted from the account
   * as it is now, re-read under lock in the session's transaction, and nothing starts if its password
   * changed or it was deactivated or deleted in between (a reset committed during the slow password
   * check must not leave a session behind it).
   */
  async startSession(checked: User, client: ClientInfo, amr: readonly string[] = PASSWORD_AMR): Promise<TokenPair> {
    const sessionId = randomUUID();
    return this.db.transaction().execute(async (trx) => {
      const user = await new UserRepository(trx).findLocked(checked.id, this.shareLock);
      if (user === undefined || user.passwordHash !== checked.passwordHash)
        throw new GatepassError('invalid_credentials', SIGN_IN_DETAILS.invalid_credentials);
      if (!user.isActive) throw new GatepassError('account_disabled', SIGN_IN_DETAILS.account_disabled);
      const sessions = this.sessions.withExecutor(trx);
      await sessions.createSession({ id: sessionId, userId: user.id, ...client, amr, now: this.now() });
      await this.audit.record(
        { event: 'login_success', userId: user.id, client, details: { session_id: sessionId, amr: amr.join(' ') } },
        trx,
      );
      return this.issuePair(sessions, user, { id: sessionId, amr }, null);
    });
  }

  /**
   * Exchanges a refresh token for a new pair, in one transaction. Of several concurrent exchanges of
   * one token exactly one wins; the others get the grace answer when they come within the grace
   * window (a new access token and the same child refresh token the winner received, so the session
   * stays one chain), and otherwise end the session as a detected reuse.
   */
  async rotate(refreshToken: string, client: ClientInfo): Promise<TokenPair> {
    let claims;
    try {
      claims = this.tokens.verifyRefreshToken(refreshToken);
    } catch (error) {
      if (error instanceof TokenError) throw new GatepassError(error.code, REFRESH_TOKEN_DETAILS[error.code]);
      throw error;
    }
    const userId = Number(claims.sub);
    const outcome = await this.db.transaction().execute(async (trx): Promise<RotationOutcome> => {
      const sessions = this.sessions.withExecutor(trx);
      // The account first (under a share lock on PostgreSQL, see `rowLocks`), judged after the token below.
      const user = await new UserRepository(trx).findLocked(userId, this.shareLock);
      if (this.options.rowLocks) await sessions.lockSession(claims.sid);
      const now = this.now();
      const claimed = await sessions.claimRefreshToken(claims.jti, now);
      const record = await sessions.findRefreshToken(claims.jti);
      if (record === undefined || record.session_id !== claims.sid || record.user_id !== userId) {
        throw new GatepassError('invalid_token', REFRESH_TOKEN_DETAILS.invalid_token);
      }
      if (!claimed) {
        // Never used, so it was revoked with its session (logout, deactivation): simply invalid.
        if (record.used_at === null) throw new GatepassError('invalid_token', REFRESH_TOKEN_DETAILS.invalid_token);
        // Used before: a benign race only within the grace window of a live session; otherwise theft.
        if (record.revoked_at !== null || !this.withinGrace(record.used_at, now)) {
          if (await sessions.revokeSession(record.session_id, now, 'refresh_token_reused')) {
            await this.revocations.persist([this.revocations.session(record.session_id, userId)], trx);
          }
          await this.audit.record({ event: 'refresh_reuse_detected', userId, client, details: { session_id: record.session_id } }, trx);
          return { kind: 'reused', sessionId: record.session_id };
        }
      }
      const session = await sessions.findSession(record.session_id);
      if (session === undefined || session.revoked_at !== null)
        throw new GatepassError('invalid_token', REFRESH_TOKEN_DETAILS.invalid_token);
      if (user === undefined) throw new GatepassError('user_not_found', 'User no longer exists');
      if (!user.isActive) throw new GatepassError('account_disabled', SIGN_IN_DETAILS.account_disabled);
      await sessions.touchSession(session.id, now, client);
      await this.audit.record({ event: 'refresh', userId, client, details: { session_id: session.id, grace: !claimed } }, trx);
      const signedIn = { id: session.id, amr: sessionAmr(session) };
      if (claimed) return { kind: 'issued', pair: await this.issuePair(sessions, user, signedIn, record.jti) };
      const child = await sessions.findChildRefreshToken(session.id, record.jti);
      if (child === undefined) throw new GatepassError('invalid_token', REFRESH_TOKEN_DETAILS.invalid_token);
      return { kind: 'issued', pair: this.pairWithRefreshToken(user, signedIn, child) };
    });
    if (outcome.kind === 'reused') {
      await this.revocations.announce([this.revocations.session(outcome.sessionId, userId)]);
      throw new GatepassError('token_reused', 'Refresh token reuse detected. The session has been revoked; please log in again.');
    }
    return outcome.pair;
  }

  /** Every session the user ever had (for the data export). */
  async allSessions(userId: number): Promise<SessionRow[]> {
    return this.sessions.allSessions(userId);
  }

  /** How many sessions, of all users, can still be refreshed. */
  countLiveSessions(): Promise<number> {
    return this.sessions.countLive(this.now() - this.tokens.refreshTtlSeconds * 1000);
  }

  /** When the user signed in to a session of theirs that is still live (epoch ms); undefined for any other. */
  async signedInAt(sessionId: string, userId: number): Promise<number | undefined> {
    const session = await this.sessions.findSession(sessionId);
    if (session === undefined || session.user_id !== userId || session.revoked_at !== null) return undefined;
    return session.created_at;
  }

  /** The user's sessions that can still be refreshed, most recently used first. */
  async listSessions(userId: number): Promise<SessionRow[]> {
    return this.sessions.liveSessions(userId, this.now() - this.tokens.refreshTtlSeconds * 1000);
  }

  /**
   * Ends one session of a user (logout, revoke from the sessions list): its refresh tokens and its
   * access tokens stop working. Returns false when the user has no such session.
   */
  async endSession(userId: number, sessionId: string, entry: AuditEntry): Promise<boolean> {
    const session = await this.sessions.findSession(sessionId);
    if (session === undefined || session.user_id !== userId) return false;
    const revocation = this.revocations.session(sessionId, userId);
    // Only the request that ends it records and announces it: 20 concurrent revocations of one session are one event.
    const endedNow = await this.db.transaction().execute(async (trx) => {
      if (!(await this.sessions.withExecutor(trx).revokeSession(sessionId, this.now(), entry.event))) return false;
      await this.revocations.persist([revocation], trx);
      await this.audit.record({ ...entry, details: { ...entry.details, session_id: sessionId } }, trx);
      return true;
    });
    if (endedNow) await this.revocations.announce([revocation]);
    return true;
  }

  /**
   * Ends every session of a user, so that all their refresh and access tokens stop working
   * (logout-all, deactivation, deletion, password reset), recording `entry`. `change`, if given, runs
   * in the same transaction: the account change and the revocation it entails commit together.
   */
  async endAllSessions(userId: number, entry: AuditEntry, change?: AccountChange): Promise<void> {
    await this.endSessionsExcept(userId, undefined, entry, change);
  }

  /**
   * Refuses every access token of the user minted until now but leaves the sessions alive: their
   * next refresh carries the new role (role change). `change` sets the role, in the same transaction.
   */
  async changeRole(userId: number, entry: AuditEntry, change: (trx: Kysely<Database>) => Promise<void>): Promise<void> {
    const revocation = await this.db.transaction().execute(async (trx) => {
      await change(trx);
      // Dated after the change holds the user's row: every sign-in or refresh that read the old role
      // has committed by now, so its tokens fall before the cutoff; later ones read the new role.
      const cutoff = this.revocations.userTokens(userId);
      await this.revocations.persist([cutoff], trx);
      await this.audit.record(entry, trx);
      return cutoff;
    });
    await this.revocations.announce([revocation]);
  }

  /** Ends every session of a user but one (password change from that session), with `change` in the same transaction. */
  async endOtherSessions(userId: number, keepSessionId: string, entry: AuditEntry, change: AccountChange): Promise<void> {
    await this.endSessionsExcept(userId, keepSessionId, entry, change);
  }

  private async endSessionsExcept(
    userId: number,
    keepSessionId: string | undefined,
    entry: AuditEntry,
    change?: AccountChange,
  ): Promise<void> {
    const ended = await this.db.transaction().execute(async (trx) => {
      // Holding the user's row first, no sign-in can start a session beside this that the update below would miss.
      const account = await new UserRepository(trx).findLocked(userId, this.updateLock);
      const now = this.now();
      const ids = await this.sessions.withExecutor(trx).revokeUserSessions(userId, now, entry.event, keepSessionId);
      const revocations = ids.map((id) => this.revocations.session(id, userId));
      await this.revocations.persist(revocations, trx);
      await change?.(trx, account);
      // An open reset token, or a sign-in waiting for its second factor, would sign in again past what
      // just ended (after `change`, which may spend a reset token itself).
      await new PasswordResetTokenRepository(trx).spendAllOf(userId, now);
      await new MfaRepository(trx).spendChallengesOf(userId, now);
      await this.audit.record(entry, trx);
      return revocations;
    });
    await this.revocations.announce(ended);
  }

  /** Finds the session a refresh token belongs to, if the token is genuine (for logout with a body). */
  sessionOfRefreshToken(refreshToken: string): { userId: number; sessionId: string } | undefined {
    try {
      const claims = this.tokens.verifyRefreshToken(refreshToken);
      return { userId: Number(claims.sub), sessionId: claims.sid };
    } catch {
      return undefined;
    }
  }

  private get shareLock(): 'share' | undefined {
    return this.options.rowLocks ? 'share' : undefined;
  }

  private get updateLock(): 'update' | undefined {
    return this.options.rowLocks ? 'update' : undefined;
  }

  private withinGrace(usedAt: number | null, now: number): boolean {
    const graceMs = this.options.refreshReuseGraceSeconds * 1000;
    return graceMs > 0 && usedAt !== null && now - usedAt <= graceMs;
  }

  /** An access token of the session, carrying the account as it is now and how the session signed in. */
  private accessToken(user: User, session: SignedInSession): string {
    return this.tokens.issueAccessToken({
      userId: user.id,
      sessionId: session.id,
      role: user.role,
      emailVerified: user.emailVerified,
      amr: session.amr,
      mintedAt: this.revocations.mintTime(user.id),
    }).token;
  }

  private async issuePair(sessions: SessionRepository, user: User, session: SignedInSession, parentJti: string | null): Promise<TokenPair> {
    const accessToken = this.accessToken(user, session);
    const refresh = this.tokens.issueRefreshToken({ userId: user.id, sessionId: session.id });
    await sessions.insertRefreshToken({
      jti: refresh.claims.jti,
      session_id: session.id,
      user_id: user.id,
      parent_jti: parentJti,
      issued_at: refresh.claims.iat * 1000,
      expires_at: refresh.claims.exp * 1000,
    });
    return this.pair(accessToken, refresh.token);
  }

  /** A new access token beside an already issued refresh token (the grace answer). */
  private pairWithRefreshToken(user: User, session: SignedInSession, refresh: RefreshTokenRow): TokenPair {
    const reissued = this.tokens.signRefreshToken({
      userId: user.id,
      sessionId: session.id,
      jti: refresh.jti,
      iat: refresh.issued_at / 1000,
      exp: refresh.expires_at / 1000,
    });
    return this.pair(this.accessToken(user, session), reissued.token);
  }

  private pair(accessToken: string, refreshToken: string): TokenPair {
    return { accessToken, refreshToken, expiresIn: this.tokens.accessTtlSeconds, refreshExpiresIn: this.tokens.refreshTtlSeconds };
  }
}
