import type { GatepassClient, Session } from '../src/client/index.js';
import { byId, formatTime, h } from './dom.js';
import { attempt, showStatus } from './feedback.js';

/** A readable name for a User-Agent string: the browser and the system, not the whole string. */
function deviceName(userAgent: string | null): string {
  if (userAgent === null || userAgent === '') return 'Unknown device';
  const browser = /(Edg|Firefox|Chrome|Chromium|Safari|node|curl)[/ ]?[\d.]*/i.exec(userAgent)?.[0];
  const system = /(Windows|Android|iPhone|iPad|Mac OS X|Linux|CrOS)/i.exec(userAgent)?.[0];
  return [browser, system].filter(Boolean).join(' on ') || userAgent.slice(0, 60);
}

/** The user's live sessions, each revocable. */
export class SessionsView {
  constructor(private readonly client: GatepassClient) {}

  async load(): Promise<void> {
    this.render(await this.client.sessions());
  }

  clear(): void {
    byId('session-list', HTMLUListElement).replaceChildren();
  }

  private render(sessions: Session[]): void {
    byId('session-list', HTMLUListElement).replaceChildren(
      ...sessions.map((session) =>
        h(
          'li',
          { class: session.current ? 'session current' : 'session', 'data-session-id': session.id },
          h(
            'div',
            { class: 'session-info' },
            h('strong', {}, deviceName(session.user_agent)),
            session.current ? h('span', { class: 'badge' }, 'this browser') : null,
            h(
              'span',
              { class: 'hint' },
              `IP ${session.ip ?? 'unknown'} · started ${formatTime(session.created_at)} · last used ${formatTime(session.last_used_at)}`,
            ),
          ),
          h(
            'button',
            {
              type: 'button',
              class: 'secondary small',
              'aria-label': session.current
                ? 'Revoke this session (logs you out)'
                : `Revoke the session started ${formatTime(session.created_at)}`,
              onclick: () => {
                void attempt(async () => {
                  await this.client.revokeSession(session.id);
                  showStatus('Session revoked.');
                  if (this.client.isSignedIn) await this.load();
                }, 'Could not revoke the session');
              },
            },
            'Revoke',
          ),
        ),
      ),
    );
  }
}
