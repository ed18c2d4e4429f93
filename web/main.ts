import { browserSupportsWebAuthn, startAuthentication, startRegistration } from '@simplewebauthn/browser';
import {
  GatepassApiError,
  createClient,
  decodeToken,
  isMfaChallenge,
  type AuthEvent,
  type MfaMethod,
  type User,
} from '../src/client/index.js';
import { AdminView } from './admin.js';
import { byId } from './dom.js';
import { EmailView, followVerificationLink } from './email.js';
import { ExternalSignInView, describeCallbackError } from './external-sign-in.js';
import { attempt, installErrorDismiss, showError, showStatus } from './feedback.js';
import { PasskeysView } from './passkeys.js';
import { SessionsView } from './sessions.js';
import { TasksView } from './tasks.js';
import { TokenView } from './token-view.js';
import { TwoFactorView } from './two-factor.js';

/**
 * The gatepass page: cookie mode, so the refresh token stays in the HttpOnly cookie and the access
 * token in this module's memory — nothing in localStorage, sessionStorage or a readable cookie.
 */
const client = createClient({ mode: 'cookie', webauthn: { startRegistration, startAuthentication } });
const tokenView = new TokenView(client);
const tasks = new TasksView(client);
const sessions = new SessionsView(client);
const admin = new AdminView(client);
const email = new EmailView(client, showUpdatedUser);
const twoFactor = new TwoFactorView(client);
const passkeys = new PasskeysView(client, browserSupportsWebAuthn());
const external = new ExternalSignInView(client);
let user: User | null = null;

/** The account as the server sees it now, shown if it is still the one signed in. */
function showUpdatedUser(current: User): void {
  if (user !== null && current.id === user.id) email.render(current);
}

type PageState = 'loading' | 'signed-in' | 'signed-out';

function setState(state: PageState): void {
  document.body.dataset.state = state;
  byId('loading', HTMLParagraphElement).hidden = state !== 'loading';
  byId('signed-out', HTMLElement).hidden = state !== 'signed-out';
  byId('signed-in', HTMLElement).hidden = state !== 'signed-in';
  byId('account', HTMLDivElement).hidden = state !== 'signed-in';
}

function roleOfToken(): string | undefined {
  const token = client.accessToken;
  if (token === null) return undefined;
  const role = decodeToken(token).payload.role;
  return typeof role === 'string' ? role : undefined;
}

/** Shows the signed-in page for `current` and loads its data. */
async function enter(current: User): Promise<void> {
  user = current;
  byId('who', HTMLSpanElement).textContent = `${current.email} · ${current.role}`;
  setState('signed-in');
  tokenView.render();
  email.render(current);
  twoFactor.load();
  const isAdmin = current.role === 'admin';
  byId('admin-panel', HTMLElement).hidden = !isAdmin;
  const loads = [tasks.load(), sessions.load(), passkeys.load(), external.load(), ...(isAdmin ? [admin.load()] : [])];
  const results = await Promise.allSettled(loads);
  for (const result of results) if (result.status === 'rejected') showError(result.reason, 'Could not load your data');
}

function leave(): void {
  user = null;
  tokenView.clear();
  tasks.clear();
  sessions.clear();
  admin.clear();
  email.clear();
  twoFactor.clear();
  passkeys.clear();
  external.clear();
  showCodePrompt(false);
  setState('signed-out');
  byId('login-email', HTMLInputElement).focus();
}

/**
 * The second step of a login (TOTP or recovery code, or a passkey when `methods` offers one) in place
 * of the login and registration forms.
 */
function showCodePrompt(visible: boolean, methods: readonly MfaMethod[] = []): void {
  if (!visible) client.cancelMfa();
  byId('mfa-form', HTMLFormElement).hidden = !visible;
  byId('mfa-passkey', HTMLButtonElement).hidden = !(visible && methods.includes('passkey') && browserSupportsWebAuthn());
  byId('login-form', HTMLFormElement).hidden = visible;
  byId('register-form', HTMLFormElement).hidden = visible;
  byId('mfa-code', HTMLInputElement).value = '';
  if (visible) byId('mfa-code', HTMLInputElement).focus();
}

async function signedIn(current: User): Promise<void> {
  showStatus(`Logged in as ${current.email}.`);
  await enter(current);
}

function onAuthEvent(event: AuthEvent): void {
  if (event.type === 'refreshed') {
    tokenView.render(true);
    // A role change ends the old token; the refreshed one carries the new role.
    if (user !== null && roleOfToken() !== user.role) void client.me().then(enter, (error: unknown) => showError(error));
  } else if (event.type === 'signed_out') {
    leave();
    if (event.reason === 'session_ended') showError(event.error ?? 'The session ended', 'Your session ended; please log in again');
    else showStatus(event.reason === 'logout_all' ? 'Logged out on every device.' : 'Logged out.');
  }
}

function fieldValue(id: string): string {
  return byId(id, HTMLInputElement).value;
}

