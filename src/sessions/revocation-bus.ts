import type { Logger } from '../logging.js';
import { connectRedis, type RedisConnection } from './redis-connection.js';
import type { Revocation } from '../store/revocations.js';

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

/** One process: nobody else to tell. */
export class LocalRevocationBus implements RevocationBus {
  readonly healthy = true;
  readonly status = 'ok';
  async start(): Promise<void> {}
  async publish(): Promise<void> {}
  async close(): Promise<void> {}
}


function isRevocation(value: unknown): value is Revocation {
  const r = value as Partial<Record<string, unknown>> | null;
  if (typeof r !== 'object' || r === null || typeof r.userId !== 'number' || typeof r.expiresAt !== 'number') return false;
  return (r.kind === 'session' && typeof r.sessionId === 'string') || (r.kind === 'user' && typeof r.issuedBefore === 'number');
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

  constructor(
    url: string,
    prefix: string,
    private readonly log: Logger,
  ) {
    this.channel = `${prefix}:revocations`;
    this.publisher = connectRedis(url);
    this.subscriber = connectRedis(url, true);
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
        this.log.error({ err: error ?? new Error('connection closed') }, 'Redis unreachable: refusing requests that need revocation state until it returns');
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

  /** The command connection, shared with the counters of rate limits and lockouts. */
  get commands(): RedisConnection {
    return this.publisher;
  }

  async close(): Promise<void> {
    this.closing = true;
    this.publisher.disconnect();
    this.subscriber.disconnect();
  }
}
