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

function timeLoop(fn: () => unknown, iterations: number): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) consume(fn());
  return Number(process.hrtime.bigint() - started);
}

/**
 * Warms every case up for `warmupMs`, sizes its loop to last about `roundMs`, then runs `rounds`
 * rounds in which each case runs once, interleaved, so that drift of the machine hits all cases alike.
 */
export function runMicro(cases: MicroCase[], options: { warmupMs: number; roundMs: number; rounds: number }): MicroResult[] {
  const iterations = new Map<string, number>();
  for (const c of cases) {
    let count = 0;
    const warmupNs = options.warmupMs * 1e6;
    const started = process.hrtime.bigint();
    while (Number(process.hrtime.bigint() - started) < warmupNs) {
      for (let i = 0; i < 64; i++) consume(c.fn());
      count += 64;
    }
    const nsPerOp = warmupNs / count;
    iterations.set(c.name, Math.max(64, Math.round((options.roundMs * 1e6) / nsPerOp)));
  }
  const samples = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  for (let round = 0; round < options.rounds; round++) {
    for (const c of cases) {
      const n = iterations.get(c.name) ?? 64;
      samples.get(c.name)?.push(timeLoop(c.fn, n) / n);
    }
  }
  if (sink < 0) console.log(sink);
  return cases.map((c) => {
    const rounds = samples.get(c.name) ?? [];
    const nsPerOp = median(rounds);
    return { name: c.name, nsPerOp, opsPerSecond: 1e9 / nsPerOp, rounds, iterationsPerRound: iterations.get(c.name) ?? 0 };
  });
}
