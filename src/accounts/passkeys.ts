import { digestOf, newSecretToken } from './secret-tokens.js';
import { removeSignInMethod } from './sign-in-methods.js';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { decodeClientDataJSON } from '@simplewebauthn/server/helpers';
import type { Kysely } from 'kysely';
import type { AuditLog, ClientInfo } from '../audit/audit-log.js';
import { GatepassError } from '../errors.js';
import type { SessionService, TokenPair } from '../sessions/session-service.js';
import { PasskeyRepository, passkeyTransports, type ChallengePurpose } from '../store/passkeys.js';
import type { Database, PasskeyRow } from '../store/schema.js';
import { UserRepository, type User } from '../store/users.js';
import type { Clock } from '../tokens/token-service.js';

/** The relying party (WEBAUTHN_RP_ID, WEBAUTHN_RP_NAME, WEBAUTHN_ORIGINS); undefined when passkeys are off. */
export interface PasskeyOptions {
  rpId: string;
  rpName: string;
  origins: string[];
}

/** A passkey as its owner sees it: never its public key or counter. */
export interface Passkey {
  id: string;
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
  deviceType: string;
  backedUp: boolean;
}

/** RFC 8176: a proof of possession of a hardware-protected key (a device-bound passkey), or of a software-protected one (a synced passkey). */
export const HARDWARE_KEY_AMR = ['hwk'] as const;
export const SOFTWARE_KEY_AMR = ['swk'] as const;

/** How long options stay good: the ceremony's timeout and the stored challenge's lifetime. */
export const PASSKEY_CHALLENGE_TTL_MS = 5 * 60_000;
export const DEFAULT_PASSKEY_NAME = 'Passkey';

export const PASSKEY_DETAILS = {
  invalid_passkey: 'The passkey could not be verified',
  already_registered: 'This passkey is already registered',
  invalid_credential: 'Invalid passkey',
  passkeys_disabled: 'Passkeys are not configured on this server (WEBAUTHN_RP_ID, WEBAUTHN_ORIGINS)',
  not_found: 'Passkey not found',
} as const;

const invalidCredential = () => new GatepassError('invalid_credential', PASSKEY_DETAILS.invalid_credential);

function toPasskey(row: PasskeyRow): Passkey {
  return {
    id: row.id,
    name: row.name,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    deviceType: row.device_type,
    backedUp: Boolean(row.backed_up),
  };
}

/** The library's reason for a refusal, short enough for an audit event. */
function reasonOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 200);
}

/**
 * Passkeys (WebAuthn, through @simplewebauthn/server): registration by a signed-in user, the user's
 * list, and usernameless sign-in with discoverable credentials. Challenges are stored in the
 * database (any instance verifies what another handed out) and spent once; user verification is
 * required in both ceremonies; a signature counter that does not go up is refused and audited.
 */
