/**
 * `npm run bench`: runs every section in order, then writes bench/RESULTS.md and bench/results.json.
 *
 *   npm run bench                          the full suite (~9 minutes on 2 cores); the recorded results
 *   npm run bench -- --only=verification   some sections (ids below); written to bench/out/ instead
 *   npm run bench -- --quick               short runs to try the harness; also written to bench/out/
 *
 * A new section is one more entry in SECTIONS (see lib/report.ts, `Section`).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BENCH_DIR, installCleanup, killAllChildren, REPO_DIR } from './lib/processes.js';
import { fmt, ratioTable, type BenchContext, type Section, type SectionOutcome } from './lib/report.js';
import { hostileBodiesSection } from './sections/hostile-bodies.js';
import { loginStorm } from './sections/login-storm.js';
import { loginTiming } from './sections/login-timing.js';
import { memoryFootprint } from './sections/memory.js';
import { protectedRoute } from './sections/protected-route.js';
import { refreshRotation } from './sections/refresh-rotation.js';
import { scaleOut } from './sections/scale-out.js';
import { verificationFloor } from './sections/verification.js';

const SECTIONS: Section[] = [
  verificationFloor,
  protectedRoute,
  loginStorm,
  refreshRotation,
  scaleOut,
  memoryFootprint,
  loginTiming,
  hostileBodiesSection,
];

const PACKAGES = [
  'fastify',
  'kysely',
  'better-sqlite3',
  'pg',
  '@node-rs/argon2',
  'autocannon',
  'express',
  'jsonwebtoken',
  'fast-jwt',
  'bcryptjs',
  'tsx',
];

function packageVersion(name: string): string {
  const file = name === 'gatepass' ? path.join(REPO_DIR, 'package.json') : path.join(REPO_DIR, 'node_modules', name, 'package.json');
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? '?';
  } catch {
    return 'not installed';
  }
}

/** The commit measured, and whether src/ differed from it. */
function gitState(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_DIR, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: REPO_DIR, stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim() !== '';
    return `${commit}${dirty ? ' with uncommitted changes in src/' : ''}`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

function parseArguments(argv: string[]): { only: string[] | undefined; quick: boolean } {
  let only: string[] | undefined;
  let quick = process.env.BENCH_QUICK === '1';
  for (const argument of argv) {
    if (argument === '--quick') quick = true;
    else if (argument.startsWith('--only='))
      only = argument
        .slice('--only='.length)
        .split(',')
        .filter((s) => s !== '');
    else throw new Error(`unknown argument ${argument}; use --only=${SECTIONS.map((s) => s.id).join(',')} and/or --quick`);
  }
  const unknown = only?.filter((id) => !SECTIONS.some((s) => s.id === id)) ?? [];
  if (unknown.length > 0) throw new Error(`unknown section ${unknown.join(', ')}; sections: ${SECTIONS.map((s) => s.id).join(', ')}`);
  return { only, quick };
}

/** CPU time in clock ticks: the whole machine's (all CPUs) from /proc/stat, and this process's with its reaped children. */
interface CpuSample {
  busy: number;
  total: number;
  bench: number;
}

function cpuSample(): CpuSample | null {
  try {
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((sum, v) => sum + v, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    // /proc/self/stat: utime, stime, cutime, cstime are fields 14–17 (after the parenthesised name).
    const own = readFileSync('/proc/self/stat', 'utf8');
    const after = own
      .slice(own.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    const bench = (after[11] ?? 0) + (after[12] ?? 0) + (after[13] ?? 0) + (after[14] ?? 0);
    return { busy: total - idle, total, bench };
  } catch {
    return null;
  }
}

/** Share of the machine's CPU capacity that processes other than the bench and its servers used between two samples. */
function othersPercent(before: CpuSample | null, after: CpuSample | null): number | null {
  if (before === null || after === null || after.total === before.total) return null;
  return Math.max(0, (100 * (after.busy - before.busy - (after.bench - before.bench))) / (after.total - before.total));
}

/** Share of the machine's CPU time spent busy (all processes) over the next `ms` milliseconds. */
async function cpuBusyPercent(ms: number): Promise<number | null> {
  const sample = cpuSample;
  const before = sample();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const after = sample();
  if (before === null || after === null || after.total === before.total) return null;
  return (100 * (after.busy - before.busy)) / (after.total - before.total);
}

function loadAverage(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');
}

function machine(): Record<string, string> {
  const cpus = os.cpus();
  return {
    cpu: `${cpus[0]?.model ?? 'unknown'} × ${cpus.length}`,
    memory: `${fmt(os.totalmem() / 2 ** 30, 1)} GiB`,
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    hostname: os.hostname(),
    node: process.version,
    uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
  };
}

function renderMarkdown(run: {
  date: Date;
  seconds: number;
  partial: boolean;
  quick: boolean;
  machine: Record<string, string>;
  versions: Record<string, string>;
  outcomes: SectionOutcome[];
  /** Other processes competed for the CPU before or during the run. */
  machineBusy: boolean;
}): string {
  const allRatios = run.outcomes.flatMap((o) => o.ratios);
  const busy = run.machineBusy
    ? [
        `> The machine was not idle: ${run.machine['CPU busy in the second before the run'] ?? '?'} of its CPU time was busy just before the run, and ` +
          `other processes than the bench used ${run.machine['CPU used by other processes during the run'] ?? '?'} of it during the run. ` +
          'Other processes competed for the 2 cores, so absolute figures are noisier than usual; ratios, taken within the run ' +
          '(round-robin where servers are compared), less so.',
        '',
      ]
    : [];
  const lines = [
    '# gatepass benchmark results',
    '',
    `Generated by \`npm run bench\` on ${run.date.toISOString()} in ${fmt(run.seconds / 60, 1)} minutes` +
      `${run.partial ? ` (partial run: ${run.outcomes.map((o) => o.id).join(', ')})` : ''}${run.quick ? ' — QUICK MODE, figures not comparable' : ''}.`,
    'How to read these figures, and what each ratio means: [README.md](README.md).',
    '',
    ...busy,
    '## Targets (DESIGN.md), all ratios from this run',
    '',
    ...ratioTable(allRatios),
    '',
    '## Machine',
    '',
    ...Object.entries(run.machine).map(([key, value]) => `- ${key}: ${value}`),
    '',
    '## Versions',
    '',
    ...Object.entries(run.versions).map(([key, value]) => `- ${key}: ${value}`),
    '',
  ];
  for (const outcome of run.outcomes) {
    lines.push(`## ${outcome.title}`, '', `_${fmt(outcome.seconds, 0)} s_`, '');
    if (outcome.status === 'failed') lines.push(`**Failed:** ${outcome.error ?? 'unknown error'}`, '');
    lines.push(...outcome.markdown, '');
  }
  return `${lines
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}

async function main(): Promise<number> {
  const { only, quick } = parseArguments(process.argv.slice(2));
  installCleanup();
  const started = Date.now();
  const date = new Date();
  const loadAtStart = loadAverage();
  const gitAtStart = gitState();
  const cpuBusy = await cpuBusyPercent(1000);
  const cpuAtStart = cpuSample();
  if (cpuBusy !== null && cpuBusy > 15)
    console.log(`note: ${fmt(cpuBusy, 0)}% of the CPU is busy before the run starts; figures will be noisier`);
  const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'gatepass-bench-'));
  const context: BenchContext = {
    tmpRoot,
    quick,
    postgresUrl: process.env.GATEPASS_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    redisUrl: process.env.GATEPASS_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
    log: (message) => console.log(message),
  };
  const selected = only === undefined ? SECTIONS : SECTIONS.filter((s) => only.includes(s.id));
  const outcomes: SectionOutcome[] = [];
  try {
    for (const section of selected) {
      console.log(`\n== ${section.title}`);
      const sectionStart = Date.now();
      try {
        const output = await section.run(context);
        outcomes.push({ id: section.id, title: section.title, status: 'ok', seconds: (Date.now() - sectionStart) / 1000, ...output });
      } catch (error) {
        const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
        console.error(`section ${section.id} failed: ${message}`);
        outcomes.push({
          id: section.id,
          title: section.title,
          status: 'failed',
          error: message.split('\n')[0] ?? message,
          seconds: (Date.now() - sectionStart) / 1000,
          markdown: ['```', message.slice(0, 4000), '```'],
          data: null,
          ratios: [],
        });
      } finally {
        // Sections stop their own servers; this is the safety net for one that threw half-way.
        killAllChildren();
      }
      console.log(`   (${fmt((Date.now() - sectionStart) / 1000, 0)} s)`);
    }
  } finally {
    killAllChildren();
    rmSync(tmpRoot, { recursive: true, force: true });
  }

  const seconds = (Date.now() - started) / 1000;
  const others = othersPercent(cpuAtStart, cpuSample());
  // Busy beforehand, or others took more than a tenth of the machine while the bench ran.
  const machineBusy = (cpuBusy !== null && cpuBusy > 15) || (others !== null && others > 10);
  const gitAtEnd = gitState();
  const commit = gitAtStart === gitAtEnd ? gitAtStart : `${gitAtStart} at the start, ${gitAtEnd} at the end`;
  const versions: Record<string, string> = { gatepass: `${packageVersion('gatepass')} (commit ${commit})`, node: process.version };
  for (const name of PACKAGES) versions[name] = packageVersion(name);
  for (const outcome of outcomes) Object.assign(versions, outcome.versions ?? {});
  const partial = only !== undefined;
  const machineInfo = {
    ...machine(),
    'CPU busy in the second before the run': cpuBusy === null ? 'unknown' : `${fmt(cpuBusy, 0)}%`,
    'CPU used by other processes during the run': others === null ? 'unknown' : `${fmt(others, 0)}%`,
    'load average at start (1/5/15 min)': loadAtStart,
    'load average at end (1/5/15 min)': loadAverage(),
  };
  const report = { date, seconds, partial, quick, machine: machineInfo, versions, outcomes, machineBusy };
  const outDir = partial || quick ? path.join(BENCH_DIR, 'out') : BENCH_DIR;
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, 'RESULTS.md'), renderMarkdown(report));
  writeFileSync(
    path.join(outDir, 'results.json'),
    `${JSON.stringify({ ...report, date: date.toISOString(), ratios: outcomes.flatMap((o) => o.ratios) }, null, 2)}\n`,
  );
  console.log(`\nWrote ${path.relative(REPO_DIR, path.join(outDir, 'RESULTS.md'))} and results.json in ${fmt(seconds / 60, 1)} minutes.`);
  console.log(ratioTable(outcomes.flatMap((o) => o.ratios)).join('\n'));
  return outcomes.some((o) => o.status === 'failed') ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    killAllChildren();
    process.exit(1);
  },
);
