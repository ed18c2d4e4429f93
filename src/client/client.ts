import { GatepassApiError, GatepassNetworkError, errorFromResponse } from './errors.js';
import { decodeToken } from './jwt.js';
import type {
  Credentials,
  DisableTotpInput,
  LinkedIdentity,
  MfaMethod,
  MfaRequiredResponse,
  RecoveryCodes,
  RegisterInput,
  Session,
  TokenResponse,
  MfaStatus,
  OAuthProvider,
  Passkey,
  PasskeyOptionsJSON,
  TotpSetup,
  User,
  WebAuthnFunctions,
} from './types.js';

/**
 * `body`: the refresh token comes in the login answer and is kept in this object's memory (Node,
 * scripts, native apps). `cookie`: the server keeps it in an HttpOnly cookie (`__Host-gatepass_refresh`
 * over HTTPS, `gatepass_refresh` over plain HTTP) which page scripts cannot read (browsers; API.md
 * "Cookies"). Cookie mode is asked for, and the cookie used, only with the header
 * `X-Gatepass-Cookie: 1`, which login, refresh and logout send here with a JSON body or none; the
 * server refuses it from an Origin that is neither its own nor in its CORS_ORIGINS.
 */
export type ClientMode = 'body' | 'cookie';

/** Why the client is no longer signed in. */
export type SignedOutReason =
  /** `logout()`, or `revokeSession()` of the current session. */
  | 'logout'
  /** `logoutAll()`. */
  | 'logout_all'
  /** The server refused to refresh: the session expired, was revoked, or the account was disabled. */
  | 'session_ended';

export type AuthEvent =
  | { type: 'signed_in'; via: 'login' | 'restore'; expiresAt: number }
  | { type: 'refreshed'; expiresAt: number }
  | { type: 'signed_out'; reason: SignedOutReason; error?: GatepassApiError };

export type AuthEventType = AuthEvent['type'];

/**
 * What `login()` answers when the password was right but the account has two-factor sign-in on: no
 * one is signed in yet. The client keeps the server's `mfa_token` to itself; `verifyMfa(code)` spends
 * it. Told apart from the signed-in `User` by `isMfaChallenge(result)` or `'mfaRequired' in result`.
 */
export interface MfaChallenge {
  readonly mfaRequired: true;
  /** What completes it: `totp` (the authenticator app's 6 digits) and `recovery_code` by `verifyMfa`; `passkey` by `verifyMfaWithPasskey`. */
  readonly methods: readonly MfaMethod[];
  /** When the challenge expires (ms on the client's clock); log in again after that. */
  readonly expiresAt: number;
}

/** `login()`'s answer: the signed-in user, or the second step still to take. */
export type LoginResult = User | MfaChallenge;

/** Whether `login()` asks for a second factor (narrows its result to MfaChallenge). */
export function isMfaChallenge(result: LoginResult): result is MfaChallenge {
  return 'mfaRequired' in result;
}
export type AuthEventOf<T extends AuthEventType> = Extract<AuthEvent, { type: T }>;

/**
 * What `completeOAuthCallback()` found on the page the provider sign-in came back to. `signed_in`: the
 * callback set the refresh cookie and the session is restored. `mfa_required`: the account has TOTP on;
 * `verifyMfa(code)` completes it. `error`: the sign-in (or link) failed with the server's code
 * (`access_denied`, `link_required`, …); `linked`: an explicit link succeeded. Both carry the user when a
 * session goes on (a link starts signed in). `signed_out`: nothing to complete and no session.
 */
export type OAuthCallbackResult =
  | { status: 'signed_in'; user: User }
  | { status: 'mfa_required'; challenge: MfaChallenge }
  | { status: 'error'; code: string; user: User | null }
  | { status: 'linked'; provider: string; user: User | null }
  | { status: 'signed_out' };

/** Where `completeOAuthCallback()` reads the callback's parameters and how it removes them; the page's own by default. */
export interface OAuthCallbackPage {
  /** The page's address (`location.href`). */
  url: string;
  /** Replaces the address bar's URL without a navigation (`history.replaceState`). */
  replaceUrl(url: string): void;
}

/** What the client calls to reach the network: the global `fetch` unless told otherwise. */
export type FetchFunction = (input: string, init: RequestInit) => Promise<Response>;

