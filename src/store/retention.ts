import type { Kysely } from 'kysely';
import type { Logger } from '../logging.js';
import type { Database } from './schema.js';

/** A running server sweeps hourly, the first time a minute after it starts (not in short CLI runs). */
export const RETENTION_SWEEP_MS = 3_600_000;
const FIRST_SWEEP_MS = 60_000;
/**
 * Rows are kept this long past their expiry, so that no check near the expiry (the verification
 * leeway is at most 5 minutes) and no instance whose clock runs behind finds a row gone that it
 * would still have read.
 */
const KEEP_AFTER_EXPIRY_MS = 3_600_000;

export interface SweepResult {
  revocations: number;
  refreshTokens: number;
  passwordResetTokens: number;
  emailVerificationTokens: number;
  mfaChallenges: number;
  oauthFlows: number;
}

/**
 * Deletes the rows no answer can depend on any more, which would otherwise pile up for as long as
 * a server runs: revocations past the lifetime of the access tokens they name, refresh-token records
 * past their token's expiry (an expired refresh token is refused before its record is read), and
 * expired password-reset tokens, MFA challenges and external sign-in flows (an unknown token gets the same answer as an
 * expired one). Sessions and the audit trail stay: users see their session history in their data
 * export.
 */
export class RetentionSweeper {
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<unknown> | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly now: () => number,
    private readonly log: Logger,
  ) {}

  async sweep(): Promise<SweepResult> {
    const now = this.now();
    const before = now - KEEP_AFTER_EXPIRY_MS;
    const revocations = await this.db.deleteFrom('revocations').where('expires_at', '<', before).executeTakeFirst();
    const refreshTokens = await this.db.deleteFrom('refresh_tokens').where('expires_at', '<', before).executeTakeFirst();
    const resetTokens = await this.db.deleteFrom('password_reset_tokens').where('expires_at', '<', before).executeTakeFirst();
    // An expired verification token is refused like an unknown one, and a pending email change ends with it.
    const verificationTokens = await this.db.deleteFrom('email_verification_tokens').where('expires_at', '<', before).executeTakeFirst();
    const mfaChallenges = await this.db.deleteFrom('mfa_challenges').where('expires_at', '<', before).executeTakeFirst();
    // An expired external sign-in flow is refused like an unknown state.
    const oauthFlows = await this.db.deleteFrom('oauth_flows').where('expires_at', '<', before).executeTakeFirst();
    return {
      revocations: Number(revocations.numDeletedRows),
      refreshTokens: Number(refreshTokens.numDeletedRows),
      passwordResetTokens: Number(resetTokens.numDeletedRows),
      emailVerificationTokens: Number(verificationTokens.numDeletedRows),
      mfaChallenges: Number(mfaChallenges.numDeletedRows),
      oauthFlows: Number(oauthFlows.numDeletedRows),
    };
  }

  /** Sweeps on a schedule until `close`; a failed sweep is logged and tried again at the next one. */
  start(): void {
    const run = () => {
      this.sweeping ??= this.sweep()
        .catch((error: unknown) => this.log.error({ err: error }, 'retention sweep failed; will retry at the next one'))
        .finally(() => (this.sweeping = undefined));
    };
    this.timer = setTimeout(() => {
      run();
      this.timer = setInterval(run, RETENTION_SWEEP_MS);
      this.timer.unref();
    }, FIRST_SWEEP_MS);
    this.timer.unref();
  }

  async close(): Promise<void> {
    // Node clears a timeout and an interval alike: the timer is one or the other.
    clearTimeout(this.timer);
    await this.sweeping;
  }
}
