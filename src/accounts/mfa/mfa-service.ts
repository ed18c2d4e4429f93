import { digestOf, newSecretToken } from '../secret-tokens.js';
import type { Kysely } from 'kysely';
import type { AuthenticationResponseJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import QRCode from 'qrcode';
import type { AuditLog, ClientInfo } from '../../audit/audit-log.js';
import { GatepassError } from '../../errors.js';
import type { AccountLockout } from '../../limits/lockout.js';
import type { Logger } from '../../logging.js';
import type { SessionService, TokenPair } from '../../sessions/session-service.js';
import { MfaRepository, type MfaChallengeRow } from '../../store/mfa.js';
import type { Database } from '../../store/schema.js';
import { UserRepository, type User } from '../../store/users.js';
import type { Clock } from '../../tokens/token-service.js';
import type { AccountService, Reauthentication } from '../account-service.js';
import type { PasskeyService } from '../passkeys.js';
import { newRecoveryCodes, normalizeRecoveryCode, recoveryCodeHash } from './recovery-codes.js';
import { SecretBox } from './secret-box.js';
import { matchTotpStep, newTotpSecret, totpUri } from './totp.js';

/** What a login answers instead of tokens when the account has TOTP on (API.md "Two-factor sign-in"); `passkey` joins them when the account has one. */
export const MFA_METHODS = ['totp', 'recovery_code'] as const;
export const SECOND_STEP_METHODS = [...MFA_METHODS, 'passkey'] as const;
export type SecondStepMethod = (typeof SECOND_STEP_METHODS)[number];
/**
 * The RFC 8176 name of the sign-in a second step follows: a password, or an external provider. The
 * session it completes carries `[firstFactor, 'otp']` (TOTP and recovery codes alike).
 */
export type FirstFactor = 'pwd' | 'fed';
/** Long enough to open an authenticator app; short enough that a stolen mfa_token is of little use. */
export const MFA_TOKEN_TTL_MS = 5 * 60_000;
/** Wrong codes an mfa_token survives; the sixth submission is refused whatever its code. */
export const MFA_TOKEN_MAX_FAILURES = 5;

export const MFA_DETAILS = {
  invalid_code: 'Invalid two-factor code',
  invalid_mfa_token: 'Invalid or expired MFA token',
  mfa_required: 'A current two-factor code is required',
  mfa_already_enabled: 'Two-factor authentication is already on',
  mfa_not_enabled: 'Two-factor authentication is not on',
  setup_first: 'Start two-factor setup first: POST /auth/mfa/totp/setup',
  form_login: 'Two-factor authentication is on for this account: log in with JSON and complete POST /auth/mfa/verify',
} as const;

export interface MfaOptions {
  /** The `issuer` of otpauth URIs: the name authenticator apps show. */
  issuer: string;
  /** The server secret TOTP secrets are encrypted under (MFA_ENCRYPTION_KEY, or JWT_REFRESH_SECRET). */
  encryptionKey: string;
}

export interface TotpEnrolment {
  secret: string;
  otpauthUri: string;
  /** The URI as a QR code, an SVG document. */
  qrSvg: string;
}

type CodeMethod = (typeof MFA_METHODS)[number];

/** A code that is wrong, replayed or already spent: one answer for all, so that none is told apart. */
class CodeRejected extends Error {}

const invalidCode = () => new GatepassError('invalid_code', MFA_DETAILS.invalid_code);
const invalidMfaToken = () => new GatepassError('invalid_mfa_token', MFA_DETAILS.invalid_mfa_token);

/**
 * The second factor: TOTP enrolment, recovery codes, the second step of a sign-in, and the fresh
 * code sensitive actions ask for. Every code check counts toward the account lockout like a
 * password check, and every code (TOTP step or recovery code) is spent at most once.
 */
export class MfaService {
  private readonly box: SecretBox;
  private readonly repository: MfaRepository;
  private readonly users: UserRepository;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly accounts: AccountService,
    private readonly sessions: SessionService,
    /** A passkey can stand in for the code at the second step of a sign-in. */
    private readonly passkeys: PasskeyService,
    private readonly lockouts: { account: AccountLockout; codes: AccountLockout },
    private readonly audit: AuditLog,
    private readonly log: Logger,
    private readonly options: MfaOptions,
    private readonly now: Clock = Date.now,
  ) {
    this.box = new SecretBox(options.encryptionKey);
    this.repository = new MfaRepository(db);
    this.users = new UserRepository(db);
  }

  async isEnabled(userId: number): Promise<boolean> {
    return ((await this.repository.findTotp(userId))?.confirmed_at ?? null) !== null;
  }

  /** What the data export tells: whether TOTP is on and how many recovery codes are left, never a secret. */
  async status(userId: number): Promise<{ totpEnabled: boolean; recoveryCodesLeft: number }> {
    const [totpEnabled, recoveryCodesLeft] = await Promise.all([this.isEnabled(userId), this.repository.countUnusedRecoveryCodes(userId)]);
    return { totpEnabled, recoveryCodesLeft };
  }

  /** A new pending secret (replacing a pending one); TOTP is on only once a code of it is confirmed. */
  async startTotpSetup(user: User, client: ClientInfo): Promise<TotpEnrolment> {
    const secret = newTotpSecret();
    if (!(await this.repository.savePendingTotp(user.id, this.box.seal(secret, user.id), this.now())))
      throw new GatepassError('mfa_already_enabled', MFA_DETAILS.mfa_already_enabled);
    await this.audit.record({ event: 'mfa_setup_started', userId: user.id, client });
    const otpauthUri = totpUri(secret, this.options.issuer, user.email);
    const qrSvg = await QRCode.toString(otpauthUri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
    return { secret, otpauthUri, qrSvg };
  }

  /** Turns TOTP on with a code of the pending secret; returns the first set of recovery codes (shown once). */
  async confirmTotp(user: User, code: string, client: ClientInfo): Promise<string[]> {
    const row = await this.repository.findTotp(user.id);
    if (row === undefined) throw new GatepassError('mfa_not_enabled', MFA_DETAILS.setup_first);
    if (row.confirmed_at !== null) throw new GatepassError('mfa_already_enabled', MFA_DETAILS.mfa_already_enabled);
    await this.beginCodeAttempt(user, client);
    const secret = this.openSecret(row.secret, user.id);
    const step = secret === undefined ? null : matchTotpStep(secret, code.replace(/\s/g, ''), this.now());
    if (step === null) return this.refuseCode(user, client, 'confirm');
    const codes = newRecoveryCodes();
    const confirmed = await this.db.transaction().execute(async (trx) => {
      // The secret the code was checked against: a setup started meanwhile replaced it, and wins.
      if (!(await new MfaRepository(trx).confirmTotp(user.id, row.secret, step, this.now()))) return false;
      await this.saveRecoveryCodes(trx, user.id, codes);
      await this.audit.record({ event: 'mfa_enabled', userId: user.id, client }, trx);
      return true;
    });
    if (!confirmed) return this.refuseCode(user, client, 'confirm');
    await this.recordGoodCode(user);
    return codes;
  }

  /** Turns TOTP off and voids the recovery codes; needs a re-authentication (the password) and a current code. */
  async disableTotp(userId: number, proof: Reauthentication, code: string, client: ClientInfo): Promise<void> {
    await this.assertEnabled(userId);
    const user = await this.accounts.confirmIdentity(userId, proof);
    await this.checkCode(user, code, client, 'disable');
    await this.db.transaction().execute(async (trx) => {
      await new MfaRepository(trx).removeAll(userId);
      await this.audit.record({ event: 'mfa_disabled', userId, client }, trx);
    });
  }

  /** A new set of recovery codes after a current code; the old set is void. */
  async regenerateRecoveryCodes(user: User, code: string, client: ClientInfo): Promise<string[]> {
    await this.assertEnabled(user.id);
    await this.checkCode(user, code, client, 'recovery_codes');
    const codes = newRecoveryCodes();
    await this.db.transaction().execute(async (trx) => {
      await this.saveRecoveryCodes(trx, user.id, codes);
      await this.audit.record({ event: 'mfa_recovery_codes_regenerated', userId: user.id, client }, trx);
    });
    return codes;
  }

  /** Removes a user's second factor (a lost phone): an admin's or the CLI's (`actor.userId` null) decision. 409 when there was none. */
  async reset(userId: number, actor: { userId: number | null; client: ClientInfo }): Promise<void> {
    const removed = await this.db.transaction().execute(async (trx) => {
      if (!(await new MfaRepository(trx).removeAll(userId))) return false;
      await this.audit.record({ event: 'mfa_reset', userId, actorId: actor.userId, client: actor.client }, trx);
      return true;
    });
    if (!removed) throw new GatepassError('mfa_not_enabled', MFA_DETAILS.mfa_not_enabled);
  }

  /**
   * The second step a sign-in needs after its first factor (a correct password, or an external
   * provider's answer): an mfa_token for POST /auth/mfa/verify,
   * or undefined when the account has no TOTP on (the login issues tokens at once). The OAuth2 form
   * login (Swagger's Authorize) has no second step to offer, so it is refused with a pointer to the JSON flow.
   */
  async beginSignIn(user: User, client: ClientInfo, how: { viaForm?: boolean; firstFactor: FirstFactor }): Promise<string | undefined> {
    if (!(await this.isEnabled(user.id))) return undefined;
    if (how.viaForm === true) throw new GatepassError('mfa_required', MFA_DETAILS.form_login);
    // Random and opaque, not a JWT: no token check anywhere can mistake it for an access or refresh token.
    const mfaToken = newSecretToken();
    const now = this.now();
    await this.repository.insertChallenge({
      tokenHash: digestOf(mfaToken),
      userId: user.id,
      firstFactor: how.firstFactor,
      now,
      expiresAt: now + MFA_TOKEN_TTL_MS,
    });
    await this.audit.record({ event: 'mfa_challenge_started', userId: user.id, client });
    return mfaToken;
  }

  /** The methods the second step of `user`'s sign-in accepts: a code, and a passkey when the account has one (and passkeys are on). */
  async methodsFor(user: User): Promise<SecondStepMethod[]> {
    return (await this.passkeys.hasPasskeys(user.id)) ? [...MFA_METHODS, 'passkey'] : [...MFA_METHODS];
  }

  /** WebAuthn options for a passkey as the second step of the sign-in an mfa_token stands for (POST /auth/mfa/passkey/options). */
  async passkeyOptions(mfaToken: string): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const { user } = await this.openChallenge(mfaToken);
    return this.passkeys.secondFactorOptions(user);
  }

  /**
   * Completes a sign-in with a passkey instead of a code: the session's amr is [first factor, "hwk" or
   * "swk"]. A refused assertion counts against the mfa_token and the lockout as a wrong code does; of
   * concurrent completions of one mfa_token exactly one starts a session (the challenge is spent last,
   * atomically, and the assertion's own WebAuthn challenge is single-use).
   */
  async completeSignInWithPasskey(mfaToken: string, response: AuthenticationResponseJSON, client: ClientInfo): Promise<TokenPair> {
    const { tokenHash, challenge, user } = await this.openChallenge(mfaToken);
    await this.beginCodeAttempt(user, client);
    let keyKind;
    try {
      keyKind = await this.passkeys.checkSecondFactor(user, response, client);
    } catch (error) {
      if (!(error instanceof GatepassError && error.code === 'invalid_credential')) throw error;
      await this.repository.countChallengeFailure(tokenHash);
      return this.refuseCode(user, client, 'sign_in');
    }
    if ((await this.repository.spendChallenge(tokenHash, this.now(), MFA_TOKEN_MAX_FAILURES)) === undefined) throw invalidMfaToken();
    await this.recordGoodCode(user);
    return this.sessions.startSession(user, client, [challenge.first_factor ?? 'pwd', keyKind]);
  }

  /** The open challenge an mfa_token names, and its user; 401 invalid_mfa_token for anything else. */
  private async openChallenge(mfaToken: string): Promise<{ tokenHash: string; challenge: MfaChallengeRow; user: User }> {
    const tokenHash = digestOf(mfaToken);
    const challenge = await this.repository.findChallenge(tokenHash);
    const now = this.now();
    if (
      challenge === undefined ||
      challenge.used_at !== null ||
      challenge.expires_at <= now ||
      challenge.failed_attempts >= MFA_TOKEN_MAX_FAILURES
    )
      throw invalidMfaToken();
    const user = await this.users.findById(challenge.user_id);
    if (user === undefined) throw invalidMfaToken();
    return { tokenHash, challenge, user };
  }

  /**
   * Completes a sign-in with a code: spends the challenge and the code, then starts the session with
   * amr [first factor, "otp"]. The challenge is spent and the code checked in one transaction, so that of
   * concurrent submissions exactly one wins, and a wrong code leaves the challenge open (counted).
   */
  async completeSignIn(mfaToken: string, code: string, client: ClientInfo): Promise<TokenPair> {
    const { tokenHash, challenge, user } = await this.openChallenge(mfaToken);
    await this.beginCodeAttempt(user, client);
    try {
      await this.db.transaction().execute(async (trx) => {
        if ((await new MfaRepository(trx).spendChallenge(tokenHash, this.now(), MFA_TOKEN_MAX_FAILURES)) === undefined)
          throw invalidMfaToken();
        await this.spendCode(trx, user, code, client);
      });
    } catch (error) {
      if (!(error instanceof CodeRejected)) throw error;
      await this.repository.countChallengeFailure(tokenHash);
      return this.refuseCode(user, client, 'sign_in');
    }
    await this.recordGoodCode(user);
    return this.sessions.startSession(user, client, [challenge.first_factor ?? 'pwd', 'otp']);
  }

  /** Refuses a sensitive action (password change, deletion) without a code when TOTP is on; cheap, so it runs before the password check. */
  async assertCodeGiven(userId: number, code: string | undefined): Promise<void> {
    if (code === undefined && (await this.isEnabled(userId))) throw new GatepassError('mfa_required', MFA_DETAILS.mfa_required);
  }

  /** Checks the fresh code of a sensitive action when TOTP is on: 403 without one, 400 for a wrong one. */
  async requireFreshCode(user: User, code: string | undefined, client: ClientInfo, purpose: string): Promise<void> {
    if (!(await this.isEnabled(user.id))) return;
    if (code === undefined) throw new GatepassError('mfa_required', MFA_DETAILS.mfa_required);
    await this.checkCode(user, code, client, purpose);
  }

  private async assertEnabled(userId: number): Promise<void> {
    if (!(await this.isEnabled(userId))) throw new GatepassError('mfa_not_enabled', MFA_DETAILS.mfa_not_enabled);
  }

  /** A code outside a sign-in: counted by the lockout, spent at once. */
  private async checkCode(user: User, code: string, client: ClientInfo, purpose: string): Promise<void> {
    await this.beginCodeAttempt(user, client);
    try {
      await this.spendCode(this.db, user, code, client);
    } catch (error) {
      if (error instanceof CodeRejected) return this.refuseCode(user, client, purpose);
      throw error;
    }
    await this.recordGoodCode(user);
  }

  /**
   * Counts a code attempt toward the account lockout, as a password attempt is (429 while locked),
   * and toward the codes' own count: a correct password resets the first, so that one alone would
   * let whoever knows the password guess codes without end, a few per login.
   */
  private async beginCodeAttempt(user: User, client: ClientInfo): Promise<void> {
    try {
      await this.lockouts.account.beginAttempt(user.email);
      await this.lockouts.codes.beginAttempt(user.email);
    } catch (error) {
      await this.audit.record({ event: 'login_locked', userId: user.id, client, details: { factor: 'mfa' } });
      throw error;
    }
  }

  private async recordGoodCode(user: User): Promise<void> {
    await this.lockouts.account.recordSuccess(user.email);
    await this.lockouts.codes.recordSuccess(user.email);
  }

  private async refuseCode(user: User, client: ClientInfo, purpose: string): Promise<never> {
    await this.audit.record({ event: 'mfa_code_failed', userId: user.id, client, details: { purpose } });
    throw invalidCode();
  }

  /**
   * Spends a TOTP code (its step, which must be later than the last one used) or a recovery code;
   * throws CodeRejected otherwise. Six digits are a TOTP code; anything else is read as a recovery code.
   */
  private async spendCode(executor: Kysely<Database>, user: User, code: string, client: ClientInfo): Promise<CodeMethod> {
    const repository = new MfaRepository(executor);
    const compact = code.replace(/\s/g, '');
    if (/^\d{6}$/.test(compact)) {
      const row = await repository.findTotp(user.id);
      if (row === undefined || row.confirmed_at === null) throw new CodeRejected();
      const secret = this.openSecret(row.secret, user.id);
      const step = secret === undefined ? null : matchTotpStep(secret, compact, this.now());
      if (step === null || !(await repository.claimStep(user.id, step))) throw new CodeRejected();
      return 'totp';
    }
    const normalized = normalizeRecoveryCode(code);
    if (normalized === undefined || !(await repository.spendRecoveryCode(user.id, recoveryCodeHash(user.id, normalized), this.now())))
      throw new CodeRejected();
    const left = await repository.countUnusedRecoveryCodes(user.id);
    await this.audit.record({ event: 'mfa_recovery_code_used', userId: user.id, client, details: { recovery_codes_left: left } }, executor);
    return 'recovery_code';
  }

  private openSecret(sealed: string, userId: number): string | undefined {
    const secret = this.box.open(sealed, userId);
    if (secret === undefined)
      this.log.error(
        { err: new Error(`the TOTP secret of user ${userId} cannot be decrypted`) },
        'TOTP secret unreadable: was MFA_ENCRYPTION_KEY (or JWT_REFRESH_SECRET, its default) changed? The account needs an admin reset of its second factor',
      );
    return secret;
  }

  private async saveRecoveryCodes(executor: Kysely<Database>, userId: number, codes: string[]): Promise<void> {
    const hashes = codes.map((code) => recoveryCodeHash(userId, normalizeRecoveryCode(code) ?? code));
    await new MfaRepository(executor).replaceRecoveryCodes(userId, hashes, this.now());
  }
}