export interface GatepassClientOptions {
  /**
   * Where gatepass answers, e.g. `http://127.0.0.1:8000`. Defaults to the page's own origin in a
   * browser; required elsewhere.
   */
  baseUrl?: string;
  /** Defaults to `cookie` in a browser (a `document` exists) and `body` elsewhere. */
  mode?: ClientMode;
  /** Replaces the global fetch (instrumentation, proxies, tests). */
  fetch?: FetchFunction;
  /** Refresh this long before the access token expires (default 30 s). */
  refreshMarginSeconds?: number;
  /** Refresh on a timer before expiry even when no request is made (default true). */
  autoRefresh?: boolean;
  /** The clock (ms since the epoch) that expiry is judged by; `Date.now` by default. */
  now?: () => number;
  /**
   * The browser half of WebAuthn, for `registerPasskey()` and `loginWithPasskey()`: pass
   * `{ startRegistration, startAuthentication }` of `@simplewebauthn/browser`. The client imports
   * no package itself; without this option the passkey ceremonies reject (listing, renaming and
   * deleting passkeys work without it).
   */
  webauthn?: WebAuthnFunctions;
}

const COOKIE_HEADER = 'X-Gatepass-Cookie';
/** Codes of a 401 after which one refresh may help: an expired token, or one revoked by a role change. */
const REFRESHABLE_CODES = new Set(['token_expired', 'token_revoked']);
/** Never refresh more often than this from the timer, whatever the margin. */
const MIN_TIMER_MS = 1000;
/** How long an mfa_token lives when the server does not say (API.md: 5 minutes). */
const MFA_TOKEN_LIFETIME_MS = 5 * 60_000;
/** What a `?error=` code and a `?linked=` provider id look like (API.md); anything else on the address is not the server's. */
const CALLBACK_CODE = /^[a-z][a-z0-9_]{0,63}$/;
const PROVIDER_ID = /^[a-z0-9][a-z0-9_-]{0,31}$/;
/** After a timer refresh failed for want of network, try again this much later. */
const RETRY_TIMER_MS = 5000;
/** setTimeout's largest delay (about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;

function isBrowser(): boolean {
  return typeof (globalThis as { document?: unknown }).document !== 'undefined';
}

const SECOND_STEP_METHODS: readonly MfaMethod[] = ['totp', 'recovery_code', 'passkey'];

/** The methods a provider sign-in's `#mfa=…&methods=` offers (codes only when absent); unknown names are dropped. */
function secondStepMethods(listed: string | null): MfaMethod[] {
  const named = (listed ?? 'totp,recovery_code').split(',');
  return SECOND_STEP_METHODS.filter((method) => named.includes(method));
}

function pageOrigin(): string | undefined {
  return (globalThis as { location?: { origin?: string } }).location?.origin;
}

interface BrowserPage {
  location?: { href: string; pathname: string; search: string };
  history?: { state: unknown; replaceState(data: unknown, unused: string, url: string): void };
}

/** The browser's own address bar, for `completeOAuthCallback()`; undefined outside a browser. */
function browserPage(): OAuthCallbackPage | undefined {
  const { location, history } = globalThis as BrowserPage;
  if (location === undefined || history === undefined) return undefined;
  return { url: location.href, replaceUrl: (url) => history.replaceState(history.state, '', url) };
}

/** Where the browser comes back to after a provider: a path of this site, the current page's by default. */
function redirectPath(redirect: string | undefined): string {
  const { location } = globalThis as BrowserPage;
  const path = redirect ?? (location === undefined ? '/' : location.pathname + location.search);
  if (!path.startsWith('/') || path.startsWith('//') || path.includes('\\'))
    throw new TypeError(`redirect must be a path on this site (starting with one /), not ${JSON.stringify(path)}`);
  return path;
}

/** Node's timers would keep a process alive for a refresh nobody waits for; browsers' timers are numbers. */
function unref(timer: ReturnType<typeof setTimeout>): void {
  const handle: unknown = timer;
  if (typeof handle === 'object' && handle !== null && 'unref' in handle && typeof handle.unref === 'function')
    (handle as { unref(): void }).unref();
}

function isMfaRequiredResponse(value: unknown): value is MfaRequiredResponse & { expires_in?: unknown } {
  if (typeof value !== 'object' || value === null) return false;
  const body = value as Record<string, unknown>;
  return body.mfa_required === true && typeof body.mfa_token === 'string' && body.mfa_token !== '';
}

function isTokenResponse(value: unknown): value is TokenResponse {
  if (typeof value !== 'object' || value === null) return false;
  const body = value as Record<string, unknown>;
  return typeof body.access_token === 'string' && typeof body.expires_in === 'number';
}

