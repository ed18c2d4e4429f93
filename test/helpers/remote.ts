import path from 'node:path';
import { REPO_ROOT, runNode, type ProcessRun } from './instances.js';

/**
 * Talking to gatepass and the example service as real processes over loopback HTTP: JSON calls,
 * the real CLI binary, service credentials and a raw Server-Sent Events reader.
 */

/** The built CLI (`npm run build`), as an operator runs it. */
export const CLI_BIN = path.join(REPO_ROOT, 'dist', 'cli', 'main.js');
/** The gatepass/verify build the example service imports. */
export const VERIFY_BUILD = path.join(REPO_ROOT, 'dist', 'verify', 'index.js');
/** The node arguments that run examples/projects-service from source (readiness: `/health`). */
export const EXAMPLE_SERVICE_ARGS = ['--import', 'tsx', 'examples/projects-service/server.ts'];

export interface Answer {
  status: number;
  body: unknown;
  challenge: string | null;
}

/** One HTTP call with a JSON body and a Bearer token, or other headers; the body parsed as JSON when it is. */
export async function call(
  url: string,
  init: { method?: string; body?: unknown; token?: string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
  const response = await fetch(url, {
    method: init.method ?? 'GET',
    headers,
    ...(init.body !== undefined && { body: JSON.stringify(init.body) }),
    signal: AbortSignal.timeout(init.timeoutMs ?? 10_000),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: response.status, body, challenge: response.headers.get('www-authenticate') };
}

/** Runs the built CLI with exactly `env` (plus PATH) in `cwd`. */
export function runCli(args: string[], cwd: string, env: Record<string, string>): Promise<ProcessRun> {
  return runNode([CLI_BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '', ...env } });
}

export interface ServiceCredential {
  clientId: string;
  clientSecret: string;
}

/** The `client_id: …` and `client_secret: …` lines `gatepass service create` prints. */
export function parseServiceCredential(stdout: string): ServiceCredential {
  const clientId = /^client_id: (\S+)$/m.exec(stdout)?.[1];
  const clientSecret = /^client_secret: (\S+)$/m.exec(stdout)?.[1];
  if (clientId === undefined || clientSecret === undefined) throw new Error(`no credential in the output: ${stdout}`);
  return { clientId, clientSecret };
}

/** HTTP Basic for a service credential (both halves form-encoded first, RFC 6749 §2.3.1). */
export function basicAuthorization({ clientId, clientSecret }: ServiceCredential): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
}

export interface StreamEvent {
  event: string;
  data: string;
  id: string | undefined;
  /** performance.now() when it was read. */
  at: number;
}

export interface EventStream {
  status: number;
  contentType: string | null;
  /** Every event read so far, in order. */
  events: StreamEvent[];
  /** Resolves when the server ends the stream (or close() aborts it), with performance.now() then. */
  ended: Promise<number>;
  /** Whether the server ended it (or reset it), rather than close(). */
  endedByServer(): boolean;
  close(): void;
}

/**
 * Opens a Server-Sent Events stream with fetch and reads it raw in the background: each block of
 * `event:`, `data:` and `id:` lines up to a blank line is one event. A non-200 answer is read whole
 * and the stream is ended at once.
 */
export async function openEventStream(url: string, headers: Record<string, string>): Promise<EventStream> {
  const abort = new AbortController();
  const response = await fetch(url, {
    headers: { accept: 'text/event-stream', ...headers },
    signal: AbortSignal.any([abort.signal, AbortSignal.timeout(120_000)]),
  });
  const events: StreamEvent[] = [];
  let byServer = false;
  const read = async (): Promise<number> => {
    if (response.status !== 200 || response.body === null) {
      await response.text();
      byServer = true;
      return performance.now();
    }
    const decoder = new TextDecoder();
    let buffered = '';
    try {
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = /\r?\n\r?\n/.exec(buffered)) !== null) {
          const block = buffered.slice(0, end.index);
          buffered = buffered.slice(end.index + end[0].length);
          const event: StreamEvent = { event: 'message', data: '', id: undefined, at: performance.now() };
          for (const line of block.split(/\r?\n/)) {
            const colon = line.indexOf(':');
            if (colon === 0) continue; // a comment
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
            if (field === 'event') event.event = value;
            else if (field === 'data') event.data = event.data === '' ? value : `${event.data}\n${value}`;
            else if (field === 'id') event.id = value;
          }
          events.push(event);
        }
      }
      byServer = true;
    } catch {
      // aborted by close() or the overall timeout, or reset by the server: ended all the same
      byServer = !abort.signal.aborted;
    }
    return performance.now();
  };
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    events,
    ended: read(),
    endedByServer: () => byServer,
    close: () => abort.abort(),
  };
}

/** Resolves with what `promise` resolves to, or rejects after `ms` naming `what`. */
export async function within<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The nearest-rank percentile `p` (0–100) of `values`. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}
