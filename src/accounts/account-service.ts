import type { Kysely } from 'kysely';
import type { AuditLog, ClientInfo } from '../audit/audit-log.js';
import { FieldError, GatepassError, SIGN_IN_DETAILS } from '../errors.js';
import type { AccountLockout } from '../limits/lockout.js';
import type { RateLimiter } from '../limits/rate-limiter.js';
import type { PasswordHasher } from '../passwords/hashing.js';
import { passwordPolicyViolation } from '../passwords/policy.js';
import type { SessionService } from '../sessions/session-service.js';
import type { Database } from '../store/schema.js';
import { DuplicateEmailError, UserRepository, type User } from '../store/users.js';
import { INVALID_CREDENTIALS } from '../tokens/failures.js';
import type { Clock } from '../tokens/token-service.js';
import { keepAnActiveAdmin } from './admin-invariants.js';
import { normalizeEmail } from './email.js';
import { removeSignInMethod } from './sign-in-methods.js';
import type { Role } from '../tokens/roles.js';

/** What a change of the password itself answers for an account that has none. */
const PASSWORD_NOT_SET = 'This account has no password; set one with password reset (POST /auth/password/forgot) first';

/**
 * How recent a sign-in must be to stand in for the password of an account that has none (passkeys or
 * an external provider only): long enough to sign in again and confirm, short enough that a session
 * left open is no key to the account's sensitive changes.
 */
export const RECENT_SIGN_IN_MS = 5 * 60_000;
const SIGN_IN_AGAIN = 'This account has no password: sign in again (with a passkey or a linked account) and retry within 5 minutes';

/**
 * What a signed-in user offers before a sensitive change (deletion, an email change, turning TOTP
 * off): the password as typed, when there was a field for it, and the session making the request.
 */
export interface Reauthentication {
  password: string | undefined;
  /** The body field the password comes in, for a 422 when an account that has one left it out. */
  passwordField: string;
  sessionId: string;
}

/** A deleted user's last event keeps no trace of where it came from. */
const NO_CLIENT: ClientInfo = { ip: null, userAgent: null };

/**
 * Refuses a change whose password check is stale: the password was reset or changed while it was
 * being checked. `current` is the account as the change's transaction holds it (SessionService).
 */
function assertPasswordUnchanged(current: User | undefined, checked: User, wrongPasswordDetail: string): void {
  if (current === undefined || current.passwordHash !== checked.passwordHash)
    throw new GatepassError('invalid_credentials', wrongPasswordDetail);
}

