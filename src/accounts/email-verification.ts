import { digestOf, newSecretToken } from './secret-tokens.js';
import type { Kysely } from 'kysely';
import type { AuditLog, ClientInfo } from '../audit/audit-log.js';
import { GatepassError } from '../errors.js';
import type { RateLimiter } from '../limits/rate-limiter.js';
import type { Logger } from '../logging.js';
import type { Mailer, MailMessage } from '../mail/mailer.js';
import { EmailVerificationTokenRepository } from '../store/email-verification-tokens.js';
import type { Database } from '../store/schema.js';
import { DuplicateEmailError, UserRepository, type User } from '../store/users.js';
import type { Clock } from '../tokens/token-service.js';
import type { AccountService, Reauthentication } from './account-service.js';
import { normalizeEmail } from './email.js';

export const VERIFICATION_TOKEN_TTL_MS = 24 * 3600 * 1000;
/**
 * Verification emails one account causes at most per hour (registration, resends and email changes
 * together): an email change mails an address of the caller's choosing, so an account must not be
 * turned into a way of flooding someone else's mailbox.
 */
export const VERIFICATION_EMAILS_PER_HOUR = 3;
const INVALID_VERIFICATION_TOKEN = 'Invalid or expired verification token';
const EMAIL_TAKEN = 'Email already registered';
const BUCKET = 'email-verification';

/**
 * Email verification: a single-use, 24-hour token per address, stored only as its SHA-256. It
 * verifies the address it was issued for; when that is a new address (an email change), verifying it
 * is what switches the account over, so an account never carries an address nobody has proven to own.
 */
