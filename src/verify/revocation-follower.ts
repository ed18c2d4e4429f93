import { setTimeout as sleep } from 'node:timers/promises';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { fromRevocationEntry } from '../tokens/revocation.js';
import { RevocationList } from '../tokens/revocation-list.js';

/** How a verifier follows gatepass's revocation feed (API.md "Services and token endpoints"). */
export interface RevocationFeedOptions {
  /** The feed: gatepass's `/auth/revocations` (the metadata's `revocation_feed_endpoint`). */
  url: string;
  /** A service credential (`gatepass service create NAME`). */
  clientId: string;
  clientSecret: string;
  /**
   * How long the feed may be silent before the verifier stops trusting its list (default 10 s). The
   * feed sends a heartbeat every 2 s while gatepass knows every revocation, and none otherwise.
   */
  maxSilenceSeconds?: number;
  /**
   * When the feed has been silent too long: `refuse` (default) answers 503, as gatepass does when
   * its own revocation state is unavailable; `accept` goes on verifying with the list it has, and logs.
   */
  whenSilent?: 'refuse' | 'accept';
  /** Where failures to follow are reported (default: console). */
  log?: Pick<Console, 'warn' | 'info'>;
}

/** Reconnection waits grow from the first to the last, then stay there. */
const RECONNECT_DELAYS_MS = [100, 250, 500, 1000, 2000];
/** How often the silence bound is checked, to drop a connection that went quiet (a half-open socket). */
const WATCHDOG_MS = 500;
/** Only the sweep's cadence depends on it: an entry is kept until its own `until`. */
const SWEEP_BASIS_MS = 15 * 60 * 1000;
/** One event is one small JSON object; anything longer is not gatepass's feed. */
const MAX_EVENT_BYTES = 64 * 1024;

/**
 * Follows the feed over one Server-Sent Events connection at a time and keeps the same
 * RevocationList the server keeps. It reconnects from its cursor after any failure, so every
 * revocation made while it was away arrives with the catch-up that precedes the next heartbeat; it
 * reports itself current only while it has heard from the feed within the silence bound.
 */
export class RevocationFollower {
  readonly list: RevocationList;
  private readonly maxSilenceMs: number;
  private readonly authorization: string;
  private cursor: string | undefined;
  private heardAt = Number.NEGATIVE_INFINITY;
  private connection: AbortController | undefined;
  /** Aborted by close(): ends the connection and any wait for the next one. */
  private readonly stopping = new AbortController();
  private failures = 0;
  private reportedSilent = false;
  private readonly watchdog: NodeJS.Timeout;
  private readonly running: Promise<void>;
  private readonly firstHeartbeat: Promise<void>;
  private markCaughtUp: () => void = () => {};

  constructor(
    private readonly options: RevocationFeedOptions,
    private readonly fetchImpl: typeof fetch,
    private readonly now: () => number,
  ) {
    this.list = new RevocationList(SWEEP_BASIS_MS, now);
    this.maxSilenceMs = (options.maxSilenceSeconds ?? 10) * 1000;
    // RFC 6749 §2.3.1: both halves form-urlencoded before Basic.
    const basic = `${encodeURIComponent(options.clientId)}:${encodeURIComponent(options.clientSecret)}`;
    this.authorization = `Basic ${Buffer.from(basic).toString('base64')}`;
    this.firstHeartbeat = new Promise((resolve) => (this.markCaughtUp = resolve));
    this.watchdog = setInterval(() => this.checkSilence(), WATCHDOG_MS);
    this.watchdog.unref();
    this.running = this.run();
  }

  /** True while the list can be trusted: the feed was heard from within the silence bound. */
  get current(): boolean {
    return this.now() - this.heardAt <= this.maxSilenceMs;
  }

  get refusesWhenSilent(): boolean {
    return this.options.whenSilent !== 'accept';
  }

  /** Resolves once the list holds every live revocation (the first heartbeat, after the catch-up). */
  caughtUp(): Promise<void> {
    return this.firstHeartbeat;
  }

  /** Logged once per silence, when a silent feed is accepted anyway. */
  acceptedWhileSilent(): void {
    if (this.reportedSilent) return;
    this.reportedSilent = true;
    this.log().warn('gatepass revocation feed silent: accepting tokens on a revocation list that may be stale (whenSilent: accept)');
  }

  async close(): Promise<void> {
    this.stopping.abort();
    clearInterval(this.watchdog);
    this.connection?.abort();
    await this.running;
  }

  private log(): Pick<Console, 'warn' | 'info'> {
    return this.options.log ?? console;
  }

  private isClosed(): boolean {
    return this.stopping.signal.aborted;
  }

  private async run(): Promise<void> {
    while (!this.isClosed()) {
      try {
        await this.follow();
      } catch (error) {
        if (this.isClosed()) return;
        if (this.failures === 0)
          this.log().warn(`gatepass revocation feed: ${error instanceof Error ? error.message : String(error)}; reconnecting`);
      }
      const delay = RECONNECT_DELAYS_MS[Math.min(this.failures, RECONNECT_DELAYS_MS.length - 1)] ?? 1000;
      this.failures += 1;
      await sleep(delay, undefined, { signal: this.stopping.signal, ref: false }).catch(() => undefined);
    }
  }

  private async follow(): Promise<void> {
    const connection = new AbortController();
    this.connection = connection;
    const url = new URL(this.options.url);
    if (this.cursor !== undefined) url.searchParams.set('after', this.cursor);
    const response = await this.fetchImpl(url, {
      headers: { authorization: this.authorization, accept: 'text/event-stream' },
      signal: connection.signal,
      redirect: 'error',
    });
    if (response.status !== 200 || response.body === null) {
      await response.body?.cancel();
      throw new Error(`the feed answered ${response.status}`);
    }
    const parser = createParser({
      onEvent: (event) => this.onEvent(event),
      onError: () => connection.abort(),
      maxBufferSize: MAX_EVENT_BYTES,
    });
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      parser.feed(decoder.decode(chunk, { stream: true }));
    }
    throw new Error('the feed ended the stream');
  }

  private onEvent(event: EventSourceMessage): void {
    if (event.event === 'revocation') {
      let revocation;
      try {
        revocation = fromRevocationEntry(JSON.parse(event.data));
      } catch {
        revocation = undefined;
      }
      if (revocation !== undefined) this.list.apply(revocation);
      if (event.id !== undefined && /^[0-9]{1,15}$/.test(event.id)) this.cursor = event.id;
    } else if (event.event === 'heartbeat') {
      // Only a heartbeat says the list is current: gatepass sends none while it may be missing revocations.
      if (!this.current && this.heardAt > Number.NEGATIVE_INFINITY) this.log().info('gatepass revocation feed current again');
      this.heardAt = this.now();
      this.failures = 0;
      this.reportedSilent = false;
      this.markCaughtUp();
    }
  }

  /** A connection silent past the bound is dropped and made again, from the cursor. */
  private checkSilence(): void {
    if (!this.current && this.heardAt > Number.NEGATIVE_INFINITY && this.failures === 0) this.connection?.abort();
  }
}