export class PasskeyService {
  private readonly repository: PasskeyRepository;
  private readonly users: UserRepository;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly sessions: SessionService,
    private readonly audit: AuditLog,
    private readonly options: PasskeyOptions | undefined,
    private readonly now: Clock = Date.now,
    /** REQUIRE_EMAIL_VERIFICATION: sign-in of an account whose address is unverified is refused, as at /auth/login. */
    private readonly policy: { requireEmailVerification?: boolean } = {},
  ) {
    this.repository = new PasskeyRepository(db);
    this.users = new UserRepository(db);
  }

  private get relyingParty(): PasskeyOptions {
    if (this.options === undefined) throw new GatepassError('passkeys_disabled', PASSKEY_DETAILS.passkeys_disabled);
    return this.options;
  }

  /** Options for navigator.credentials.create(): a discoverable credential, user verification required, none of the user's own again. */
  async registrationOptions(user: User): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const rp = this.relyingParty;
    const now = this.now();
    const handle = await this.repository.userHandle(user.id, newSecretToken(), now);
    const existing = await this.repository.listOf(user.id);
    const options = await generateRegistrationOptions({
      rpName: rp.rpName,
      rpID: rp.rpId,
      userName: user.email,
      userDisplayName: user.fullName ?? user.email,
      userID: Buffer.from(handle, 'base64url'),
      timeout: PASSKEY_CHALLENGE_TTL_MS,
      attestationType: 'none',
      excludeCredentials: existing.map((row) => ({ id: row.id, transports: passkeyTransports(row) })),
      authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'required' },
    });
    await this.storeChallenge(options.challenge, 'register', user.id, now);
    return options;
  }

  /** Verifies a registration (attestation) against the user's stored challenge, and stores the passkey. */
  async register(user: User, response: RegistrationResponseJSON, name: string | undefined, client: ClientInfo): Promise<Passkey> {
    const rp = this.relyingParty;
    const now = this.now();
    const challenge = await this.spendChallenge(response.response.clientDataJSON, 'register', user.id, now);
    if (challenge === undefined) {
      await this.audit.record({ event: 'passkey_registration_failed', userId: user.id, client, details: { reason: 'challenge' } });
      throw new GatepassError('invalid_passkey', PASSKEY_DETAILS.invalid_passkey);
    }
    let verification;
    try {
      verification = await verifyRegistrationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: rp.origins,
        expectedRPID: rp.rpId,
        requireUserPresence: true,
        requireUserVerification: true,
      });
    } catch (error) {
      await this.audit.record({ event: 'passkey_registration_failed', userId: user.id, client, details: { reason: reasonOf(error) } });
      throw new GatepassError('invalid_passkey', PASSKEY_DETAILS.invalid_passkey);
    }
    if (!verification.verified) {
      await this.audit.record({ event: 'passkey_registration_failed', userId: user.id, client, details: { reason: 'not verified' } });
      throw new GatepassError('invalid_passkey', PASSKEY_DETAILS.invalid_passkey);
    }
    const info = verification.registrationInfo;
    const passkey = {
      id: info.credential.id,
      userId: user.id,
      publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
      counter: info.credential.counter,
      transports: (info.credential.transports ?? response.response.transports ?? []).slice(0, 8),
      deviceType: info.credentialDeviceType,
      backedUp: info.credentialBackedUp,
      name: name ?? DEFAULT_PASSKEY_NAME,
      aaguid: info.aaguid === '00000000-0000-0000-0000-000000000000' ? null : info.aaguid,
      now,
    };
    if (!(await this.repository.insert(passkey))) {
      await this.audit.record({ event: 'passkey_registration_failed', userId: user.id, client, details: { reason: 'already registered' } });
      throw new GatepassError('invalid_passkey', PASSKEY_DETAILS.already_registered);
    }
    await this.audit.record({
      event: 'passkey_registered',
      userId: user.id,
      client,
      details: {
        passkey_id: passkey.id,
        name: passkey.name,
        device_type: passkey.deviceType,
        backed_up: passkey.backedUp,
        aaguid: passkey.aaguid,
      },
    });
    return {
      id: passkey.id,
      name: passkey.name,
      createdAt: now,
      lastUsedAt: null,
      deviceType: passkey.deviceType,
      backedUp: passkey.backedUp,
    };
  }

  async list(userId: number): Promise<Passkey[]> {
    return (await this.repository.listOf(userId)).map(toPasskey);
  }

  /** Renames one of the user's passkeys; another user's answers not_found, as a missing one does. */
  async rename(userId: number, id: string, name: string, client: ClientInfo): Promise<Passkey> {
    const row = await this.repository.rename(userId, id, name);
    if (row === undefined) throw new GatepassError('not_found', PASSKEY_DETAILS.not_found);
    await this.audit.record({ event: 'passkey_renamed', userId, client, details: { passkey_id: id, name } });
    return toPasskey(row);
  }

  /**
   * Deletes one of the user's passkeys: it signs nobody in from now on (the sessions it started live on,
   * as after a password change elsewhere: logout-all ends them). Never the account's last way to sign in.
   */
  async remove(userId: number, id: string, client: ClientInfo): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await removeSignInMethod(trx, userId, async () => {
        if (!(await new PasskeyRepository(trx).remove(userId, id))) throw new GatepassError('not_found', PASSKEY_DETAILS.not_found);
      });
      await this.audit.record({ event: 'passkey_deleted', userId, client, details: { passkey_id: id } }, trx);
    });
  }

  /** Options for navigator.credentials.get(): no allowCredentials (the authenticator offers its discoverable credentials), user verification required. */
  async loginOptions(): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const rp = this.relyingParty;
    const now = this.now();
    const options = await generateAuthenticationOptions({ rpID: rp.rpId, userVerification: 'required', timeout: PASSKEY_CHALLENGE_TTL_MS });
    await this.storeChallenge(options.challenge, 'login', null, now);
    return options;
  }

  /**
   * Verifies an assertion and starts a session (amr `hwk` for a device-bound passkey, `swk` for a
   * synced one). Every refusal is the same 401 invalid_credential: an unknown credential, a spent or
   * expired challenge, another origin or RP ID, a bad signature, no user verification, a counter that
   * did not go up (audited as a possible clone), an inactive account.
   */
  async login(response: AuthenticationResponseJSON, client: ClientInfo): Promise<TokenPair> {
    const rp = this.relyingParty;
    const now = this.now();
    // The challenge first: every attempt spends it, whatever else is wrong with it.
    const challenge = await this.spendChallenge(response.response.clientDataJSON, 'login', null, now);
    if (challenge === undefined) {
      await this.recordFailure(null, client, 'challenge');
      throw invalidCredential();
    }
    const row = await this.repository.findById(response.id);
    if (row === undefined) {
      await this.recordFailure(null, client, 'unknown_credential');
      throw invalidCredential();
    }
    const user = await this.users.findById(row.user_id);
    if (user === undefined || !user.isActive) {
      await this.recordFailure(row.user_id, client, 'account_disabled', row.id);
      throw invalidCredential();
    }
    // Nobody was named before this ceremony, so the authenticator must return the user handle, and it must name the credential's owner (WebAuthn §7.2 step 6).
    const userHandle = response.response.userHandle;
    if (userHandle === undefined || userHandle !== (await this.repository.findUserHandle(user.id))) {
      await this.recordFailure(user.id, client, 'user_handle_mismatch', row.id);
      throw invalidCredential();
    }

    let verification;
    try {
      verification = await verifyAuthenticationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: rp.origins,
        expectedRPID: rp.rpId,
        // The counter is judged below, once the signature is known to be good: the library would
        // judge it before, and an unsigned low counter is no sign of a clone.
        credential: { id: row.id, publicKey: Buffer.from(row.public_key, 'base64url'), counter: 0, transports: passkeyTransports(row) },
        requireUserVerification: true,
      });
    } catch (error) {
      await this.recordFailure(user.id, client, reasonOf(error), row.id);
      throw invalidCredential();
    }
    if (!verification.verified) {
      await this.recordFailure(user.id, client, 'signature', row.id);
      throw invalidCredential();
    }
    const info = verification.authenticationInfo;
    const recorded = await this.repository.recordUse(row.id, { counter: info.newCounter, backedUp: info.credentialBackedUp, now });
    if (!recorded) {
      await this.audit.record({
        event: 'passkey_counter_regressed',
        userId: user.id,
        client,
        details: { passkey_id: row.id, stored_counter: row.counter, presented_counter: info.newCounter },
      });
      await this.recordFailure(user.id, client, 'counter_regressed', row.id);
      throw invalidCredential();
    }
    // After the proof, as after the password at /auth/login: nobody learns this about an account without its credential.
    if (this.policy.requireEmailVerification === true && !user.emailVerified) {
      await this.recordFailure(user.id, client, 'email_not_verified', row.id);
      throw new GatepassError('email_not_verified', 'Email not verified');
    }
    const amr = info.credentialDeviceType === 'singleDevice' ? HARDWARE_KEY_AMR : SOFTWARE_KEY_AMR;
    try {
      return await this.sessions.startSession(user, client, amr);
    } catch (error) {
      // Deactivated, deleted or changed since it was read: refused like any other bad credential.
      if (error instanceof GatepassError && (error.code === 'account_disabled' || error.code === 'invalid_credentials'))
        throw invalidCredential();
      throw error;
    }
  }

  private async storeChallenge(challenge: string, purpose: ChallengePurpose, userId: number | null, now: number): Promise<void> {
    await this.repository.insertChallenge({ hash: digestOf(challenge), purpose, userId, now, expiresAt: now + PASSKEY_CHALLENGE_TTL_MS });
  }

  /**
   * Spends the challenge the client data carries, if it is live and was made for this ceremony (and
   * user); returns it, or undefined when there is none to spend. Of concurrent spends of one challenge
   * exactly one succeeds, whichever instance serves them. The client data is decoded by the library;
   * the library then checks the challenge again, with everything else.
   */
  private async spendChallenge(
    clientDataJSON: string,
    purpose: ChallengePurpose,
    userId: number | null,
    now: number,
  ): Promise<string | undefined> {
    let challenge: unknown;
    try {
      challenge = decodeClientDataJSON(clientDataJSON).challenge;
    } catch {
      return undefined;
    }
    if (typeof challenge !== 'string' || challenge === '' || challenge.length > 1024) return undefined;
    return (await this.repository.spendChallenge(digestOf(challenge), purpose, userId, now)) ? challenge : undefined;
  }

  private async recordFailure(userId: number | null, client: ClientInfo, reason: string, passkeyId?: string): Promise<void> {
    await this.audit.record({
      event: 'login_failure',
      userId,
      client,
      details: { method: 'passkey', reason, ...(passkeyId !== undefined && { passkey_id: passkeyId }) },
    });
  }
}