export class EmailVerificationService {
  private readonly users: UserRepository;
  private readonly tokens: EmailVerificationTokenRepository;
  /** Mail sent after the answer left, awaited by `settle` so that a closing app does not cut it off. */
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly accounts: AccountService,
    private readonly mailer: Mailer,
    private readonly audit: AuditLog,
    private readonly log: Logger,
    /** Verification emails per account (VERIFICATION_EMAILS_PER_HOUR). */
    private readonly emailsPerAccount: RateLimiter,
    /** The web page's base URL (PUBLIC_URL): the mail links to it. */
    private readonly publicUrl: string,
    private readonly now: Clock = Date.now,
  ) {
    this.users = new UserRepository(db);
    this.tokens = new EmailVerificationTokenRepository(db);
  }

  /**
   * Mails a new account its first verification token without making the caller wait: a mail server
   * that is down must not make registration fail, so a failure is logged (the user can resend).
   */
  sendAfterRegistration(user: User, client: ClientInfo): void {
    this.background(async () => {
      if (!(await this.emailsPerAccount.allows(BUCKET, String(user.id)))) return;
      await this.mail(await this.issue(user, user.email, client));
    }, 'registration verification mail failed');
  }

  /**
   * Sends a new token: to the address of a pending email change if there is one, else to the
   * account's address. 409 `already_verified` when there is nothing left to verify; 429 past the
   * per-account budget (the caller is signed in, so saying so reveals nothing).
   */
  async resend(userId: number, client: ClientInfo): Promise<void> {
    const user = await this.accounts.currentUser(userId);
    const pending = await this.tokens.pendingChange(user.id, user.email, this.now());
    if (pending === undefined && user.emailVerified) throw new GatepassError('already_verified', 'Email already verified');
    await this.emailsPerAccount.consume(BUCKET, String(user.id));
    const issued = await this.issue(user, pending?.email ?? user.email, client);
    this.background(() => this.mail(issued), 'verification mail failed');
  }

  /**
   * Starts an email change after a re-authentication (the password, counted like every one): the
   * new address gets a token, and the account keeps its current address until that token is used.
   * Returns the account as it stands, unchanged.
   */
  async requestEmailChange(userId: number, newEmail: string, proof: Reauthentication, client: ClientInfo): Promise<User> {
    const user = await this.accounts.confirmIdentity(userId, proof, 'Current password is incorrect');
    const email = normalizeEmail(newEmail);
    if (email === user.email) return user;
    // Checked after the password, so that the answer tells a stranger nothing about who is registered.
    const holder = await this.users.findByEmail(email);
    if (holder !== undefined && holder.id !== user.id) throw new GatepassError('email_taken', EMAIL_TAKEN);
    await this.emailsPerAccount.consume(BUCKET, String(user.id));
    const issued = await this.issue(user, email, client, 'email_change_requested');
    this.background(() => this.mail(issued), 'email change verification mail failed');
    return user;
  }

  /**
   * Spends a token and marks its address verified; when the token was issued for a new address, the
   * account switches to it in the same transaction (409 `email_taken` if someone took it meanwhile,
   * the token left unspent) and the old address is told.
   */
  async verify(token: string, client: ClientInfo): Promise<void> {
    const row = await this.tokens.findByHash(digestOf(token));
    if (row === undefined || row.used_at !== null || row.expires_at <= this.now())
      throw new GatepassError('invalid_verification_token', INVALID_VERIFICATION_TOKEN);
    const previousEmail = await this.db.transaction().execute(async (trx) => {
      const now = this.now();
      // Spent first: of concurrent verifications of one token exactly one gets past this line.
      if (!(await new EmailVerificationTokenRepository(trx).spend(row.token_hash, now)))
        throw new GatepassError('invalid_verification_token', INVALID_VERIFICATION_TOKEN);
      const users = new UserRepository(trx);
      const user = await users.findById(row.user_id);
      if (user === undefined || !user.isActive) throw new GatepassError('invalid_verification_token', INVALID_VERIFICATION_TOKEN);
      if (row.email === user.email) {
        if (!user.emailVerified) await users.update(user.id, { emailVerifiedAt: now }, now);
        await this.audit.record({ event: 'email_verified', userId: user.id, client }, trx);
        return undefined;
      }
      try {
        await users.changeEmail(user.id, row.email, now);
      } catch (error) {
        if (error instanceof DuplicateEmailError) throw new GatepassError('email_taken', EMAIL_TAKEN);
        throw error;
      }
      await this.audit.record({ event: 'email_changed', userId: user.id, client, details: { from: user.email, to: row.email } }, trx);
      return user.email;
    });
    if (previousEmail !== undefined) {
      this.background(() => this.mailer.send(changeNotice(previousEmail, row.email)), 'email change notice failed');
    }
  }

  /** Resolves once every mail sent in the background has been sent or has failed. */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Creates a token for `email`, voiding the user's older ones so that only the newest mail works. */
  private async issue(
    user: User,
    email: string,
    client: ClientInfo,
    event: 'email_verification_sent' | 'email_change_requested' = 'email_verification_sent',
  ): Promise<{ email: string; token: string; change: boolean }> {
    const token = newSecretToken();
    const now = this.now();
    const change = email !== user.email;
    await this.db.transaction().execute(async (trx) => {
      const tokens = new EmailVerificationTokenRepository(trx);
      await tokens.spendAllOf(user.id, now);
      await tokens.insert({
        token_hash: digestOf(token),
        user_id: user.id,
        email,
        created_at: now,
        expires_at: now + VERIFICATION_TOKEN_TTL_MS,
      });
      await this.audit.record({ event, userId: user.id, client, details: change ? { to: email } : { change: false } }, trx);
    });
    return { email, token, change };
  }

  private async mail({ email, token, change }: { email: string; token: string; change: boolean }): Promise<void> {
    await this.mailer.send({
      to: email,
      subject: 'Verify your gatepass email address',
      text: [
        change
          ? 'Someone (hopefully you) asked to use this address for their gatepass account.'
          : 'Someone (hopefully you) created a gatepass account with this address.',
        'To verify it, open this link within 24 hours:',
        '',
        `${this.publicUrl}/#verify-email=${token}`,
        '',
        'or send this token to POST /auth/email/verify:',
        '',
        `token=${token}`,
        '',
        change
          ? 'If it was not you, ignore this message: the account keeps its current address.'
          : 'If it was not you, ignore this message.',
      ].join('\n'),
    });
  }

  private background(work: () => Promise<void>, failure: string): void {
    const running = work()
      .catch((error: unknown) => this.log.error({ err: error }, failure))
      .finally(() => this.inFlight.delete(running));
    this.inFlight.add(running);
  }
}

function changeNotice(oldEmail: string, newEmail: string): MailMessage {
  return {
    to: oldEmail,
    subject: 'Your gatepass email address was changed',
    text: [
      `The email address of your gatepass account was changed to ${newEmail}.`,
      'From now on you sign in with the new address; this one no longer belongs to the account.',
      '',
      'If it was not you, contact your administrator at once.',
    ].join('\n'),
  };
}
