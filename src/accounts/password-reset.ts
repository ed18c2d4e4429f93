import type { Kysely } from 'kysely';
import type { AuditLog, ClientInfo } from '../audit/audit-log.js';
import { GatepassError } from '../errors.js';
import type { Logger } from '../logging.js';
import type { Mailer } from '../mail/mailer.js';
import type { Database } from '../store/schema.js';
import type { RateLimiter } from '../limits/rate-limiter.js';
import { PasswordResetTokenRepository } from '../store/password-reset-tokens.js';
import { UserRepository } from '../store/users.js';
import type { Clock } from '../tokens/token-service.js';
import type { AccountService } from './account-service.js';
import { normalizeEmail } from './email.js';
import { digestOf, newSecretToken } from './secret-tokens.js';

export const RESET_TOKEN_TTL_MS = 15 * 60 * 1000;
/** Reset emails one account receives at most per hour, from any number of addresses. */
export const RESET_EMAILS_PER_HOUR = 3;
const INVALID_RESET_TOKEN = 'Invalid or expired reset token';

/**
 * Password reset by email: a single-use, 15-minute token, stored only as its SHA-256, so a
 * database leak reveals no usable token. A request answers the same whether or not the email is
 * known: the work for a known one happens after the answer.
 */
export class PasswordResetService {
  private readonly users: UserRepository;
  private readonly tokens: PasswordResetTokenRepository;

  constructor(
    db: Kysely<Database>,
    private readonly accounts: AccountService,
    private readonly mailer: Mailer,
    private readonly audit: AuditLog,
    private readonly log: Logger,
    /** Reset emails per account (RESET_EMAILS_PER_HOUR): a flood of requests must not flood a mailbox. */
    private readonly emailsPerAccount: RateLimiter,
    private readonly now: Clock = Date.now,
  ) {
    this.users = new UserRepository(db);
    this.tokens = new PasswordResetTokenRepository(db);
  }

  /** Starts a reset for `email` if it names an active account; resolves once that work is done (tests await it, the route does not). */
  async request(emailInput: string, client: ClientInfo): Promise<void> {
    const user = await this.users.findByEmail(normalizeEmail(emailInput));
    await this.audit.record({
      event: 'password_reset_requested',
      userId: user?.id ?? null,
      client,
      details: { known: user !== undefined },
    });
    if (user === undefined || !user.isActive) return;
    // Counted after the answer left, so a throttled request looks like any other.
    if (!(await this.emailsPerAccount.allows('password-reset-email', String(user.id)))) return;
    const token = newSecretToken();
    const now = this.now();
    await this.tokens.insert({ token_hash: digestOf(token), user_id: user.id, created_at: now, expires_at: now + RESET_TOKEN_TTL_MS });
    await this.mailer.send({
      to: user.email,
      subject: 'Reset your gatepass password',
      text: [
        'Someone (hopefully you) asked to reset the password of this account.',
        'To choose a new password, send this token to POST /auth/password/reset within 15 minutes:',
        '',
        `token=${token}`,
        '',
        'If it was not you, ignore this message: your password has not changed.',
      ].join('\n'),
    });
  }

  /** Runs `request` without making the caller wait, logging (never throwing) a failure. */
  requestInBackground(email: string, client: ClientInfo): void {
    this.request(email, client).catch((error: unknown) => this.log.error({ err: error }, 'password reset request failed'));
  }

  /**
   * Sets a new password with a reset token; the token is spent and every session of the user ends
   * (and with them every other open reset token: see SessionService.endAllSessions).
   */
  async reset(token: string, newPassword: string, client: ClientInfo): Promise<void> {
    const row = await this.tokens.findByHash(digestOf(token));
    if (row === undefined || row.used_at !== null || row.expires_at <= this.now())
      throw new GatepassError('invalid_reset_token', INVALID_RESET_TOKEN);
    const user = await this.users.findById(row.user_id);
    if (user === undefined || !user.isActive) throw new GatepassError('invalid_reset_token', INVALID_RESET_TOKEN);
    await this.accounts.resetPassword(user, newPassword, client, async (trx) => {
      // Spent in the transaction that sets the password: of concurrent resets (or a reset racing a
      // password change or logout-all, which spend it too), at most one goes through.
      if (!(await new PasswordResetTokenRepository(trx).spend(row.token_hash, this.now())))
        throw new GatepassError('invalid_reset_token', INVALID_RESET_TOKEN);
    });
  }
}
