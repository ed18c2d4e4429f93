import { median } from './stats.js';

export interface MicroCase {
  name: string;
  fn: () => unknown;
}

export interface MicroResult {
  name: string;
  /** Median over the rounds of the mean time per call. */
  nsPerOp: number;
  opsPerSecond: number;
  rounds: number[];
  iterationsPerRound: number;
}

let sink = 0;
/** Keeps results observable so the optimiser cannot drop the calls. */
function consume(value: unknown): void {
  if (value === undefined || value === null || value === false) sink += 1;
}

/** Runs `fn` in blocks of 64 until `ns` have passed; returns how many calls ran. */
function warmLoop(fn: () => unknown, ns: number): number {
  let count = 0;
  const started = process.hrtime.bigint();
  while (Number(process.hrtime.bigint() - started) < ns) {
    for (let i = 0; i < 64; i++) consume(fn());
    count += 64;
  }
  return count;
}

function timeLoop(fn: () => unknown, iterations: number): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) consume(fn());
  return Number(process.hrtime.bigint() - started);
}

/** warmLoop and timeLoop for a function returning a promise: each call is awaited before the next. */
async function warmLoopAsync(fn: () => Promise<unknown>, ns: number): Promise<number> {
  let count = 0;
  const started = process.hrtime.bigint();
  while (Number(process.hrtime.bigint() - started) < ns) {
    for (let i = 0; i < 64; i++) consume(await fn());
    count += 64;
  }
  return count;
}

async function timeLoopAsync(fn: () => Promise<unknown>, iterations: number): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) consume(await fn());
  return Number(process.hrtime.bigint() - started);
}

export interface MicroOptions {
  warmupMs: number;
  roundMs: number;
  rounds: number;
}

/** One step of a run: warm case `index` up for `ns` (answered with the calls made), or time `iterations` calls of it (answered with the ns taken). */
type Step = { kind: 'warmup'; index: number; ns: number } | { kind: 'time'; index: number; iterations: number };

/**
 * The method shared by runMicro and runMicroAsync, which differ only in how they make the calls:
 * warm every case up for `warmupMs`, size its loop to last about `roundMs`, then run `rounds` rounds
 * in which each case runs once, interleaved, so that drift of the machine hits all cases alike; the
 * result of a case is its median round. It yields each step and is sent back what the step measured.
 */
function* schedule(cases: readonly { name: string }[], options: MicroOptions): Generator<Step, MicroResult[], number> {
  const warmupNs = options.warmupMs * 1e6;
  const iterations: number[] = [];
  for (let index = 0; index < cases.length; index++) {
    const count = yield { kind: 'warmup', index, ns: warmupNs };
    const nsPerOp = warmupNs / count;
    iterations.push(Math.max(64, Math.round((options.roundMs * 1e6) / nsPerOp)));
  }
  const samples: number[][] = cases.map(() => []);
  for (let round = 0; round < options.rounds; round++) {
    for (let index = 0; index < cases.length; index++) {
      const n = iterations[index] ?? 64;
      samples[index]?.push((yield { kind: 'time', index, iterations: n }) / n);
    }
  }
  if (sink < 0) console.log(sink);
  return cases.map((c, index) => {
    const rounds = samples[index] ?? [];
    const nsPerOp = median(rounds);
    return { name: c.name, nsPerOp, opsPerSecond: 1e9 / nsPerOp, rounds, iterationsPerRound: iterations[index] ?? 0 };
  });
}

function caseAt<C>(cases: readonly C[], index: number): C {
  const found = cases[index];
  if (found === undefined) throw new Error(`no micro-benchmark case ${index}`);
  return found;
}

/**
 * Warms every case up for `warmupMs`, sizes its loop to last about `roundMs`, then runs `rounds`
 * rounds in which each case runs once, interleaved, so that drift of the machine hits all cases alike.
 */
export function runMicro(cases: MicroCase[], options: MicroOptions): MicroResult[] {
  const steps = schedule(cases, options);
  let next = steps.next();
  while (next.done !== true) {
    const step = next.value;
    const { fn } = caseAt(cases, step.index);
    next = steps.next(step.kind === 'warmup' ? warmLoop(fn, step.ns) : timeLoop(fn, step.iterations));
  }
  return next.value;
}

export interface MicroCaseAsync {
  name: string;
  fn: () => Promise<unknown>;
}

/**
 * runMicro for functions that return a promise: every call is awaited before the next, so a case
 * costs its call, its work and one await. Compare async cases with each other only (a floor
 * measured here carries the same await). A round runs on microtasks alone; between steps the event
 * loop gets a turn (timers, sockets), so that I/O the cases depend on (e.g. a feed's heartbeats)
 * is handled outside the timed loops.
 */
export async function runMicroAsync(cases: MicroCaseAsync[], options: MicroOptions): Promise<MicroResult[]> {
  const steps = schedule(cases, options);
  let next = steps.next();
  while (next.done !== true) {
    const step = next.value;
    const { fn } = caseAt(cases, step.index);
    await new Promise<void>((resolve) => setImmediate(resolve));
    next = steps.next(step.kind === 'warmup' ? await warmLoopAsync(fn, step.ns) : await timeLoopAsync(fn, step.iterations));
  }
  return next.value;
}
