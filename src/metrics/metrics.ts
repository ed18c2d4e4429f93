import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The Prometheus metrics of one instance. Security events are counted from the audit trail (one
 * place records both), so `gatepass_events_total{event="login_failure"}` and friends always agree
 * with /admin/audit.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly events: Counter<'event'>;
  private readonly rateLimited: Counter<'bucket'>;
  private readonly verification: Histogram;

  private countActiveSessions: () => Promise<number> = async () => 0;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'gatepass_' });
    this.events = new Counter({
      name: 'gatepass_events_total',
      help: 'Security events by name (login_success, login_failure, login_locked, refresh, refresh_reuse_detected, ...)',
      labelNames: ['event'],
      registers: [this.registry],
    });
    this.rateLimited = new Counter({
      name: 'gatepass_rate_limited_total',
      help: 'Requests refused by a per-client rate limit',
      labelNames: ['bucket'],
      registers: [this.registry],
    });
    this.verification = new Histogram({
      name: 'gatepass_token_verification_seconds',
      help: 'Time to verify an access token: signature, claims and revocation check',
      buckets: [0.000005, 0.00001, 0.00002, 0.00005, 0.0001, 0.0005, 0.001, 0.005],
      registers: [this.registry],
    });
    const activeSessions: Gauge = new Gauge({
      name: 'gatepass_active_sessions',
      help: 'Sessions not revoked whose refresh token can still be used (all instances; read from the database)',
      registers: [this.registry],
      collect: async () => activeSessions.set(await this.countActiveSessions()),
    });
  }

  /** Where the active-sessions gauge reads its value at each scrape. */
  trackActiveSessions(count: () => Promise<number>): void {
    this.countActiveSessions = count;
  }

  countEvent(event: string): void {
    this.events.inc({ event });
  }

  countRateLimited(bucket: string): void {
    this.rateLimited.inc({ bucket });
  }

  observeVerification(seconds: number): void {
    this.verification.observe(seconds);
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
