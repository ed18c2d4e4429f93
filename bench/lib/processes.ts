import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A child server prints this line, followed by a JSON object with its port (and maybe a token), once it listens. */
export const READY_MARKER = '@@gatepass-bench-ready';
/** A one-shot worker prints this line, followed by its result as JSON. */
export const RESULT_MARKER = '@@gatepass-bench-result';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_DIR = path.resolve(BENCH_DIR, '..');

const running = new Set<ChildProcess>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    // Each server is the leader of its own process group (detached), so this reaches anything it forked.
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // Already gone.
    }
  }
}

/** Kills every child server still running; used on every way out of the bench. */
export function killAllChildren(): void {
  for (const child of running) killGroup(child, 'SIGKILL');
  running.clear();
}

let cleanupInstalled = false;
/** Makes sure no server outlives the bench: normal exit, an error, or Ctrl-C. */
export function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', killAllChildren);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      console.error(`\nbench: ${signal} received, stopping servers`);
      killAllChildren();
      process.exit(130);
    });
  }
}

/** A port on 127.0.0.1 that was free a moment ago (for servers that cannot report their own). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

export interface ServerSpec {
  name: string;
  command: string;
  args: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** Either the port is known in advance (and /ping is polled), or the child reports it with READY_MARKER. */
  port?: number;
  readyPath?: string;
  startTimeoutMs?: number;
}

export interface ChildServer {
  name: string;
  pid: number;
  port: number;
  baseUrl: string;
  /** A token the server printed with its READY_MARKER line (servers with no login route). */
  readyToken: string | undefined;
  /** The last lines the server printed, for error messages. */
  recentOutput(): string;
  stop(): Promise<void>;
}

/** Starts a server as a child process in its own process group, and waits until it answers. */
export async function startServer(spec: ServerSpec): Promise<ChildServer> {
  const child = spawn(spec.command, spec.args, {
    cwd: spec.cwd ?? REPO_DIR,
    env: { ...process.env, ...spec.env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const lines: string[] = [];
  let reportedPort: number | undefined;
  let reportedToken: string | undefined;
  const remember = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      if (line.startsWith(READY_MARKER)) {
        const parsed = JSON.parse(line.slice(READY_MARKER.length)) as { port?: unknown; token?: unknown };
        if (typeof parsed.port === 'number') reportedPort = parsed.port;
        if (typeof parsed.token === 'string') reportedToken = parsed.token;
      }
      lines.push(line.length > 400 ? `${line.slice(0, 400)}…` : line);
      if (lines.length > 60) lines.shift();
    }
  };
  child.stdout.on('data', remember);
  child.stderr.on('data', remember);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let spawnError: Error | undefined;
  child.once('error', (error) => {
    spawnError = error;
  });

  const recentOutput = () => lines.join('\n');
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      killGroup(child, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    running.delete(child);
  };

  const deadline = Date.now() + (spec.startTimeoutMs ?? 60_000);
  try {
    for (;;) {
      if (spawnError !== undefined) throw spawnError;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited early (${child.exitCode ?? child.signalCode})`);
      if (Date.now() > deadline) throw new Error('did not become ready in time');
      const port = spec.port ?? reportedPort;
      if (port !== undefined && (await answers(`http://127.0.0.1:${port}${spec.readyPath ?? '/ping'}`))) {
        const pid = child.pid;
        if (pid === undefined) throw new Error('no pid');
        return {
          name: spec.name,
          pid,
          port,
          baseUrl: `http://127.0.0.1:${port}`,
          readyToken: reportedToken,
          recentOutput,
          stop,
        };
      }
      await sleep(100);
    }
  } catch (error) {
    await stop();
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`${spec.name} failed to start: ${reason}\n--- its last output ---\n${recentOutput()}`);
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Arguments that run a TypeScript file with this Node and tsx, as one process (no tsx wrapper). */
export function tsNodeArgs(file: string, nodeFlags: string[] = []): string[] {
  // Resolved here, not by name: the children run in scratch directories where `tsx` is not resolvable.
  return [...nodeFlags, '--import', import.meta.resolve('tsx'), path.join(BENCH_DIR, file)];
}

/**
 * Runs a one-shot worker as a child process (its own process group, killed on timeout or exit) and
 * returns the JSON it prints after `marker`.
 */
export async function runWorker(spec: {
  name: string;
  command: string;
  args: string[];
  cwd: string;
  env?: Record<string, string>;
  marker: string;
  timeoutMs: number;
}): Promise<unknown> {
  const child = spawn(spec.command, spec.args, {
    cwd: spec.cwd,
    env: { ...process.env, ...spec.env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const lines: string[] = [];
  let result: unknown;
  let buffered = '';
  const onData = (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const line of parts) {
      if (line.startsWith(spec.marker)) result = JSON.parse(line.slice(spec.marker.length));
      else if (line.trim() !== '') lines.push(line.length > 400 ? `${line.slice(0, 400)}…` : line);
      if (lines.length > 40) lines.shift();
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), spec.timeoutMs);
  const code = await new Promise<number | string>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (exitCode, signal) => resolve(exitCode ?? signal ?? 'unknown'));
  }).finally(() => {
    clearTimeout(timer);
    running.delete(child);
  });
  if (code !== 0 || result === undefined) {
    throw new Error(
      `${spec.name} ended with ${code}${result === undefined ? ' and no result' : ''}\n--- its last output ---\n${lines.join('\n')}`,
    );
  }
  return result;
}
