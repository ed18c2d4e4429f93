import { timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AuditLog, ClientInfo } from '../../audit/audit-log.js';
import { GatepassError } from '../../errors.js';
import type { Logger } from '../../logging.js';
import type { SessionService, TokenPair } from '../../sessions/session-service.js';
import { ExternalIdentityRepository } from '../../store/external-identities.js';
import type { Database, ExternalIdentityRow, OauthFlowRow } from '../../store/schema.js';
import { DuplicateEmailError, UserRepository, type User } from '../../store/users.js';
import type { Clock } from '../../tokens/token-service.js';
import { isValidEmail, normalizeEmail } from '../email.js';
import type { MfaService, SecondStepMethod } from '../mfa/mfa-service.js';
import { digestOf, newSecretToken } from '../secret-tokens.js';
import { removeSignInMethod } from '../sign-in-methods.js';
import { ExternalSignInError, type ExternalProfile, type ExternalProvider } from './provider.js';

/** RFC 8176: signed in through a federated identity provider. */
export const FEDERATED_AMR = ['fed'] as const;
/** Long enough to sign in at the provider (a password manager, a second factor there); short enough to be of little use stolen. */
export const OAUTH_FLOW_TTL_MS = 10 * 60_000;
/** The longest redirect path kept; a longer one falls back to `/`. */
const MAX_REDIRECT_LENGTH = 512;

export const EXTERNAL_DETAILS = {
  unknown_provider: 'Unknown external sign-in provider',
  provider_unavailable: 'The external sign-in provider cannot be reached; try again shortly',
  not_found: 'Linked identity not found',
} as const;

/** A linked identity as its owner sees it. */
export interface ExternalIdentity {
  id: number;
  provider: string;
  email: string | null;
  emailVerified: boolean;
  createdAt: number;
  lastUsedAt: number | null;
}

/** What starting a flow hands the route: where to send the browser, and the value of its flow cookie. */
export interface StartedFlow {
  authorizationUrl: URL;
  /** Random; the flow cookie's value. Only its SHA-256 is stored, so the flow belongs to the browser holding it. */
  browserBinding: string;
}

/** How a callback ended well: signed in, a second factor to complete, or an identity linked to the signed-in account. */
export type CallbackOutcome =
  | { kind: 'signed_in'; pair: TokenPair; redirectPath: string }
  | { kind: 'mfa_required'; mfaToken: string; methods: SecondStepMethod[]; redirectPath: string }
  | { kind: 'linked'; redirectPath: string };

function toIdentity(row: ExternalIdentityRow): ExternalIdentity {
  return {
    id: row.id,
    provider: row.provider,
    email: row.email,
    emailVerified: Boolean(row.email_verified),
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
  };
}

/**
 * A path on the page's own origin to come back to: one leading `/` (never `//`, a scheme-relative
 * URL), no backslash (browsers read it as `/`), no control character, at most 512 characters;
 * anything else is `/`, so that the callback can never be made to send the browser elsewhere.
 */
export function safeRedirectPath(raw: string | undefined): string {
  if (raw === undefined || raw.length > MAX_REDIRECT_LENGTH) return '/';
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (!raw.startsWith('/') || raw.startsWith('//') || raw.includes('\\') || /[\u0000-\u001f\u007f]/.test(raw)) return '/';
  return raw;
}

/** Compares two SHA-256 hex digests in constant time. */
function sameDigest(a: string, b: string): boolean {
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}

const refused = (code: string, reason: string) => new ExternalSignInError(code, reason);

/**
 * Sign-in through external identity providers (issue 17), without HTTP: the flow (state, PKCE
 * verifier and nonce kept server-side, bound to the browser that started it, spent once before the
 * code is exchanged), then the account decisions — a known identity signs its account in; a new one
 * is linked to an existing account only when the provider asserts the same address as verified, or
 * gets an account of its own when the address is free — and the linked identities' list and unlink.
 */
export class ExternalSignInService {
  private readonly providers: ReadonlyMap<string, ExternalProvider>;
  private readonly repository: ExternalIdentityRepository;
  private readonly users: UserRepository;

