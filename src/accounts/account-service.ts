import { FieldError, GatepassError } from '../errors.js';
import type { AccountLockout } from '../limits/lockout.js';
import type { PasswordHasher } from '../passwords/hashing.js';
import { passwordPolicyViolation } from '../passwords/policy.js';
import type { SessionService } from '../sessions/session-service.js';
import { DuplicateEmailError, type User, type UserRepository } from '../store/users.js';
import type { Clock } from '../tokens/token-service.js';
import { normalizeEmail } from './email.js';

const INCORRECT_CREDENTIALS = 'Incorrect email or password';

/** Registration, login and the account owner's own changes. */
export class AccountService {
  constructor(
    private readonly users: UserRepository,
    private readonly passwords: PasswordHasher,
    private readonly sessions: SessionService,
    private readonly lockout: AccountLockout,
    private readonly now: Clock = Date.now,
  ) {}

  async register(input: { email: string; password: string; fullName: string | null }): Promise<User> {
    const violation = passwordPolicyViolation(input.password);
    if (violation !== undefined) throw new FieldError(['body', 'password'], violation.message, violation.type);
    const email = normalizeEmail(input.email);
    // Cheap pre-check so a taken email does not cost a hash; the unique index still decides races.
    if ((await this.users.findByEmail(email)) !== undefined) throw new GatepassError('email_taken', 'Email already registered');
    const passwordHash = await this.passwords.hash(input.password);
    try {
      return await this.users.create({ email, passwordHash, fullName: input.fullName, now: this.now() });
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
  async authenticate(emailInput: string, password: string): Promise<User> {
    const email = normalizeEmail(emailInput);
    await this.lockout.assertNotLocked(email);
    const user = await this.users.findByEmail(email);
    const { valid, needsRehash } = user === undefined ? { valid: await this.passwords.verifyDummy(password), needsRehash: false } : await this.passwords.verify(password, user.passwordHash);
    if (user === undefined || !valid) {
      await this.lockout.recordFailure(email);
      throw new GatepassError('invalid_credentials', INCORRECT_CREDENTIALS);
    }
    await this.lockout.recordSuccess(email);
    if (!user.isActive) throw new GatepassError('account_disabled', 'Account is disabled');
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
    if (user === undefined) throw new GatepassError('invalid_token', 'Could not validate credentials');
    return user;
  }

  async updateProfile(userId: number, changes: { fullName: string | null }): Promise<User> {
    const user = await this.users.update(userId, { fullName: changes.fullName }, this.now());
    if (user === undefined) throw new GatepassError('invalid_token', 'Could not validate credentials');
    return user;
  }

  /**
   * Changes the password after checking the current one, and ends every other session: whoever else
   * held one (perhaps the reason for the change) is out, the caller stays signed in.
   */
  async changePassword(userId: number, keepSessionId: string, currentPassword: string, newPassword: string): Promise<void> {
    const user = await this.currentUser(userId);
    if (!(await this.passwords.verify(currentPassword, user.passwordHash)).valid) {
      throw new GatepassError('invalid_credentials', 'Current password is incorrect');
    }
    const violation = passwordPolicyViolation(newPassword);
    if (violation !== undefined) throw new FieldError(['body', 'new_password'], violation.message, violation.type);
    await this.users.update(userId, { passwordHash: await this.passwords.hash(newPassword) }, this.now());
    await this.sessions.endOtherSessions(userId, keepSessionId, 'password_changed');
  }

  /**
   * Erases the account after checking its password: the user row, and with it (by cascade) their
   * sessions, refresh-token records and tasks. Their access tokens are revoked first; that
   * revocation record holds no personal data and outlives the row until the tokens expire.
   */
  async deleteAccount(userId: number, password: string): Promise<void> {
    const user = await this.currentUser(userId);
    if (!(await this.passwords.verify(password, user.passwordHash)).valid) {
      throw new GatepassError('invalid_credentials', 'Password is incorrect');
    }
    await this.sessions.endAllSessions(userId, 'account_deleted');
    await this.users.delete(userId);
  }

  /** Deactivates the account and ends every session, so all its tokens stop working at once. */
  async deactivate(userId: number): Promise<void> {
    await this.users.update(userId, { isActive: false }, this.now());
    await this.sessions.endAllSessions(userId, 'account_deactivated');
  }
}
