import { GatepassApiError, type GatepassClient, type User } from '../src/client/index.js';
import { byId } from './dom.js';
import { attempt, showError, showStatus } from './feedback.js';

/** The fragment of the link in a verification email: `<PUBLIC_URL>/#verify-email=<TOKEN>`. */
const LINK_PREFIX = '#verify-email=';

/** Whether the address of the signed-in user is verified, and the button that mails a new link. */
export class EmailView {
  constructor(
    private readonly client: GatepassClient,
    /** Called with the user as the server now sees them (after an answer says the address is verified). */
    private readonly onUser: (user: User) => void,
  ) {
    byId('email-resend', HTMLButtonElement).addEventListener('click', () => void this.resend());
  }

  render(user: User): void {
    byId('email-address', HTMLSpanElement).textContent = user.email;
    const state = byId('email-state', HTMLSpanElement);
    state.textContent = user.email_verified ? 'verified' : 'not verified';
    state.className = user.email_verified ? 'badge verified' : 'badge unverified';
    byId('email-unverified-hint', HTMLParagraphElement).hidden = user.email_verified;
    byId('email-resend', HTMLButtonElement).hidden = user.email_verified;
    document.body.dataset.emailVerified = String(user.email_verified);
  }

  clear(): void {
    byId('email-address', HTMLSpanElement).textContent = '';
    byId('email-state', HTMLSpanElement).textContent = '';
    delete document.body.dataset.emailVerified;
  }

  private async resend(): Promise<void> {
    const button = byId('email-resend', HTMLButtonElement);
    button.disabled = true;
    await attempt(async () => {
      try {
        await this.client.resendVerificationEmail();
        showStatus('A new verification email is on its way; its link replaces the earlier ones.');
      } catch (error) {
        if (!(error instanceof GatepassApiError && error.code === 'already_verified')) throw error;
        showStatus('Your email address is already verified.');
        this.onUser(await this.client.me());
      }
    }, 'Could not send the verification email');
    button.disabled = false;
  }
}

/**
 * Follows a verification link opened on this page: takes the token out of the address bar (and the
 * history) before anything else, then spends it and says how that went. Resolves to whether an
 * address was verified; false too when the page was opened without such a link.
 */
export async function followVerificationLink(client: GatepassClient): Promise<boolean> {
  const { hash, pathname, search } = window.location;
  if (!hash.startsWith(LINK_PREFIX)) return false;
  history.replaceState(history.state, '', `${pathname}${search}`);
  let token = '';
  try {
    token = decodeURIComponent(hash.slice(LINK_PREFIX.length)).trim();
  } catch {
    // A mangled link: reported below like an empty one.
  }
  const result = byId('email-link-result', HTMLParagraphElement);
  if (token === '') {
    showError('The link has no token; copy the whole link from the email', 'Email verification failed');
    document.body.dataset.emailVerification = 'failed';
    return false;
  }
  const verified = await attempt(async () => {
    await client.verifyEmail(token);
  }, 'Email verification failed');
  document.body.dataset.emailVerification = verified ? 'verified' : 'failed';
  result.textContent = verified
    ? 'Your email address is verified.'
    : 'This verification link did not work: it may have been used or expired (after 24 hours). Log in and ask for a new one.';
  result.hidden = false;
  if (verified) showStatus('Email address verified.');
  return verified;
}