  constructor(
    private readonly db: Kysely<Database>,
    providers: readonly ExternalProvider[],
    private readonly sessions: SessionService,
    private readonly mfa: MfaService,
    private readonly audit: AuditLog,
    private readonly log: Logger,
    /** PUBLIC_URL: each provider's callback is `<publicUrl>/auth/oauth/<id>/callback`. REQUIRE_EMAIL_VERIFICATION as at /auth/login. */
    private readonly options: { publicUrl: string; requireEmailVerification: boolean },
    private readonly now: Clock = Date.now,
  ) {
    this.providers = new Map(providers.map((provider) => [provider.id, provider]));
    this.repository = new ExternalIdentityRepository(db);
    this.users = new UserRepository(db);
  }

  /** The configured providers, in OAUTH_PROVIDERS order, for the page's buttons. */
  list(): { id: string; name: string }[] {
    return [...this.providers.values()].map(({ id, name }) => ({ id, name }));
  }

  /** The address the provider sends the browser back to; registered at the provider. */
  redirectUri(providerId: string): string {
    return `${this.options.publicUrl}/auth/oauth/${providerId}/callback`;
  }

  /** Throws 404 unknown_provider for an id that OAUTH_PROVIDERS does not name. */
  provider(providerId: string): ExternalProvider {
    const provider = this.providers.get(providerId);
    if (provider === undefined) throw new GatepassError('unknown_provider', EXTERNAL_DETAILS.unknown_provider);
    return provider;
  }

  /**
   * Starts a flow: a fresh `state` (stored hashed), the provider's PKCE verifier and nonce, and the
   * browser binding for the flow cookie. `linkUserId` makes it a link flow for that signed-in user.
   * Throws ExternalSignInError provider_unavailable when the provider cannot be discovered.
   */
  async start(providerId: string, input: { redirect?: string | undefined; linkUserId?: number }): Promise<StartedFlow> {
    const provider = this.provider(providerId);
    const state = newSecretToken();
    const browserBinding = newSecretToken();
    let request;
    try {
      request = await provider.authorizationRequest({ state, redirectUri: this.redirectUri(providerId) });
    } catch (error) {
      // Building the request needs nothing but the provider's metadata: a failure means it could not be had.
      if (error instanceof ExternalSignInError) throw error;
      throw new ExternalSignInError('provider_unavailable', `${providerId}: the authorization request failed`, { cause: error });
    }
    const now = this.now();
    await this.repository.insertFlow({
      stateHash: digestOf(state),
      browserBindingHash: digestOf(browserBinding),
      provider: providerId,
      codeVerifier: request.codeVerifier,
      nonce: request.nonce,
      redirectPath: safeRedirectPath(input.redirect),
      linkUserId: input.linkUserId ?? null,
      now,
      expiresAt: now + OAUTH_FLOW_TTL_MS,
    });
    return { authorizationUrl: request.url, browserBinding };
  }

  /**
   * Completes a flow from the provider's callback. Every refusal is an ExternalSignInError whose
   * code the page receives, audited as `external_sign_in_failed` (never with the code, state or a
   * token) and logged with its reason.
   */
  async complete(providerId: string, callbackUrl: URL, browserBinding: string | undefined, client: ClientInfo): Promise<CallbackOutcome> {
    const provider = this.provider(providerId);
    let userId: number | null = null;
    try {
      const flow = await this.spendFlow(providerId, callbackUrl, browserBinding);
      userId = flow.link_user_id;
      const profile = await provider.completeAuthorization({
        callbackUrl,
        redirectUri: this.redirectUri(providerId),
        state: callbackUrl.searchParams.get('state') ?? '',
        codeVerifier: flow.code_verifier,
        nonce: flow.nonce,
      });
      if (flow.link_user_id !== null) {
        await this.link(flow.link_user_id, providerId, profile, client);
        return { kind: 'linked', redirectPath: flow.redirect_path };
      }
      const user = await this.accountFor(providerId, profile, client, (id) => (userId = id));
      return { ...(await this.signIn(user, client)), redirectPath: flow.redirect_path };
    } catch (error) {
      if (!(error instanceof ExternalSignInError)) throw error;
      this.log.warn(`external sign-in with ${providerId} refused (${error.code}): ${error.message}`);
      await this.audit.record({
        event: 'external_sign_in_failed',
        userId,
        client,
        details: { provider: providerId, code: error.code, reason: error.message.slice(0, 200) },
      });
      throw error;
    }
  }

  /** The user's linked identities, oldest first. */
  async identities(userId: number): Promise<ExternalIdentity[]> {
    return (await this.repository.listOf(userId)).map(toIdentity);
  }