/**
 * The gatepass client: logs in, keeps the access token in memory only, attaches it to requests,
 * refreshes it shortly before expiry and once after a `401 token_expired` — never two refreshes at
 * once — and reports sign-in, refresh and sign-out as events.
 */
export class GatepassClient {
  readonly mode: ClientMode;
  readonly baseUrl: string;
  private readonly send: FetchFunction;
  private readonly marginMs: number;
  private readonly autoRefresh: boolean;
  private readonly now: () => number;
  private readonly webauthn: WebAuthnFunctions | undefined;
  private readonly listeners = new Set<(event: AuthEvent) => void>();

  private token: string | null = null;
  /** When the access token expires, on `now`'s clock (from `expires_in`, so server clock skew does not matter). */
  private tokenExpiresAt = 0;
  /** Body mode only: cookie mode never lets the refresh token reach script. */
  private refreshToken: string | null = null;
  /** The second step of a login in progress: the server's mfa_token, never exposed. */
  private pending: { mfaToken: string; challenge: MfaChallenge } | null = null;
  /** The refresh in flight, which every caller joins (single flight). */
  private refreshing: Promise<void> | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Bumped by every sign-in and sign-out, so that a refresh answering late cannot undo a logout. */
  private generation = 0;
  private disposed = false;

  constructor(options: GatepassClientOptions = {}) {
    this.mode = options.mode ?? (isBrowser() ? 'cookie' : 'body');
    this.baseUrl = (options.baseUrl ?? '').replace(/\/+$/, '');
    if (this.baseUrl === '' && pageOrigin() === undefined) throw new TypeError('GatepassClient needs a baseUrl outside a browser');
    const fetchImpl = options.fetch ?? ((input: string, init: RequestInit) => globalThis.fetch(input, init));
    this.send = async (input, init) => {
      try {
        return await fetchImpl(input, this.mode === 'cookie' ? { credentials: 'include', ...init } : init);
      } catch (error) {
        // The caller's own AbortSignal: theirs to recognise, as with fetch.
        if (error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError')) throw error;
        throw new GatepassNetworkError(
          `${init.method ?? 'GET'} ${input} failed: ${error instanceof Error ? error.message : String(error)}`,
          { cause: error },
        );
      }
    };
    this.marginMs = (options.refreshMarginSeconds ?? 30) * 1000;
    this.autoRefresh = options.autoRefresh ?? true;
    this.now = options.now ?? Date.now;
    this.webauthn = options.webauthn;
  }

  /** The current access token (memory only), or null when signed out. */
  get accessToken(): string | null {
    return this.token;
  }

  /** When the access token expires (ms on the client's clock), or null when signed out. */
  get expiresAt(): number | null {
    return this.token === null ? null : this.tokenExpiresAt;
  }

  get isSignedIn(): boolean {
    return this.token !== null;
  }

  /** The two-factor sign-in waiting for `verifyMfa(code)`, or null (none, or expired). */
  get pendingMfa(): MfaChallenge | null {
    if (this.pending !== null && this.now() >= this.pending.challenge.expiresAt) this.pending = null;
    return this.pending?.challenge ?? null;
  }

  // --- events -------------------------------------------------------------------------------

  /** Calls `listener` with every auth event; returns the function that unsubscribes it. */
  subscribe(listener: (event: AuthEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Calls `listener` with each event of one type; returns the function that unsubscribes it. */
  on<T extends AuthEventType>(type: T, listener: (event: AuthEventOf<T>) => void): () => void {
    return this.subscribe((event) => {
      if (event.type === type) listener(event as AuthEventOf<T>);
    });
  }

  private emit(event: AuthEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (error) {
        // A failing listener must not break sign-in or refresh for the others.
        console.error('gatepass client: an auth event listener threw', error);
      }
    }
  }

  // --- account and session calls --------------------------------------------------------------

  /** Creates an account (it does not sign in). */
  register(input: RegisterInput): Promise<User> {
    return this.anonymous<User>('POST', '/auth/register', input);
  }

  /**
   * Logs in and returns the user; in cookie mode the refresh token is set as the HttpOnly cookie.
   * When the account has two-factor sign-in on, nobody is signed in yet: the answer is an
   * MfaChallenge (`isMfaChallenge(result)`), and `verifyMfa(code)` completes the login. A new
   * login forgets any challenge still pending.
   */
  async login(credentials: Credentials): Promise<LoginResult> {
    this.pending = null;
    const response = await this.send(this.url('/auth/login'), {
      method: 'POST',
      headers: this.jsonHeaders(true),
      body: JSON.stringify({ email: credentials.email, password: credentials.password }),
    });
    const body = await this.parse<unknown>(response);
    if (isMfaRequiredResponse(body)) {
      const lifetimeMs = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in * 1000 : MFA_TOKEN_LIFETIME_MS;
      const challenge: MfaChallenge = {
        mfaRequired: true,
        methods: Array.isArray(body.methods) ? [...body.methods] : ['totp', 'recovery_code'],
        expiresAt: this.now() + lifetimeMs,
      };
      this.pending = { mfaToken: body.mfa_token, challenge };
      return challenge;
    }
    return this.signIn(this.tokensOf(body, response));
  }

  /**
   * The second step of a login that answered an MfaChallenge: `code` is a current TOTP code or one
   * of the recovery codes. Signs in (as `login()` does, cookie mode included) and returns the user.
   * A wrong code (400 `invalid_code`) leaves the challenge pending for another try; a 401
   * `invalid_mfa_token` (expired, used, or after 5 wrong codes) ends it, as does success: log in
   * again then. Without a pending challenge it rejects with 401 `invalid_mfa_token` at once.
   */
  verifyMfa(code: string): Promise<User> {
    return this.completeSecondStep('/auth/mfa/verify', () => Promise.resolve({ code: code.trim() }));
  }

  /**
   * The second step with a passkey instead of a code, when the challenge's `methods` include
   * `passkey` (the account has one): the browser asks for one of the account's own passkeys (the
   * `webauthn` option's `startAuthentication`), and the login completes as with `verifyMfa`. A refused
   * passkey is a 400 `invalid_code`, counted like a wrong code.
   */
  async verifyMfaWithPasskey(): Promise<User> {
    const webauthn = this.webauthnFunctions();
    return this.completeSecondStep('/auth/mfa/passkey/verify', async (mfaToken) => {
      const optionsJSON = await this.anonymous<PasskeyOptionsJSON>('POST', '/auth/mfa/passkey/options', { mfa_token: mfaToken });
      return { credential: await webauthn.startAuthentication({ optionsJSON }) };
    });
  }

  /** Spends the pending challenge at `path` with the proof `proofOf` makes for its mfa_token. */
  private async completeSecondStep(path: string, proofOf: (mfaToken: string) => Promise<Record<string, unknown>>): Promise<User> {
    const pending = this.pending;
    if (pending === null || this.now() >= pending.challenge.expiresAt) {
      this.pending = null;
      throw new GatepassApiError(
        401,
        'invalid_mfa_token',
        pending === null ? 'No two-factor sign-in is pending: log in first' : 'The two-factor sign-in expired: log in again',
      );
    }
    const proof = await proofOf(pending.mfaToken);
    const response = await this.send(this.url(path), {
      method: 'POST',
      headers: this.jsonHeaders(true),
      body: JSON.stringify({ mfa_token: pending.mfaToken, ...proof }),
    });
    if (!response.ok) {
      const error = await errorFromResponse(response);
      // The challenge is over on the server (expired, used, too many wrong codes): only a new login helps.
      if (error.status === 401 && this.pending === pending) this.pending = null;
      throw error;
    }
    if (this.pending === pending) this.pending = null;
    return this.signIn(await this.readTokens(response));
  }

  /** Forgets a pending two-factor sign-in (the user gave up); the server lets its mfa_token expire. */
  cancelMfa(): void {
    this.pending = null;
  }

  /**
   * Signs in again without a password when the server still holds a session for this client: in
   * cookie mode, the refresh cookie that survived a page reload. Returns the user, or null when
   * there is no session to restore.
   */
  async restore(): Promise<User | null> {
    if (this.mode === 'body' && this.refreshToken === null) return null;
    try {
      await this.refresh();
    } catch (error) {
      // 401: no cookie at all, or an expired, revoked or already used one.
      if (error instanceof GatepassApiError && error.status === 401) return null;
      throw error;
    }
    return this.me();
  }

  /** Ends this session on the server (its refresh and access tokens stop working) and forgets the tokens. */
  async logout(): Promise<void> {
    try {
      if (this.token !== null) {
        const response = await this.fetch('/auth/logout', {
          method: 'POST',
          headers: this.mode === 'cookie' ? { [COOKIE_HEADER]: '1' } : {},
        });
        // A 401 means the session is already over on the server: the goal is reached.
        if (!response.ok && response.status !== 401) throw await errorFromResponse(response);
      }
    } finally {
      this.endSession('logout');
    }
  }

  /** Ends every session of the user, on every device. */
  async logoutAll(): Promise<void> {
    try {
      const response = await this.fetch('/auth/logout-all', { method: 'POST' });
      if (!response.ok && response.status !== 401) throw await errorFromResponse(response);
    } finally {
      this.endSession('logout_all');
    }
  }

  me(): Promise<User> {
    return this.request<User>('GET', '/users/me');
  }

  // --- email verification ----------------------------------------------------------------------

  /**
   * Spends the token of a verification email (its `token=` line, or the `#verify-email=` part of its
   * link); needs no sign-in. Rejects with 400 `invalid_token` for an unknown, used or expired one.
   */
  async verifyEmail(token: string): Promise<void> {
    await this.anonymous<undefined>('POST', '/auth/email/verify', { token });
  }

  /** Asks for a new verification email (202); 409 `already_verified` when there is nothing to verify. */
  async resendVerificationEmail(): Promise<void> {
    await this.request<unknown>('POST', '/auth/email/verify/resend');
  }

  // --- two-factor sign-in (TOTP) -----------------------------------------------------------------

  /** Whether TOTP is on for the signed-in user, and how many recovery codes are left. */
  mfaStatus(): Promise<MfaStatus> {
    return this.request<MfaStatus>('GET', '/auth/mfa');
  }

  /** Starts TOTP enrolment: a new secret, its `otpauth://` URI and QR code. Not on until `confirmTotp`. */
  setupTotp(): Promise<TotpSetup> {
    return this.request<TotpSetup>('POST', '/auth/mfa/totp/setup');
  }

  /** Turns TOTP on with a current code of the new secret; the answer's recovery codes are shown only this once. */
  confirmTotp(code: string): Promise<RecoveryCodes> {
    return this.request<RecoveryCodes>('POST', '/auth/mfa/totp/confirm', { code: code.trim() });
  }

  /** Turns TOTP off: the password and a current code (TOTP or recovery code). */
  async disableTotp(input: DisableTotpInput): Promise<void> {
    await this.request<undefined>('POST', '/auth/mfa/totp/disable', {
      ...(input.password !== undefined && { password: input.password }),
      code: input.code.trim(),
    });
  }

  /** A new set of recovery codes for a current code; the old set stops working. */
  regenerateRecoveryCodes(code: string): Promise<RecoveryCodes> {
    return this.request<RecoveryCodes>('POST', '/auth/mfa/recovery-codes', { code: code.trim() });
  }

  // --- passkeys (WebAuthn) ----------------------------------------------------------------------

  /**
   * Registers a passkey for the signed-in user: the server's creation options, the browser's
   * ceremony (the `webauthn` option's `startRegistration`: the user picks an authenticator and
   * proves presence with a PIN or biometric), then the server's verification. Resolves to the new
   * passkey; rejects with the browser's error when the user cancels (`NotAllowedError`), or a
   * GatepassApiError (400 when verification fails).
   */
  async registerPasskey(name?: string): Promise<Passkey> {
    const webauthn = this.webauthnFunctions();
    const optionsJSON = await this.request<PasskeyOptionsJSON>('POST', '/auth/passkeys/register/options', {});
    const credential = await webauthn.startRegistration({ optionsJSON });
    const trimmed = name?.trim();
    return this.request<Passkey>('POST', '/auth/passkeys/register/verify', {
      ...credential,
      ...(trimmed !== undefined && trimmed !== '' && { name: trimmed }),
    });
  }

  /**
   * Signs in with a passkey, no email typed: the browser offers this site's passkeys (the `webauthn`
   * option's `startAuthentication`). Signs in exactly as `login()` does (token in memory, cookie mode
   * included) and returns the user; a passkey needs no TOTP step. The server refuses an unknown or
   * deleted passkey with 401 `invalid_credential`. A login's pending two-factor step is forgotten.
   */
  async loginWithPasskey(): Promise<User> {
    const webauthn = this.webauthnFunctions();
    this.pending = null;
    const optionsJSON = await this.anonymous<PasskeyOptionsJSON>('POST', '/auth/passkeys/login/options', {});
    const assertion = await webauthn.startAuthentication({ optionsJSON });
    const response = await this.send(this.url('/auth/passkeys/login/verify'), {
      method: 'POST',
      headers: this.jsonHeaders(true),
      body: JSON.stringify(assertion),
    });
    return this.signIn(await this.readTokens(response));
  }

  /** The signed-in user's passkeys. */
  listPasskeys(): Promise<Passkey[]> {
    return this.request<Passkey[]>('GET', '/auth/passkeys');
  }

  renamePasskey(id: string, name: string): Promise<Passkey> {
    return this.request<Passkey>('PATCH', `/auth/passkeys/${encodeURIComponent(id)}`, { name: name.trim() });
  }

  /** Deletes one of the user's passkeys: it signs in no more (sessions it started go on until logged out). */
  async deletePasskey(id: string): Promise<void> {
    await this.request<undefined>('DELETE', `/auth/passkeys/${encodeURIComponent(id)}`);
  }

  // --- external identity providers (OpenID Connect, GitHub) -----------------------------------------

  /** The providers the server offers, for a "Sign in with <name>" button each. */
  listProviders(): Promise<OAuthProvider[]> {
    return this.anonymousGet<OAuthProvider[]>('/auth/oauth/providers');
  }

  /**
   * The address that starts a sign-in with a provider: navigate the browser there (`location.assign`).
   * The provider sends it back through the server to `redirect` (a path of this site; the current page
   * by default), where `completeOAuthCallback()` finishes. Cookie mode only: the session comes back as
   * the refresh cookie.
   */
  oauthStartUrl(providerId: string, options: { redirect?: string } = {}): string {
    const query = new URLSearchParams({ redirect: redirectPath(options.redirect) });
    return `${this.baseUrl === '' ? (pageOrigin() ?? '') : this.baseUrl}/auth/oauth/${encodeURIComponent(providerId)}/start?${query.toString()}`;
  }

  /**
   * On the page a provider sign-in (or link) came back to: reads what the server put on the address —
   * `?error=<code>`, `#mfa=<mfa_token>&methods=…`, `?linked=<provider>` — removes it from the address bar so that a
   * reload does not act on it again, and restores the session that the callback's refresh cookie holds.
   * With `mfa_required`, `verifyMfa(code)` (or `verifyMfaWithPasskey()` when the challenge's methods
   * include `passkey`) completes the sign-in as after `login()`. Call it once at page
   * load, instead of `restore()`. `page` replaces the browser's location and history (Node, tests).
   */
  async completeOAuthCallback(page: OAuthCallbackPage | undefined = browserPage()): Promise<OAuthCallbackResult> {
    if (page === undefined) throw new TypeError('completeOAuthCallback needs a page: a browser, or { url, replaceUrl }');
    const url = new URL(page.url);
    const error = url.searchParams.get('error');
    const linked = url.searchParams.get('linked');
    const fragment = new URLSearchParams(url.hash.slice(1));
    const mfaToken = fragment.get('mfa');
    if (error !== null || linked !== null || mfaToken !== null) {
      url.searchParams.delete('error');
      url.searchParams.delete('linked');
      if (mfaToken !== null) url.hash = '';
      page.replaceUrl(url.pathname + url.search + url.hash);
    }
    if (mfaToken !== null && mfaToken !== '') {
      const challenge: MfaChallenge = {
        mfaRequired: true,
        methods: secondStepMethods(fragment.get('methods')),
        expiresAt: this.now() + MFA_TOKEN_LIFETIME_MS,
      };
      this.pending = { mfaToken, challenge };
      return { status: 'mfa_required', challenge };
    }
    const user = await this.restore();
    if (error !== null) return { status: 'error', code: CALLBACK_CODE.test(error) ? error : 'unknown_error', user };
    if (linked !== null && PROVIDER_ID.test(linked)) return { status: 'linked', provider: linked, user };
    return user === null ? { status: 'signed_out' } : { status: 'signed_in', user };
  }

  /**
   * Starts linking a provider's account to the signed-in one: resolves to the provider's authorization
   * URL, to navigate the browser to. It comes back to `redirect` (the current page by default) with
   * `?linked=<provider>`, or `?error=<code>` (`identity_in_use` when that account is linked to someone else).
   */
  async linkIdentity(providerId: string, options: { redirect?: string } = {}): Promise<string> {
    const body = await this.request<{ authorization_url: string }>('POST', `/auth/identities/link/${encodeURIComponent(providerId)}`, {
      redirect: redirectPath(options.redirect),
    });
    return body.authorization_url;
  }

  /** The external identities linked to the signed-in account. */
  listIdentities(): Promise<LinkedIdentity[]> {
    return this.request<LinkedIdentity[]>('GET', '/auth/identities');
  }

  /** Unlinks one; 409 `last_sign_in_method` when it is the account's last way to sign in (no password, passkey or other identity). */
  async unlinkIdentity(id: number): Promise<void> {
    await this.request<undefined>('DELETE', `/auth/identities/${encodeURIComponent(String(id))}`);
  }

  sessions(): Promise<Session[]> {
    return this.request<Session[]>('GET', '/auth/sessions');
  }

  /** Ends one of the user's sessions; ending the current one signs this client out. */
  async revokeSession(id: string): Promise<void> {
    const current = this.currentSessionId();
    await this.request<undefined>('DELETE', `/auth/sessions/${encodeURIComponent(id)}`);
    if (id === current) this.endSession('logout');
  }

  /**
   * A JSON call with the access token: resolves to the parsed body (undefined for 204), or rejects
   * with a GatepassApiError carrying the server's status, code and detail.
   */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.fetch(path, {
      method,
      ...(body !== undefined && { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) }),
    });
    return this.parse<T>(response);
  }

