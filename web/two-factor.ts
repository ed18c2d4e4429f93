import { GatepassApiError, decodeToken, type GatepassClient } from '../src/client/index.js';
import { byId, h } from './dom.js';
import { attempt, showStatus } from './feedback.js';

/**
 * What the panel shows: `unknown` (this session signed in with a password alone, so TOTP may or may
 * not be on: the setup answers 409 when it is), `off`, `enrolling` (QR code and key), `codes` (the
 * recovery codes, shown once), `on`.
 */
type TwoFactorState = 'unknown' | 'off' | 'enrolling' | 'codes' | 'on';

const STATE_TEXT: Record<TwoFactorState, string> = {
  unknown: 'This session signed in with a password alone.',
  off: 'Two-factor sign-in is off.',
  enrolling: 'Setting up two-factor sign-in…',
  codes: 'Two-factor sign-in is on.',
  on: 'Two-factor sign-in is on.',
};

/** The methods (RFC 8176 `amr`) the current session signed in with. */
function amrOfToken(token: string | null): string[] {
  if (token === null) return [];
  try {
    const amr = decodeToken(token).payload.amr;
    return Array.isArray(amr) ? amr.filter((method): method is string => typeof method === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * TOTP enrolment (QR code and key, confirmed with a code), the recovery codes shown once,
 * regenerating them, and turning two-factor sign-in off. The QR code is the server's SVG shown
 * through a `data:` URL in an <img>: an image cannot run script, and no markup is ever parsed into
 * the page.
 */
export class TwoFactorView {
  private state: TwoFactorState = 'unknown';
  /** Where a cancelled enrolment goes back to. */
  private beforeEnrolment: TwoFactorState = 'unknown';

  constructor(private readonly client: GatepassClient) {
    byId('totp-setup', HTMLButtonElement).addEventListener('click', () => void this.setup());
    byId('totp-cancel', HTMLButtonElement).addEventListener('click', () => {
      this.forgetEnrolment();
      this.show(this.beforeEnrolment);
    });
    this.onSubmit('totp-confirm-form', () => this.confirm());
    this.onSubmit('recovery-regenerate-form', () => this.regenerate());
    this.onSubmit('totp-disable-form', () => this.disable());
    byId('recovery-codes-done', HTMLButtonElement).addEventListener('click', () => {
      byId('recovery-codes', HTMLOListElement).replaceChildren();
      this.show('on');
    });
  }

  /** After a sign-in: a session that gave a code (amr `otp`) proves TOTP is on; otherwise the server says. */
  load(): void {
    this.show(amrOfToken(this.client.accessToken).includes('otp') ? 'on' : 'unknown');
    this.client.mfaStatus().then(
      (status) => {
        // Only if nothing happened meanwhile (an enrolment started from the button wins).
        if (this.state === 'unknown') this.show(status.totp_enabled ? 'on' : 'off');
      },
      // Unknown stays: the setup button still works, and a 409 from it says TOTP is on.
      () => undefined,
    );
  }

  clear(): void {
    this.forgetEnrolment();
    byId('recovery-codes', HTMLOListElement).replaceChildren();
    for (const id of ['regenerate-code', 'disable-password', 'disable-code']) byId(id, HTMLInputElement).value = '';
    this.show('unknown');
  }

  private onSubmit(formId: string, action: () => Promise<void>): void {
    byId(formId, HTMLFormElement).addEventListener('submit', (event) => {
      event.preventDefault();
      void action();
    });
  }

  private show(state: TwoFactorState): void {
    this.state = state;
    document.body.dataset.twoFactor = state;
    byId('mfa-state', HTMLParagraphElement).textContent = STATE_TEXT[state];
    byId('mfa-off', HTMLDivElement).hidden = state !== 'unknown' && state !== 'off';
    byId('mfa-enrol', HTMLDivElement).hidden = state !== 'enrolling';
    byId('recovery-codes-box', HTMLDivElement).hidden = state !== 'codes';
    byId('mfa-on', HTMLDivElement).hidden = state !== 'on';
  }

  /** The secret leaves the page once enrolment is over or abandoned. */
  private forgetEnrolment(): void {
    byId('totp-qr', HTMLImageElement).removeAttribute('src');
    byId('totp-secret', HTMLElement).textContent = '';
    byId('totp-confirm-code', HTMLInputElement).value = '';
  }

  private showRecoveryCodes(codes: string[]): void {
    byId('recovery-codes', HTMLOListElement).replaceChildren(...codes.map((code) => h('li', {}, h('code', {}, code))));
    this.show('codes');
    byId('recovery-codes-done', HTMLButtonElement).focus();
  }

  private async setup(): Promise<void> {
    await attempt(async () => {
      try {
        const enrolment = await this.client.setupTotp();
        byId('totp-qr', HTMLImageElement).src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(enrolment.qr_svg)}`;
        byId('totp-secret', HTMLElement).textContent = enrolment.secret;
        this.beforeEnrolment = this.state;
        this.show('enrolling');
        byId('totp-confirm-code', HTMLInputElement).focus();
      } catch (error) {
        // Turned on earlier (in another session): nothing to set up.
        if (!(error instanceof GatepassApiError && error.status === 409)) throw error;
        this.show('on');
        showStatus('Two-factor sign-in is already on for this account.');
      }
    }, 'Could not start two-factor setup');
  }

  private async confirm(): Promise<void> {
    const input = byId('totp-confirm-code', HTMLInputElement);
    const confirmed = await attempt(async () => {
      const { recovery_codes: codes } = await this.client.confirmTotp(input.value);
      this.forgetEnrolment();
      this.showRecoveryCodes(codes);
      showStatus('Two-factor sign-in is on. Save your recovery codes now.');
    }, 'Could not turn two-factor sign-in on');
    if (!confirmed) {
      input.select();
      input.focus();
    }
  }

  private async regenerate(): Promise<void> {
    const input = byId('regenerate-code', HTMLInputElement);
    await attempt(async () => {
      const { recovery_codes: codes } = await this.client.regenerateRecoveryCodes(input.value);
      input.value = '';
      this.showRecoveryCodes(codes);
      showStatus('New recovery codes made; the old ones no longer work.');
    }, 'Could not make new recovery codes');
  }

  private async disable(): Promise<void> {
    const password = byId('disable-password', HTMLInputElement);
    const code = byId('disable-code', HTMLInputElement);
    await attempt(async () => {
      await this.client.disableTotp({ password: password.value, code: code.value });
      password.value = '';
      code.value = '';
      this.show('off');
      showStatus('Two-factor sign-in is off.');
    }, 'Could not turn two-factor sign-in off');
  }
}