  /**
   * Unlinks one of the user's identities: 404 for another user's (or none), 409 last_sign_in_method
   * when it is the account's last way to sign in. The check and the delete share one transaction that
   * holds the account, so two concurrent unlinks cannot remove the last two ways together.
   */
  async unlink(userId: number, id: number, client: ClientInfo): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const provider = await removeSignInMethod(trx, userId, async () => {
        const repository = new ExternalIdentityRepository(trx);
        const row = (await repository.listOf(userId)).find((identity) => identity.id === id);
        if (row === undefined || !(await repository.remove(userId, id))) throw new GatepassError('not_found', EXTERNAL_DETAILS.not_found);
        return row.provider;
      });
      await this.audit.record({ event: 'identity_unlinked', userId, client, details: { identity_id: id, provider } }, trx);
    });
  }

  /**
   * The flow of the callback's `state`, spent: it must exist, be live and unspent, have been started
   * by this browser (the flow cookie, compared in constant time) for this very provider (a code of
   * one provider delivered to another's callback is a mix-up attack). It is spent before the code is
   * exchanged, so a replayed callback fails even where the provider would take its code again.
   */
  private async spendFlow(providerId: string, callbackUrl: URL, browserBinding: string | undefined): Promise<OauthFlowRow> {
    const state = callbackUrl.searchParams.get('state');
    if (state === null || state === '' || state.length > 1024) throw refused('invalid_state', 'the callback carries no state');
    const flow = await this.repository.findFlow(digestOf(state));
    const now = this.now();
    if (flow === undefined) throw refused('invalid_state', 'no flow has this state');
    if (browserBinding === undefined || browserBinding === '') throw refused('invalid_state', 'the flow cookie is missing');
    if (!sameDigest(digestOf(browserBinding), flow.browser_binding_hash))
      throw refused('invalid_state', 'the flow was started by another browser');
    if (flow.provider !== providerId) throw refused('invalid_state', `the flow was started for the provider ${flow.provider}`);
    if (flow.used_at !== null) throw refused('invalid_state', 'the flow was used already');
    if (flow.expires_at <= now) throw refused('invalid_state', 'the flow has expired');
    if (!(await this.repository.spendFlow(flow.state_hash, now))) throw refused('invalid_state', 'the flow was used already');
    return flow;
  }

  /** The provider's address, normalised, when it is one we accept as an account's. */
  private emailOf(profile: ExternalProfile): string | null {
    return profile.email !== null && isValidEmail(profile.email) ? normalizeEmail(profile.email) : null;
  }

  /**
   * The account a sign-in flow's identity names: its own when known; else the account holding the
   * same address when the provider asserts it verified and the account proved it too (linked now);
   * else a new account. `onUser`
   * learns the account as soon as it is known, for the audit of a refusal after that.
   */
  private async accountFor(providerId: string, profile: ExternalProfile, client: ClientInfo, onUser: (id: number) => void): Promise<User> {
    const now = this.now();
    const known = await this.repository.findBySubject(providerId, profile.subject);
    const email = this.emailOf(profile);
    if (known !== undefined) {
      onUser(known.user_id);
      await this.repository.recordUse(known.id, { email, emailVerified: email !== null && profile.emailVerified, now });
      const user = await this.users.findById(known.user_id);
      if (user === undefined) throw refused('account_disabled', 'the account of this identity is gone');
      return user;
    }
    if (email === null) throw refused('email_missing', 'the provider gave no usable email address');
    const existing = await this.users.findByEmail(email);
    if (existing !== undefined) {
      onUser(existing.id);
      if (!profile.emailVerified)
        throw refused('link_required', 'an account has this address, which the provider does not assert verified');
      // Pre-account takeover: whoever registered this address here never proved it, and would keep
      // their password on the account the provider's user is about to own. Only a proven address links.
      if (!existing.emailVerified)
        throw refused('link_required', 'an account has this address, but its own address was never verified here');
      if (!existing.isActive) throw refused('account_disabled', 'the account with this address is deactivated');
      await this.insertIdentity(existing.id, providerId, profile, email, client, 'verified_email');
      return existing;
    }
    try {
      const created = await this.createAccount(providerId, profile, email, client);
      onUser(created.id);
      return created;
    } catch (error) {
      // Another callback of the same person (a second tab) created the account meanwhile: theirs is this one's too.
      const raced = error instanceof ExternalSignInError ? await this.repository.findBySubject(providerId, profile.subject) : undefined;
      if (raced === undefined) throw error;
      onUser(raced.user_id);
      const user = await this.users.findById(raced.user_id);
      if (user === undefined) throw refused('account_disabled', 'the account of this identity is gone');
      return user;
    }
  }

  /** A new account with no password, a student, verified only if the provider asserts it, with the identity linked. */
  private async createAccount(providerId: string, profile: ExternalProfile, email: string, client: ClientInfo): Promise<User> {
    try {
      return await this.db.transaction().execute(async (trx) => {
        const now = this.now();
        const user = await new UserRepository(trx).create({
          email,
          passwordHash: null,
          fullName: profile.name,
          emailVerified: profile.emailVerified,
          now,
        });
        await this.audit.record({ event: 'register', userId: user.id, client, details: { role: user.role, provider: providerId } }, trx);
        const identity = await new ExternalIdentityRepository(trx).insert({
          userId: user.id,
          provider: providerId,
          subject: profile.subject,
          email,
          emailVerified: profile.emailVerified,
          now,
        });
        if (identity === undefined) throw refused('identity_in_use', 'a concurrent sign-in linked this identity first');
        return user;
      });
    } catch (error) {
      // A concurrent sign-in (another flow of the same person) created the account first: refused, not doubled.
      if (error instanceof DuplicateEmailError) throw refused('link_required', 'an account with this address was created meanwhile');
      throw error;
    }
  }

  /** A link flow: the identity joins the signed-in user who started it, unless it is another account's already. */
  private async link(userId: number, providerId: string, profile: ExternalProfile, client: ClientInfo): Promise<void> {
    const user = await this.users.findById(userId);
    if (user === undefined || !user.isActive) throw refused('account_disabled', 'the account that started the link is deactivated');
    const email = this.emailOf(profile);
    const known = await this.repository.findBySubject(providerId, profile.subject);
    if (known !== undefined && known.user_id !== userId) throw refused('identity_in_use', 'this identity is linked to another account');
    if (known !== undefined) {
      await this.repository.recordUse(known.id, { email, emailVerified: email !== null && profile.emailVerified, now: this.now() });
      return;
    }
    await this.insertIdentity(userId, providerId, profile, email, client, 'explicit');
  }

  private async insertIdentity(
    userId: number,
    providerId: string,
    profile: ExternalProfile,
    email: string | null,
    client: ClientInfo,
    reason: 'verified_email' | 'explicit',
  ): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      const identity = await new ExternalIdentityRepository(trx).insert({
        userId,
        provider: providerId,
        subject: profile.subject,
        email,
        emailVerified: email !== null && profile.emailVerified,
        now: this.now(),
      });
      if (identity === undefined) throw refused('identity_in_use', 'this identity was linked to an account meanwhile');
      await this.audit.record(
        { event: 'identity_linked', userId, client, details: { identity_id: identity.id, provider: providerId, reason } },
        trx,
      );
    });
  }

  /** The account's sign-in, once the provider vouched for the person: refused when deactivated or (if required) unverified; TOTP still applies. */
  private async signIn(
    user: User,
    client: ClientInfo,
  ): Promise<{ kind: 'signed_in'; pair: TokenPair } | { kind: 'mfa_required'; mfaToken: string; methods: SecondStepMethod[] }> {
    if (!user.isActive) throw refused('account_disabled', 'the account is deactivated');
    if (this.options.requireEmailVerification && !user.emailVerified)
      throw refused('email_not_verified', 'the account address is not verified');
    const mfaToken = await this.mfa.beginSignIn(user, client, { firstFactor: 'fed' });
    if (mfaToken !== undefined) return { kind: 'mfa_required', mfaToken, methods: await this.mfa.methodsFor(user) };
    try {
      return { kind: 'signed_in', pair: await this.sessions.startSession(user, client, FEDERATED_AMR) };
    } catch (error) {
      // Deactivated or changed since it was read: refused like a deactivated account.
      if (error instanceof GatepassError && (error.code === 'account_disabled' || error.code === 'invalid_credentials'))
        throw refused('account_disabled', 'the account changed during the sign-in');
      throw error;
    }
  }
}