/** Registration, login and the account owner's own changes; every one of them audited. */
export class AccountService {
  private readonly users: UserRepository;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly passwords: PasswordHasher,
    private readonly sessions: SessionService,
    private readonly lockout: AccountLockout,
    /** Re-authentications (password change, deletion) per account and minute, beside the lockout. */
    private readonly reauthentications: RateLimiter,
    private readonly audit: AuditLog,
    private readonly now: Clock = Date.now,
    /** REQUIRE_EMAIL_VERIFICATION: sign-in of an account whose address is unverified is refused. */
    private readonly options: { requireEmailVerification?: boolean } = {},
  ) {
    this.users = new UserRepository(db);
  }

  /**
   * Creates an account. Only trusted callers (bootstrap, CLI) may pass a role, or vouch for the
   * address (`emailVerified`: an operator typed it, no mail needed); the API never does.
   */
  async register(
    input: { email: string; password: string; fullName: string | null; role?: Role; emailVerified?: boolean },
    client: ClientInfo,
  ): Promise<User> {
    const violation = passwordPolicyViolation(input.password);
    if (violation !== undefined) throw new FieldError(['body', 'password'], violation.message, violation.type);
    const email = normalizeEmail(input.email);
    // Cheap pre-check so a taken email does not cost a hash; the unique index still decides races.
    if ((await this.users.findByEmail(email)) !== undefined) throw new GatepassError('email_taken', 'Email already registered');
    const passwordHash = await this.passwords.hash(input.password);
    try {
      return await this.db.transaction().execute(async (trx) => {
        const user = await new UserRepository(trx).create({
          email,
          passwordHash,
          fullName: input.fullName,
          role: input.role,
          emailVerified: input.emailVerified === true,
          now: this.now(),
        });
        await this.audit.record({ event: 'register', userId: user.id, client, details: { role: user.role } }, trx);
        return user;
      });
    } catch (error) {
      if (error instanceof DuplicateEmailError) throw new GatepassError('email_taken', 'Email already registered');
      throw error;
    }
  }

  /**
   * Checks an email and password. An unknown email costs one dummy verification so that it cannot be
   * told apart from a wrong password by timing, and it locks out like a real account; "disabled" is
   * only revealed after a correct password.
   */
  async authenticate(emailInput: string, password: string, client: ClientInfo): Promise<User> {
    const email = normalizeEmail(emailInput);
    const user = await this.users.findByEmail(email);
    const userId = user?.id ?? null;
    try {
      await this.lockout.beginAttempt(email);
    } catch (error) {
      await this.audit.record({ event: 'login_locked', userId, client });
      throw error;
    }
    // An account with no password (passkeys or an external provider only) costs a dummy verification too.
    const { valid, needsRehash } =
      user?.passwordHash == null
        ? { valid: await this.passwords.verifyDummy(password), needsRehash: false }
        : await this.passwords.verify(password, user.passwordHash);
    if (user === undefined || !valid || user.passwordHash === null) {
      const reason = user === undefined ? 'unknown_email' : user.passwordHash === null ? 'no_password' : 'wrong_password';
      await this.audit.record({ event: 'login_failure', userId, client, details: { reason } });
      throw new GatepassError('invalid_credentials', SIGN_IN_DETAILS.invalid_credentials);
    }
    await this.lockout.recordSuccess(email);
    if (!user.isActive) {
      await this.audit.record({ event: 'login_failure', userId, client, details: { reason: 'account_disabled' } });
      throw new GatepassError('account_disabled', SIGN_IN_DETAILS.account_disabled);
    }
    // After the password check, like "disabled": nobody learns this about an account without its password.
    if (this.options.requireEmailVerification === true && !user.emailVerified) {
      await this.audit.record({ event: 'login_failure', userId, client, details: { reason: 'email_not_verified' } });
      throw new GatepassError('email_not_verified', 'Email not verified');
    }
    if (needsRehash) {
      // Upgrade legacy bcrypt (and outdated argon2) hashes now that we hold the plain password.
      const upgraded = await this.users.update(user.id, { passwordHash: await this.passwords.hash(password) }, this.now());
      return upgraded ?? user;
    }
    return user;
  }

  /** The user behind an access token; a token whose user is gone is no credential at all. */
  async currentUser(userId: number): Promise<User> {
    const user = await this.users.findById(userId);
    if (user === undefined) throw new GatepassError('invalid_token', INVALID_CREDENTIALS);
    return user;
  }

  async updateProfile(userId: number, changes: { fullName: string | null }): Promise<User> {
    const user = await this.users.update(userId, { fullName: changes.fullName }, this.now());
    if (user === undefined) throw new GatepassError('invalid_token', INVALID_CREDENTIALS);
    return user;
  }

  /**
   * Changes the password after checking the current one, and ends every other session: whoever else
   * held one (perhaps the reason for the change) is out, the caller stays signed in.
   */
  async changePassword(
    userId: number,
    keepSessionId: string,
    currentPassword: string,
    newPassword: string,
    client: ClientInfo,
  ): Promise<void> {
    const user = await this.currentUser(userId);
    await this.checkCurrentPassword(user, currentPassword, 'Current password is incorrect');
    const passwordHash = await this.hashNewPassword(newPassword, ['body', 'new_password']);
    await this.sessions.endOtherSessions(userId, keepSessionId, { event: 'password_changed', userId, client }, async (trx, current) => {
      assertPasswordUnchanged(current, user, 'Current password is incorrect');
      await new UserRepository(trx).update(userId, { passwordHash }, this.now());
    });
  }

  /**
   * Removes the password of an account that has another way to sign in (a passkey; 409
   * last_sign_in_method otherwise), after checking it, and ends every other session as a change does.
   * A password can come back only through password reset, which proves the mailbox.
   */
  async removePassword(userId: number, keepSessionId: string, currentPassword: string, client: ClientInfo): Promise<void> {
    const user = await this.currentUser(userId);
    await this.checkCurrentPassword(user, currentPassword, 'Current password is incorrect');
    await this.sessions.endOtherSessions(userId, keepSessionId, { event: 'password_removed', userId, client }, async (trx, current) => {
      assertPasswordUnchanged(current, user, 'Current password is incorrect');
      await removeSignInMethod(trx, userId, () => new UserRepository(trx).update(userId, { passwordHash: null }, this.now()));
    });
  }

  /** Sets a new password without the old one (password reset; an account with none gets its first) and ends every session. */
  async resetPassword(
    user: User,
    newPassword: string,
    client: ClientInfo,
    inTransaction: (trx: Kysely<Database>) => Promise<void>,
  ): Promise<void> {
    const passwordHash = await this.hashNewPassword(newPassword, ['body', 'new_password']);
    await this.sessions.endAllSessions(user.id, { event: 'password_reset', userId: user.id, client }, async (trx) => {
      await inTransaction(trx);
      // The reset link was read in the account's mailbox: that verifies the address as a verification link would.
      const verified = user.emailVerified ? {} : { emailVerifiedAt: this.now() };
      await new UserRepository(trx).update(user.id, { passwordHash, ...verified }, this.now());
    });
    // Whoever reset it owns the mailbox: a lock from someone else's guessing should not keep them out.
    await this.lockout.recordSuccess(user.email);
  }

  /**
   * Erases the account after re-authentication (its password, or for an account without one a recent
   * sign-in): the user row, and with it (by cascade) their
   * sessions, refresh-token records and tasks; their audit events lose ip, user agent and details.
   * Their access tokens are revoked; that record holds no personal data and outlives the row until
   * the tokens expire.
   */
  async deleteAccount(userId: number, proof: Reauthentication): Promise<void> {
    const user = await this.currentUser(userId);
    await this.reauthenticate(user, proof, 'Password is incorrect');
    await this.sessions.endAllSessions(userId, { event: 'user_deleted', userId, client: NO_CLIENT }, async (trx, current) => {
      assertPasswordUnchanged(current, user, 'Password is incorrect');
      await keepAnActiveAdmin(trx, userId);
      await this.audit.anonymize(userId, trx);
      await new UserRepository(trx).delete(userId);
    });
  }

  /**
   * Deactivates the account and ends every session, so all its tokens stop working at once.
   * `actorId` is the admin who did it, when it was not the user.
   */
  async deactivate(userId: number, client: ClientInfo, actorId: number | null = null): Promise<void> {
    await this.currentUser(userId);
    await this.sessions.endAllSessions(userId, { event: 'user_deactivated', userId, actorId, client }, async (trx) => {
      await keepAnActiveAdmin(trx, userId);
      await new UserRepository(trx).update(userId, { isActive: false }, this.now());
    });
  }

  /** Re-activates a deactivated account (an admin's decision); the user logs in again. */
  async activate(userId: number, client: ClientInfo, actorId: number | null): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await new UserRepository(trx).update(userId, { isActive: true }, this.now());
      await this.audit.record({ event: 'user_activated', userId, actorId, client }, trx);
    });
  }

  /**
   * Creates the configured admin at start when no account has that email yet (ADMIN_EMAIL and
   * ADMIN_PASSWORD). An existing account is left as it is. Returns whether it was created.
   */
  async ensureAdmin(email: string, password: string): Promise<boolean> {
    if ((await this.users.findByEmail(normalizeEmail(email))) !== undefined) return false;
    try {
      await this.register({ email, password, fullName: null, role: 'admin', emailVerified: true }, { ip: null, userAgent: 'bootstrap' });
      return true;
    } catch (error) {
      // Another instance starting at the same moment created it first.
      if (error instanceof GatepassError && error.code === 'email_taken') return false;
      throw error;
    }
  }

  /**
   * Re-authenticates a signed-in user for a sensitive change made by another service (an email
   * change, turning TOTP off), with reauthenticate's rules; returns the account as checked.
   */
  async confirmIdentity(userId: number, proof: Reauthentication, wrongPasswordDetail = 'Password is incorrect'): Promise<User> {
    const user = await this.currentUser(userId);
    await this.reauthenticate(user, proof, wrongPasswordDetail);
    return user;
  }

  /**
   * Checks that a signed-in user is still who signed in, before a sensitive change: the password of an
   * account that has one (422 when left out), else a sign-in of this very session less than
   * RECENT_SIGN_IN_MS ago (403 reauthentication_required: sign in again with a passkey or provider).
   */
  private async reauthenticate(user: User, proof: Reauthentication, wrongPasswordDetail: string): Promise<void> {
    if (user.passwordHash === null) {
      const signedInAt = await this.sessions.signedInAt(proof.sessionId, user.id);
      if (signedInAt === undefined || this.now() - signedInAt > RECENT_SIGN_IN_MS)
        throw new GatepassError('reauthentication_required', SIGN_IN_AGAIN);
      return;
    }
    if (proof.password === undefined) throw new FieldError(['body', proof.passwordField], 'Field required', 'missing');
    await this.checkCurrentPassword(user, proof.password, wrongPasswordDetail);
  }

  /**
   * Checks the password of a signed-in user. Counted by the login lockout of the account and limited
   * per account, so a stolen access token cannot be turned into a brute force of the password. An
   * account without a password answers 409 password_not_set (changing or removing it needs one).
   */
  private async checkCurrentPassword(user: User, password: string, wrongPasswordDetail: string): Promise<void> {
    if (user.passwordHash === null) throw new GatepassError('password_not_set', PASSWORD_NOT_SET);
    await this.reauthentications.consume('reauthenticate', String(user.id));
    await this.lockout.beginAttempt(user.email);
    if (!(await this.passwords.verify(password, user.passwordHash)).valid)
      throw new GatepassError('invalid_credentials', wrongPasswordDetail);
    await this.lockout.recordSuccess(user.email);
  }

  private async hashNewPassword(password: string, loc: string[]): Promise<string> {
    const violation = passwordPolicyViolation(password);
    if (violation !== undefined) throw new FieldError(loc, violation.message, violation.type);
    return this.passwords.hash(password);
  }
}