function installForms(): void {
  byId('login-form', HTMLFormElement).addEventListener('submit', (event) => {
    event.preventDefault();
    void attempt(async () => {
      const result = await client.login({ email: fieldValue('login-email').trim(), password: fieldValue('login-password') });
      byId('login-password', HTMLInputElement).value = '';
      if (isMfaChallenge(result)) {
        showCodePrompt(true, result.methods);
        showStatus(
          result.methods.includes('passkey')
            ? 'Password accepted: now a code from your authenticator app, a recovery code, or one of your passkeys.'
            : 'Password accepted: now a code from your authenticator app, or a recovery code.',
        );
        return;
      }
      await signedIn(result);
    }, 'Login failed');
  });

  // One proof at a time: the mfa_token is single use, so a second submission racing the first would only fail.
  let verifying = false;
  const completeSecondStep = (step: () => Promise<User>) => {
    if (verifying) return;
    verifying = true;
    const input = byId('mfa-code', HTMLInputElement);
    void attempt(async () => {
      try {
        const current = await step();
        showCodePrompt(false);
        await signedIn(current);
      } catch (error) {
        // Expired, used, or five wrong codes: only a new login helps. A wrong code may be tried again.
        if (error instanceof GatepassApiError && error.status === 401) {
          showCodePrompt(false);
          byId('login-password', HTMLInputElement).focus();
          showError(error, 'The two-factor sign-in ended; please log in again');
          return;
        }
        input.select();
        throw error;
      }
    }, 'Two-factor sign-in failed').finally(() => {
      verifying = false;
    });
  };
  byId('mfa-form', HTMLFormElement).addEventListener('submit', (event) => {
    event.preventDefault();
    completeSecondStep(() => client.verifyMfa(byId('mfa-code', HTMLInputElement).value));
  });
  byId('mfa-passkey', HTMLButtonElement).addEventListener('click', () => {
    completeSecondStep(() => client.verifyMfaWithPasskey());
  });
  byId('mfa-cancel', HTMLButtonElement).addEventListener('click', () => {
    showCodePrompt(false);
    showStatus('Login cancelled.');
    byId('login-password', HTMLInputElement).focus();
  });

  // The browser offers this site's passkeys; nothing is typed, and no TOTP step follows.
  const passkeyLogin = byId('passkey-login', HTMLButtonElement);
  passkeyLogin.disabled = !browserSupportsWebAuthn();
  if (passkeyLogin.disabled) passkeyLogin.title = 'This browser does not support passkeys';
  passkeyLogin.addEventListener('click', () => {
    passkeyLogin.disabled = true;
    void attempt(async () => {
      await signedIn(await client.loginWithPasskey());
    }, 'Passkey sign-in failed').finally(() => {
      passkeyLogin.disabled = false;
    });
  });

  byId('register-form', HTMLFormElement).addEventListener('submit', (event) => {
    event.preventDefault();
    const fullName = fieldValue('register-name').trim();
    void attempt(async () => {
      const created = await client.register({
        email: fieldValue('register-email').trim(),
        password: fieldValue('register-password'),
        ...(fullName !== '' && { full_name: fullName }),
      });
      byId('register-form', HTMLFormElement).reset();
      byId('login-email', HTMLInputElement).value = created.email;
      showStatus(`Account ${created.email} created — now log in.`);
      byId('login-password', HTMLInputElement).focus();
    }, 'Registration failed');
  });

  byId('logout', HTMLButtonElement).addEventListener('click', () => void attempt(() => client.logout(), 'Logout failed'));
  byId('logout-all', HTMLButtonElement).addEventListener('click', () => void attempt(() => client.logoutAll(), 'Logout failed'));
}

/** A verification link opened here (on load, or pasted into this tab): spent, then the panel brought up to date. */
async function onVerificationLink(): Promise<void> {
  if (!(await followVerificationLink(client)) || user === null) return;
  try {
    // A new access token, whose email_verified claim says so too.
    await client.refresh();
    showUpdatedUser(await client.me());
  } catch (error) {
    showError(error, 'Could not reload your account');
  }
}

async function boot(): Promise<void> {
  installErrorDismiss();
  installForms();
  client.subscribe(onAuthEvent);
  setState('loading');
  window.addEventListener('hashchange', () => void onVerificationLink());
  // Before the session check, so that the account it loads already shows the address verified.
  await onVerificationLink();
  try {
    await external.loadProviders();
  } catch (error) {
    showError(error, 'Could not load the sign-in providers');
  }
  try {
    await completeSignIn();
  } catch (error) {
    leave();
    showError(error, 'Could not check for a session');
  }
}

/**
 * The session at load: the silent refresh (the HttpOnly cookie survived the reload, the access token did
 * not), after what a provider sign-in put on the address — a second factor to enter, an error, a link.
 */
async function completeSignIn(): Promise<void> {
  const result = await client.completeOAuthCallback();
  switch (result.status) {
    case 'signed_in':
      await enter(result.user);
      return;
    case 'signed_out':
      leave();
      return;
    case 'mfa_required':
      // Not leave(): it cancels the pending challenge that the prompt is for.
      setState('signed-out');
      showCodePrompt(true, result.challenge.methods);
      showStatus(
        result.challenge.methods.includes('passkey')
          ? 'Signed in at the provider: now a code from your authenticator app, a recovery code, or one of your passkeys.'
          : 'Signed in at the provider: now a code from your authenticator app, or a recovery code.',
      );
      return;
    case 'error':
      if (result.user === null) leave();
      else await enter(result.user);
      showError(describeCallbackError(result.code));
      return;
    case 'linked':
      if (result.user === null) leave();
      else await enter(result.user);
      showStatus(`${external.nameOf(result.provider)} linked: it signs you in here from now on.`);
      return;
  }
}

void boot();
