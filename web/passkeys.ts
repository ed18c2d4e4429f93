import { GatepassApiError, type GatepassClient, type Passkey } from '../src/client/index.js';
import { byId, formatTime, h } from './dom.js';
import { attempt, showStatus } from './feedback.js';

/**
 * The signed-in user's passkeys: add one (the browser's WebAuthn dialog, through the client's
 * `registerPasskey`), the list with rename and delete. A server with passkeys off (404
 * `passkeys_disabled`) or a browser without WebAuthn gets a note instead of the form.
 */
export class PasskeysView {
  constructor(
    private readonly client: GatepassClient,
    private readonly supported: boolean,
  ) {
    byId('passkey-add-form', HTMLFormElement).addEventListener('submit', (event) => {
      event.preventDefault();
      void this.add();
    });
  }

  async load(): Promise<void> {
    if (!this.supported) {
      this.note('This browser does not support passkeys.');
      return;
    }
    try {
      this.render(await this.client.listPasskeys());
    } catch (error) {
      if (error instanceof GatepassApiError && error.code === 'passkeys_disabled') {
        this.note('Passkeys are off on this server.');
        return;
      }
      throw error;
    }
  }

  clear(): void {
    byId('passkey-list', HTMLUListElement).replaceChildren();
    byId('passkeys-empty', HTMLParagraphElement).hidden = true;
    byId('passkey-add-form', HTMLFormElement).reset();
  }

  private note(text: string): void {
    byId('passkey-add-form', HTMLFormElement).hidden = true;
    byId('passkey-list', HTMLUListElement).replaceChildren();
    const empty = byId('passkeys-empty', HTMLParagraphElement);
    empty.textContent = text;
    empty.hidden = false;
  }

  private async add(): Promise<void> {
    const input = byId('passkey-name', HTMLInputElement);
    const button = byId('passkey-add', HTMLButtonElement);
    button.disabled = true;
    await attempt(async () => {
      const passkey = await this.client.registerPasskey(input.value);
      input.value = '';
      showStatus(`Passkey "${passkey.name}" added.`);
      await this.load();
    }, 'Could not add the passkey').finally(() => {
      button.disabled = false;
    });
  }

  private render(passkeys: Passkey[]): void {
    byId('passkey-add-form', HTMLFormElement).hidden = false;
    const empty = byId('passkeys-empty', HTMLParagraphElement);
    empty.textContent = 'No passkeys yet.';
    empty.hidden = passkeys.length > 0;
    byId('passkey-list', HTMLUListElement).replaceChildren(
      ...passkeys.map((passkey) => {
        const nameInput = h('input', {
          type: 'text',
          class: 'passkey-name',
          value: passkey.name,
          maxlength: 100,
          required: true,
          'aria-label': `Name of passkey ${passkey.name}`,
        });
        return h(
          'li',
          { class: 'passkey', 'data-passkey-id': passkey.id },
          h(
            'div',
            { class: 'passkey-info' },
            h('strong', {}, passkey.name),
            h(
              'span',
              { class: 'hint' },
              `added ${formatTime(passkey.created_at)} · ${passkey.last_used_at === null ? 'not used yet' : `last used ${formatTime(passkey.last_used_at)}`}`,
            ),
          ),
          h(
            'form',
            {
              class: 'row passkey-rename',
              novalidate: true,
              onsubmit: (event: Event) => {
                event.preventDefault();
                void attempt(async () => {
                  const renamed = await this.client.renamePasskey(passkey.id, nameInput.value);
                  showStatus(`Passkey renamed to "${renamed.name}".`);
                  await this.load();
                }, 'Could not rename the passkey');
              },
            },
            nameInput,
            h('button', { type: 'submit', class: 'secondary small' }, 'Rename'),
            h(
              'button',
              {
                type: 'button',
                class: 'secondary small',
                'aria-label': `Delete passkey ${passkey.name}`,
                onclick: () => {
                  void attempt(async () => {
                    await this.client.deletePasskey(passkey.id);
                    showStatus(`Passkey "${passkey.name}" deleted.`);
                    await this.load();
                  }, 'Could not delete the passkey');
                },
              },
              'Delete',
            ),
          ),
        );
      }),
    );
  }
}
