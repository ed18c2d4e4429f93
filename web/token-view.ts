import { decodeToken, type GatepassClient } from '../src/client/index.js';
import { byId, formatTime, h } from './dom.js';

const TIME_CLAIMS: Record<string, string> = { iat: 'issued at', nbf: 'not before', exp: 'expires at' };

/**
 * The access token taken apart — the seeds' "crack open a JWT": the coloured segments, the
 * decoded header and payload, and a live countdown to `exp`.
 */
export class TokenView {
  private exp: number | null = null;
  private refreshes = 0;
  private readonly ticker: ReturnType<typeof setInterval>;

  constructor(private readonly client: GatepassClient) {
    this.ticker = setInterval(() => this.tick(), 1000);
  }

  /** Shows the client's current token; `refreshed` counts the refreshes seen on this page. */
  render(refreshed = false): void {
    const token = this.client.accessToken;
    if (token === null) return;
    if (refreshed) this.refreshes += 1;
    const decoded = decodeToken(token);
    const { header, payload, signature } = decoded.segments;
    byId('token-raw', HTMLPreElement).replaceChildren(
      h('span', { class: 'seg-header' }, header),
      h('span', { class: 'dot' }, '.'),
      h('span', { class: 'seg-payload' }, payload),
      h('span', { class: 'dot' }, '.'),
      h('span', { class: 'seg-signature' }, signature),
    );
    byId('token-header', HTMLPreElement).textContent = JSON.stringify(decoded.header, null, 2);
    byId('token-payload', HTMLPreElement).textContent = JSON.stringify(decoded.payload, null, 2);
    byId('token-signature', HTMLPreElement).textContent = signature;
    const times = byId('token-times', HTMLDListElement);
    times.replaceChildren();
    for (const [claim, meaning] of Object.entries(TIME_CLAIMS)) {
      const value = decoded.payload[claim];
      if (typeof value === 'number') times.append(h('dt', {}, h('code', {}, claim), ` ${meaning}`), h('dd', {}, formatTime(value * 1000)));
    }
    this.exp = typeof decoded.payload.exp === 'number' ? decoded.payload.exp : null;
    byId('refresh-note', HTMLSpanElement).textContent =
      `— refreshed automatically about 30 s before that${this.refreshes > 0 ? ` (${this.refreshes} refresh${this.refreshes === 1 ? '' : 'es'} so far)` : ''}.`;
    const panel = byId('token-panel', HTMLElement);
    if (refreshed) {
      panel.classList.remove('flash');
      panel.getBoundingClientRect(); // a layout in between, so the animation restarts
      panel.classList.add('flash');
    }
    this.tick();
  }

  clear(): void {
    this.exp = null;
    for (const id of ['token-raw', 'token-header', 'token-payload', 'token-signature']) byId(id, HTMLPreElement).textContent = '';
    byId('token-times', HTMLDListElement).replaceChildren();
    byId('countdown', HTMLElement).textContent = '–';
  }

  dispose(): void {
    clearInterval(this.ticker);
  }

  private tick(): void {
    if (this.exp === null) return;
    const seconds = Math.max(0, Math.round(this.exp - Date.now() / 1000));
    const text = `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`;
    const countdown = byId('countdown', HTMLElement);
    countdown.textContent = text;
    countdown.classList.toggle('soon', seconds <= 60);
  }
}