  // --- the authenticated fetch ----------------------------------------------------------------

  /**
   * `fetch` with the access token attached, for paths on the gatepass server (`/tasks`) or absolute
   * URLs of its origin; the token is never sent anywhere else. The token is refreshed first when it
   * is about to expire, and the request is sent once more after one refresh when the server answers
   * `401 token_expired`. Resolves to the Response whatever its status, like fetch.
   */
  async fetch(input: string | URL, init: RequestInit = {}): Promise<Response> {
    const url = this.url(input);
    await this.freshToken();
    const token = this.token;
    const first = await this.send(url, this.withBearer(init, token));
    if (first.status !== 401 || token === null || !REFRESHABLE_CODES.has(await codeOf(first))) return first;
    // Another request may already have refreshed while this one was on its way.
    if (this.token === token) {
      if (!this.canRefresh()) return first;
      try {
        await this.refresh();
      } catch (error) {
        if (error instanceof GatepassApiError) return first;
        throw error;
      }
    }
    if (this.token === null) return first;
    return this.send(url, this.withBearer(init, this.token));
  }

  /**
   * Exchanges the refresh token (body, or cookie) for a new pair. Concurrent callers share one
   * request. When the server refuses it, the client is signed out (`session_ended`).
   */
  refresh(): Promise<void> {
    this.refreshing ??= this.runRefresh().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  /** Stops the refresh timer; the client keeps working for explicit calls. */
  dispose(): void {
    this.disposed = true;
    this.clearTimer();
  }

  // --- internals ------------------------------------------------------------------------------

  private async runRefresh(): Promise<void> {
    const generation = this.generation;
    const wasSignedIn = this.token !== null;
    let init: RequestInit;
    if (this.mode === 'cookie') {
      init = { method: 'POST', headers: { [COOKIE_HEADER]: '1' } };
    } else {
      if (this.refreshToken === null) throw new GatepassApiError(401, 'not_authenticated', 'Not signed in: no refresh token');
      init = {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ refresh_token: this.refreshToken }),
      };
    }
    const response = await this.send(this.url('/auth/refresh'), init);
    if (!response.ok) {
      const error = await errorFromResponse(response);
      // The session cannot go on (expired, reused, revoked, disabled, no cookie); 429 and 5xx may pass.
      if (generation === this.generation && [401, 403].includes(error.status)) this.endSession('session_ended', error);
      throw error;
    }
    const tokens = await this.readTokens(response);
    // A logout (or another login) happened meanwhile: this answer belongs to a finished session.
    if (generation !== this.generation) return;
    this.accept(tokens);
    this.emit(
      wasSignedIn
        ? { type: 'refreshed', expiresAt: this.tokenExpiresAt }
        : { type: 'signed_in', via: 'restore', expiresAt: this.tokenExpiresAt },
    );
  }

  /** Before a request: wait for a refresh in flight, or start one when the token is about to expire. */
  private async freshToken(): Promise<void> {
    if (this.refreshing !== null) {
      await this.refreshing.catch(() => undefined);
      return;
    }
    if (this.token !== null && this.canRefresh() && this.now() >= this.tokenExpiresAt - this.marginMs) {
      // A failed refresh has already signed out (or the network is down): the request goes as it can.
      await this.refresh().catch(() => undefined);
    }
  }

  private canRefresh(): boolean {
    return this.mode === 'cookie' || this.refreshToken !== null;
  }

  /** A login's (or its second step's) token response: the client is signed in from now on. */
  private async signIn(tokens: TokenResponse): Promise<User> {
    this.generation += 1;
    this.accept(tokens);
    this.emit({ type: 'signed_in', via: 'login', expiresAt: this.tokenExpiresAt });
    return this.me();
  }

  /** JSON headers, with the cookie-mode header on the routes that set or read the refresh cookie. */
  private jsonHeaders(cookieRoute: boolean): Record<string, string> {
    return { 'Content-Type': 'application/json', ...(cookieRoute && this.mode === 'cookie' && { [COOKIE_HEADER]: '1' }) };
  }

  private accept(tokens: TokenResponse): void {
    this.token = tokens.access_token;
    this.tokenExpiresAt = this.now() + tokens.expires_in * 1000;
    if (this.mode === 'body') this.refreshToken = tokens.refresh_token ?? null;
    this.schedule();
  }

  private endSession(reason: SignedOutReason, error?: GatepassApiError): void {
    const wasSignedIn = this.token !== null;
    this.generation += 1;
    this.token = null;
    this.tokenExpiresAt = 0;
    this.refreshToken = null;
    this.clearTimer();
    if (wasSignedIn) this.emit({ type: 'signed_out', reason, ...(error !== undefined && { error }) });
  }

  private schedule(delayMs?: number): void {
    this.clearTimer();
    if (!this.autoRefresh || this.disposed || this.token === null || !this.canRefresh()) return;
    const delay = Math.min(MAX_TIMER_MS, delayMs ?? Math.max(MIN_TIMER_MS, this.tokenExpiresAt - this.marginMs - this.now()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refresh().catch((error: unknown) => {
        // Refused: already signed out. Unreachable: try again a little later, while signed in.
        if (!(error instanceof GatepassApiError)) this.schedule(RETRY_TIMER_MS);
      });
    }, delay);
    unref(this.timer);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private webauthnFunctions(): WebAuthnFunctions {
    if (this.webauthn === undefined)
      throw new TypeError(
        'Passkeys need the browser half of WebAuthn: new GatepassClient({ webauthn: { startRegistration, startAuthentication } }) from @simplewebauthn/browser',
      );
    return this.webauthn;
  }

  private currentSessionId(): string | undefined {
    if (this.token === null) return undefined;
    try {
      const sid = decodeToken(this.token).payload.sid;
      return typeof sid === 'string' ? sid : undefined;
    } catch {
      return undefined;
    }
  }

  /** A path on the server, or an absolute URL that must be on the server's origin. */
  private url(input: string | URL): string {
    const text = input instanceof URL ? input.href : input;
    if (text.startsWith('/') && !text.startsWith('//')) return this.baseUrl + text;
    const target = new URL(text);
    const origin = this.baseUrl === '' ? pageOrigin() : new URL(this.baseUrl).origin;
    if (target.origin !== origin)
      throw new TypeError(`GatepassClient sends its token only to ${origin ?? 'its server'}, not to ${target.origin}`);
    return target.href;
  }

  private withBearer(init: RequestInit, token: string | null): RequestInit {
    const headers = new Headers(init.headers);
    if (token !== null) headers.set('Authorization', `Bearer ${token}`);
    return { ...init, headers };
  }

  private async anonymous<T>(method: string, path: string, body: unknown): Promise<T> {
    const response = await this.send(this.url(path), {
      method,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    return this.parse<T>(response);
  }

  private async anonymousGet<T>(path: string): Promise<T> {
    return this.parse<T>(await this.send(this.url(path), { method: 'GET' }));
  }

  private async parse<T>(response: Response): Promise<T> {
    if (!response.ok) throw await errorFromResponse(response);
    if (response.status === 204) return undefined as T;
    try {
      return (await response.json()) as T;
    } catch (error) {
      throw new GatepassNetworkError(`${response.url} answered ${response.status} with a body that is not JSON`, { cause: error });
    }
  }

  private async readTokens(response: Response): Promise<TokenResponse> {
    return this.tokensOf(await this.parse<unknown>(response), response);
  }

  private tokensOf(body: unknown, response: Response): TokenResponse {
    if (!isTokenResponse(body)) throw new GatepassNetworkError(`${response.url} answered without an access token`);
    return body;
  }
}

/** The `code` of an error answer, read from a copy so the caller still gets an unread Response. */
async function codeOf(response: Response): Promise<string> {
  try {
    const body: unknown = await response.clone().json();
    return typeof body === 'object' && body !== null && typeof (body as { code?: unknown }).code === 'string'
      ? (body as { code: string }).code
      : '';
  } catch {
    return '';
  }
}

/** Same as `new GatepassClient(options)`. */
export function createClient(options: GatepassClientOptions = {}): GatepassClient {
  return new GatepassClient(options);
}
