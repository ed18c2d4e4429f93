import type { GatepassClient, LinkedIdentity, OAuthProvider } from '../src/client/index.js';
import { byId, formatTime, h } from './dom.js';
import { attempt, showStatus } from './feedback.js';

/** What each `?error=` code of a provider sign-in means for the person who just came back (API.md, README). */
const CALLBACK_ERRORS: Record<string, string> = {
  access_denied: 'The sign-in was cancelled at the provider.',
  link_required:
    'An account with this email address already exists, and the provider does not vouch that the address is yours. Log in with your password (or passkey), then link the provider under “Linked accounts”.',
  identity_in_use: 'That account at the provider is already linked to another gatepass account.',
  email_missing: 'The provider did not share an email address, which a new account needs.',
  email_not_verified: 'This account’s email address is not verified yet: open the link in the verification email first.',
  account_disabled: 'This account is disabled.',
  invalid_state: 'The sign-in expired or was started in another browser or tab; please start it again.',
  invalid_callback: 'The provider’s answer did not check out; please start the sign-in again.',
  provider_error: 'The provider refused the sign-in; please try again.',
  provider_unavailable: 'The provider could not be reached; please try again shortly.',
  rate_limited: 'Too many sign-in attempts from here; please wait a minute and try again.',
  server_error: 'The server failed to complete the sign-in; please try again.',
};

export function describeCallbackError(code: string): string {
  return CALLBACK_ERRORS[code] ?? `The sign-in with the provider failed (${code}).`;
}

/**
 * Sign-in with external providers (OpenID Connect, GitHub): a "Sign in with <name>" button per provider on
 * the sign-in panel, and in the signed-in view the linked accounts, with unlink and a "Link <name>" button
 * per provider. Both leave the page for the provider, which sends the browser back here through the
 * server; `completeOAuthCallback()` at load finishes the job (main.ts).
 */
export class ExternalSignInView {
  private providers: OAuthProvider[] = [];

  constructor(private readonly client: GatepassClient) {}

  /** The provider's name for the button and messages, or its id for one no longer configured. */
  nameOf(providerId: string): string {
    return this.providers.find((provider) => provider.id === providerId)?.name ?? providerId;
  }

  /** The configured providers, and their sign-in buttons (none shown when there are none). */
  async loadProviders(): Promise<void> {
    this.providers = await this.client.listProviders();
    byId('provider-sign-in', HTMLDivElement).hidden = this.providers.length === 0;
    byId('provider-buttons', HTMLDivElement).replaceChildren(
      ...this.providers.map((provider) =>
        h(
          'button',
          {
            type: 'button',
            class: 'secondary provider-button',
            'data-provider-id': provider.id,
            onclick: () => {
              // Back to this very page (its path and query), where the callback is completed.
              window.location.assign(this.client.oauthStartUrl(provider.id));
            },
          },
          `Sign in with ${provider.name}`,
        ),
      ),
    );
  }

  /** The signed-in view's panel: the linked identities and a link button per provider. */
  async load(): Promise<void> {
    const identities = await this.client.listIdentities();
    const panel = byId('identities-panel', HTMLElement);
    panel.hidden = this.providers.length === 0 && identities.length === 0;
    byId('identities-empty', HTMLParagraphElement).hidden = identities.length > 0;
    byId('identity-list', HTMLUListElement).replaceChildren(...identities.map((identity) => this.renderIdentity(identity)));
    byId('identity-link-buttons', HTMLDivElement).replaceChildren(
      ...this.providers.map((provider) => {
        const button = h('button', { type: 'button', class: 'secondary', 'data-provider-id': provider.id }, `Link ${provider.name}`);
        button.addEventListener('click', () => {
          button.disabled = true;
          void attempt(async () => {
            window.location.assign(await this.client.linkIdentity(provider.id));
          }, `Could not start linking ${provider.name}`).finally(() => {
            button.disabled = false;
          });
        });
        return button;
      }),
    );
  }

  clear(): void {
    byId('identity-list', HTMLUListElement).replaceChildren();
    byId('identity-link-buttons', HTMLDivElement).replaceChildren();
    byId('identities-panel', HTMLElement).hidden = true;
  }

  private renderIdentity(identity: LinkedIdentity): HTMLLIElement {
    const name = this.nameOf(identity.provider);
    return h(
      'li',
      { class: 'identity', 'data-identity-id': identity.id },
      h(
        'div',
        { class: 'identity-info' },
        h('strong', {}, name),
        h(
          'span',
          { class: 'hint' },
          `${identity.email ?? 'no email shared'} · linked ${formatTime(identity.created_at)} · ${
            identity.last_used_at === null ? 'not used to sign in yet' : `last sign-in ${formatTime(identity.last_used_at)}`
          }`,
        ),
      ),
      h(
        'button',
        {
          type: 'button',
          class: 'secondary small',
          'aria-label': `Unlink ${name}`,
          onclick: () => {
            // 409 when it is the last way to sign in: the server's detail says so.
            void attempt(async () => {
              await this.client.unlinkIdentity(identity.id);
              // The list first, so that the message describes what the page shows.
              await this.load();
              showStatus(`${name} unlinked: it no longer signs you in here.`);
            }, `Could not unlink ${name}`);
          },
        },
        'Unlink',
      ),
    );
  }
}
