import type { Logger } from '../logging.js';
import type { RedisConnection } from '../store/redis-connection.js';
import type { RevocationRepository } from '../store/revocations.js';
import { isRevocation, type Revocation } from '../tokens/revocation.js';

export interface RevocationBusHandlers {
  /** A revocation made by any instance (this one included; applying twice is harmless). */
  onRevocation(revocation: Revocation): void;
  /** Messages may have been missed (first connect, reconnect): rebuild from the database. */
  onResync(): Promise<void>;
}

/**
 * How instances tell each other about revocations. While `healthy` is false, an instance may have
 * missed one, so access-token checks must fail closed.
 */
export interface RevocationBus {
  readonly healthy: boolean;
  /** Why the bus is not healthy, for /health/ready. */
  readonly status: string;
  start(handlers: RevocationBusHandlers): Promise<void>;
  publish(revocations: Revocation[]): Promise<void>;
  close(): Promise<void>;
}

/** How often a server without Redis reads the revocations that other processes stored. */
export const REVOCATION_POLL_MS = 1000;
/**
 * How far back each read goes. On PostgreSQL, numbers are taken at insert and two transactions can
 * commit out of order, so a row may appear below the newest number already seen; on SQLite, writes
 * are serialised and rows appear in order. Applying a revocation twice is harmless.
 */
export const REREAD_IDS = 64;

/**
 * Without Redis, the database is the bus: every revocation is a row of the revocations table
 * (written before it is announced), and this reads the rows added since the last read, once a
 * second. So processes that share the database — the CLI's `user set-role` and `user deactivate`,
 * a second instance — reach a running server within about a second. A read that fails makes the
 * bus unhealthy (checks fail closed) until one succeeds, which then catches up on every row missed.
 */
export class DatabaseRevocationFeed implements RevocationBus {
  private lastId = 0;
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private failing = false;

  constructor(
    private readonly repository: RevocationRepository,
    private readonly log: Logger,
    private readonly intervalMs = REVOCATION_POLL_MS,
  ) {}

  get healthy(): boolean {
    return !this.failing;
  }

  get status(): string {
    return this.failing ? 'database unreadable' : 'ok';
  }

  async start(handlers: RevocationBusHandlers): Promise<void> {
    // The number first, then the rebuild: a row added in between is both loaded and read again.
    this.lastId = await this.repository.lastId();
    await handlers.onResync();
    this.timer = setInterval(() => {
      this.reading ??= this.read(handlers).finally(() => (this.reading = undefined));
    }, this.intervalMs);
    this.timer.unref();
  }

  private async read(handlers: RevocationBusHandlers): Promise<void> {
    try {
      for (const { id, revocation } of await this.repository.numberedAfter(Math.max(0, this.lastId - REREAD_IDS))) {
        handlers.onRevocation(revocation);
        this.lastId = Math.max(this.lastId, id);
      }
      if (this.failing) this.log.info('revocations readable again; caught up with the database');
      this.failing = false;
    } catch (error) {
      if (!this.failing)
        this.log.error(
          { err: error },
          'cannot read revocations from the database: refusing requests that need revocation state until it answers',
        );
      this.failing = true;
    }
  }

  /** The row in the database is the message. */
  async publish(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.reading;
  }
}

/**
 * Redis pub/sub. Redis keeps nothing here: the database holds every revocation, and each
 * (re)connection is followed by a rebuild from it, so a Redis restart loses nothing. Between the
 * connection dropping and that rebuild finishing, the bus reports unhealthy.
 */
export class RedisRevocationBus implements RevocationBus {
  private readonly publisher: RedisConnection;
  private readonly subscriber: RedisConnection;
  private synced = false;
  private closing = false;
  private reportedDown = false;
  private readonly channel: string;

  /**
   * `commands` is the wiring's command connection, which the counters of rate limits and lockouts
   * share; `subscriber` is a connection of its own, as Redis requires of one in subscribe mode
   * (opened to queue its SUBSCRIBE while offline). The bus connects both at start and ends both at
   * close.
   */
  constructor(
    commands: RedisConnection,
    subscriber: RedisConnection,
    prefix: string,
    private readonly log: Logger,
  ) {
    this.channel = `${prefix}:revocations`;
    this.publisher = commands;
    this.subscriber = subscriber;
  }

  get healthy(): boolean {
    return this.synced && this.publisher.status === 'ready' && this.subscriber.status === 'ready';
  }

  get status(): string {
    if (this.healthy) return 'ok';
    return this.publisher.status === 'ready' && this.subscriber.status === 'ready' ? 'resynchronising' : 'unreachable';
  }

  async start(handlers: RevocationBusHandlers): Promise<void> {
    const markDown = (error?: Error) => {
      this.synced = false;
      if (!this.reportedDown && !this.closing) {
        this.reportedDown = true;
        this.log.error(
          { err: error ?? new Error('connection closed') },
          'Redis unreachable: refusing requests that need revocation state until it returns',
        );
      }
    };
    for (const connection of [this.publisher, this.subscriber]) {
      connection.on('error', (error: Error) => markDown(error));
      connection.on('close', () => markDown());
    }
    this.subscriber.on('message', (_channel: string, message: string) => {
      try {
        const revocation: unknown = JSON.parse(message);
        if (isRevocation(revocation)) handlers.onRevocation(revocation);
      } catch {
        this.log.warn('ignored a malformed revocation message');
      }
    });
    // After every (re)connection of the subscriber, messages may have been missed: rebuild first.
    this.subscriber.on('ready', () => {
      handlers.onResync().then(
        () => {
          this.synced = true;
          if (this.reportedDown) this.log.info('Redis reachable again; revocation state rebuilt from the database');
          this.reportedDown = false;
        },
        (error: unknown) => this.log.error({ err: error }, 'rebuilding revocation state failed; will retry on reconnect'),
      );
    });
    await Promise.all([this.publisher.connect(), this.subscriber.connect()]);
    await this.subscriber.subscribe(this.channel);
    await handlers.onResync();
    this.synced = true;
  }

  async publish(revocations: Revocation[]): Promise<void> {
    for (const revocation of revocations) {
      try {
        await this.publisher.publish(this.channel, JSON.stringify(revocation));
      } catch (error) {
        // The database already holds it; other instances fail closed until they resync from there.
        this.log.error({ err: error }, 'could not broadcast a revocation');
      }
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    this.publisher.disconnect();
    this.subscriber.disconnect();
  }
}
