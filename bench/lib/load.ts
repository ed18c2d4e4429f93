import autocannon from 'autocannon';
import http from 'node:http';
import { median, percentileOfSorted, SampleRecorder } from './stats.js';

/** Hard ceiling on the responses one load run records; the run stops there whatever its duration. */
const MAX_RESPONSES_PER_RUN = 3_000_000;

export interface LoadOptions {
  url: string;
  connections: number;
  durationSeconds: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Per-connection request setup (e.g. a chain of refresh tokens); replaces method/headers/body. */
  setupClient?: (client: autocannon.Client) => void;
  /** Receives the run's 2xx latencies (ms, sorted), e.g. to merge the percentiles of runs made in parallel. */
  onLatencies?: (sorted: Float64Array) => void;
}

export interface LoadResult {
  /** 2xx responses per second of wall time. */
  requestsPerSecond: number;
  /** Latency of 2xx responses, in milliseconds, from autocannon's per-response timings (sub-ms precision). */
  p50Ms: number;
  p99Ms: number;
  ok: number;
  /** Answers with another status than 2xx. */
  non2xx: number;
  /** Requests that got no answer within autocannon's 10 s timeout. */
  timeouts: number;
  /** Connection errors. */
  errors: number;
  /** non2xx + timeouts + errors: a valid throughput run has none. */
  failures: number;
  statusCounts: Record<string, number>;
  elapsedSeconds: number;
}

/** One bounded autocannon run against 127.0.0.1. */
export function runLoad(options: LoadOptions): Promise<LoadResult> {
  const url = new URL(options.url);
  if (url.hostname !== '127.0.0.1') throw new Error(`load runs target 127.0.0.1 only, not ${url.hostname}`);
  const latencies = new SampleRecorder(MAX_RESPONSES_PER_RUN);
  let ok = 0;
  let failed = 0;
  const statusCounts: Record<string, number> = {};
  return new Promise((resolve, reject) => {
    const started = performance.now();
    // eslint-disable-next-line prefer-const -- autocannon calls the callback below synchronously when it rejects the options; a `const` assigned after the call would still be in its temporal dead zone there (ReferenceError instead of the real error).
    let watchdog: NodeJS.Timeout | undefined;
    const instance = autocannon(
      {
        url: options.url,
        connections: options.connections,
        duration: options.durationSeconds,
        timeout: 10,
        ...(options.method !== undefined && { method: options.method }),
        ...(options.headers !== undefined && { headers: options.headers }),
        ...(options.body !== undefined && { body: options.body }),
        ...(options.setupClient !== undefined && { setupClient: options.setupClient }),
      },
      (error, result) => {
        clearTimeout(watchdog);
        if (error !== null) {
          reject(error);
          return;
        }
        const elapsedSeconds = (performance.now() - started) / 1000;
        const sorted = latencies.sorted();
        options.onLatencies?.(sorted);
        resolve({
          requestsPerSecond: ok / elapsedSeconds,
          p50Ms: percentileOfSorted(sorted, 50),
          p99Ms: percentileOfSorted(sorted, 99),
          ok,
          non2xx: failed,
          timeouts: result.timeouts,
          errors: result.errors,
          failures: failed + result.errors + result.timeouts,
          statusCounts,
          elapsedSeconds,
        });
      },
    );
    instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
      const key = String(statusCode);
      statusCounts[key] = (statusCounts[key] ?? 0) + 1;
      if (statusCode >= 200 && statusCode < 300) {
        ok += 1;
        if (!latencies.add(responseTimeMs)) instance.stop();
      } else {
        failed += 1;
      }
    });
    // autocannon ends by itself after `duration`; this only guards against a hung connection.
    watchdog = setTimeout(() => instance.stop(), (options.durationSeconds + 15) * 1000);
  });
}

export interface RepeatedLoad {
  runs: LoadResult[];
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  failures: number;
}

/** The medians of several runs. */
export function summarize(results: LoadResult[]): RepeatedLoad {
  return {
    runs: results,
    requestsPerSecond: median(results.map((r) => r.requestsPerSecond)),
    p50Ms: median(results.map((r) => r.p50Ms)),
    p99Ms: median(results.map((r) => r.p99Ms)),
    failures: results.reduce((sum, r) => sum + r.failures, 0),
  };
}

/** Low-rate GET probe over one keep-alive connection, timing each answer with a monotonic clock. */
export class LatencyProbe {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private readonly samples = new SampleRecorder(100_000);
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;
  private skipped = 0;

  constructor(
    private readonly url: string,
    private readonly intervalMs: number,
  ) {
    if (new URL(url).hostname !== '127.0.0.1') throw new Error('the probe targets 127.0.0.1 only');
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.intervalMs);
  }

  /** Stops and waits for the last request; returns the sample count, p50, p99 and max in ms. */
  async stop(): Promise<{ samples: number; p50Ms: number; p99Ms: number; maxMs: number; failures: number; skipped: number }> {
    clearInterval(this.timer);
    while (this.inFlight) await new Promise((resolve) => setTimeout(resolve, 5));
    this.agent.destroy();
    const sorted = this.samples.sorted();
    return {
      samples: sorted.length,
      p50Ms: percentileOfSorted(sorted, 50),
      p99Ms: percentileOfSorted(sorted, 99),
      maxMs: sorted[sorted.length - 1] ?? Number.NaN,
      failures: this.failures,
      skipped: this.skipped,
    };
  }

  private tick(): void {
    // A probe still waiting when the next is due is itself the measurement: it is not overlapped.
    if (this.inFlight) {
      this.skipped += 1;
      return;
    }
    this.inFlight = true;
    const started = process.hrtime.bigint();
    const request = http.get(this.url, { agent: this.agent, timeout: 10_000 }, (response) => {
      response.resume();
      response.on('end', () => {
        const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
        if (response.statusCode === 200) this.samples.add(elapsedMs);
        else this.failures += 1;
        this.inFlight = false;
      });
    });
    request.on('timeout', () => request.destroy(new Error('probe timed out')));
    request.on('error', () => {
      this.failures += 1;
      this.inFlight = false;
    });
  }
}

/** A JSON request for setup steps (login, seeding), not for measurement; the caller reads the answer's shape. */
export async function requestJson(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: unknown }> {
  if (new URL(url).hostname !== '127.0.0.1') throw new Error('bench requests target 127.0.0.1 only');
  const response = await fetch(url, {
    method,
    headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
    ...(body !== undefined && { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  let json: unknown = null;
  try {
    json = text === '' ? null : JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: response.status, json };
}
