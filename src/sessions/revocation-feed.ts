import type { Logger } from '../logging.js';
import type { RevocationRepository } from '../store/revocations.js';
import type { Revocation } from '../tokens/revocation.js';
import { REREAD_IDS } from './revocation-bus.js';

/** A revocation with its number in the revocations table: the feed's cursor is the highest number a reader has. */
export interface NumberedRevocation {
  id: number;
  revocation: Revocation;
}

export type FeedListener = (batch: NumberedRevocation[]) => void;

/** The highest number the revocations table can hold (PostgreSQL `serial`). */
const MAX_REVOCATION_ID = 2_147_483_647;

/** How often the tail of the table is read while someone follows the feed, besides the wake-ups of `notify`. */
const TAIL_POLL_MS = 1000;

/**
 * The revocation feed that other services follow (API.md "Services and token endpoints"): the live
 * rows of the revocations table, the same source this instance's RevocationList is built from.
 *
 * Readers page by cursor (`page`) and then follow the tail (`follow`). Numbers are taken at insert,
 * and on PostgreSQL two transactions can commit out of order, so a row may appear below a number a
 * reader already has: every read goes REREAD_IDS back, as the database bus does. A reader may so see
 * an entry twice; applying one twice is harmless.
 *
 * One tail read per instance serves every follower: it runs while anyone follows, once a second and
 * at once when this instance applies a revocation (`notify`: made here, or heard from another
 * instance over Redis), so a follower hears of a logout within milliseconds of its commit.
 */
export class RevocationFeed {
  private readonly listeners = new Set<FeedListener>();
  private lastId = 0;
  /** Numbers already sent to followers, kept for the reread window only. */
  private readonly sent = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private starting: Promise<void> | undefined;
  private reading: Promise<void> | undefined;
  private readAgain = false;
  private failing = false;

  constructor(
    private readonly repository: RevocationRepository,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Up to `limit` live revocations numbered above `after`, preceded by those of the reread window
   * (at most REREAD_IDS, numbered up to `after`), and whether more follow. The window does not count
   * against `limit`: were it to, a limit up to REREAD_IDS could fill a page with it alone and the
   * cursor would never move.
   */
  async page(after: number, limit: number): Promise<{ entries: NumberedRevocation[]; more: boolean }> {
    // A cursor may be any 15 digits; past the serial's bound PostgreSQL would refuse the comparison, and no row is there.
    const from = Math.min(Math.max(0, after - REREAD_IDS), MAX_REVOCATION_ID);
    const rows = await this.repository.liveNumberedAfter(from, this.now(), limit + REREAD_IDS + 1);
    const reread = rows.filter(({ id }) => id <= after);
    const fresh = rows.filter(({ id }) => id > after);
    return { entries: [...reread, ...fresh.slice(0, limit)], more: fresh.length > limit };
  }

  /**
   * Calls `listener` with every revocation committed from now on (and some of the reread window).
   * Resolves once the tail is being read, so a page read after it cannot leave a gap; returns the
   * function that stops following.
   */
  async follow(listener: FeedListener): Promise<() => void> {
    this.listeners.add(listener);
    try {
      await this.startTail();
    } catch (error) {
      this.listeners.delete(listener);
      throw error;
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopTail();
    };
  }

  /**
   * False while the last read of the tail failed: followers may be missing revocations, so the feed
   * must not tell them it is current (its heartbeats stop and verifiers fail closed).
   */
  get healthy(): boolean {
    return !this.failing;
  }

  /** A revocation was applied on this instance: read the tail now rather than at the next tick. */
  notify(): void {
    if (this.timer === undefined) return;
    if (this.reading !== undefined) {
      this.readAgain = true;
      return;
    }
    this.reading = this.readTail().finally(() => {
      this.reading = undefined;
      if (this.readAgain) {
        this.readAgain = false;
        this.notify();
      }
    });
  }

  async close(): Promise<void> {
    this.listeners.clear();
    this.stopTail();
    await this.reading;
  }

  private startTail(): Promise<void> {
    if (this.timer !== undefined) return Promise.resolve();
    this.starting ??= this.repository
      .lastId()
      .then((lastId) => {
        this.lastId = lastId;
        this.sent.clear();
        if (this.listeners.size === 0 || this.timer !== undefined) return;
        this.timer = setInterval(() => this.notify(), TAIL_POLL_MS);
        this.timer.unref();
      })
      .finally(() => (this.starting = undefined));
    return this.starting;
  }

  private stopTail(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async readTail(): Promise<void> {
    let rows;
    try {
      rows = await this.repository.numberedAfter(Math.max(0, this.lastId - REREAD_IDS));
    } catch (error) {
      if (!this.failing)
        this.log.error({ err: error }, 'cannot read revocations for the feed: its followers get no heartbeat until it can');
      this.failing = true;
      return;
    }
    this.failing = false;
    const now = this.now();
    const batch = rows.filter(({ id, revocation }) => !this.sent.has(id) && revocation.expiresAt > now);
    for (const { id } of rows) {
      this.sent.add(id);
      this.lastId = Math.max(this.lastId, id);
    }
    for (const id of this.sent) if (id <= this.lastId - REREAD_IDS) this.sent.delete(id);
    if (batch.length > 0) for (const listener of this.listeners) listener(batch);
  }
}
