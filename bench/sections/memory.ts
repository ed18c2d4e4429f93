import { RESULT_MARKER, runWorker, tsNodeArgs } from '../lib/processes.js';
import { fmt, table, type BenchContext, type Section } from '../lib/report.js';
import { scratchDir } from '../lib/servers.js';
// Types only: the worker runs in its own process (runWorker), never in this one.
import type { MemoryResult } from '../workers/memory.js';

const MiB = 2 ** 20;

/** 6. Memory: RSS of a gatepass process after 10,000 users and 20,000 sessions, and after 100,000 revocations. */
export const memoryFootprint: Section = {
  id: 'memory',
  title: '6. Memory (RSS of one gatepass process)',
  async run(context: BenchContext) {
    const sizes = context.quick
      ? { users: 1000, sessions: 2000, revocations: 10_000 }
      : { users: 10_000, sessions: 20_000, revocations: 100_000 };
    const result = (await runWorker({
      name: 'memory worker',
      command: process.execPath,
      args: tsNodeArgs('workers/memory.ts', ['--expose-gc']),
      cwd: scratchDir(context, 'memory'),
      env: { BENCH_USERS: String(sizes.users), BENCH_SESSIONS: String(sizes.sessions), BENCH_REVOCATIONS: String(sizes.revocations) },
      marker: RESULT_MARKER,
      timeoutMs: 5 * 60_000,
    })) as MemoryResult;

    const first = result.stages[0];
    const rows = result.stages.map((s, i) => {
      const previous = result.stages[i - 1];
      return [
        s.stage,
        fmt(s.rssBytes / MiB, 1),
        previous === undefined ? '—' : `${s.rssBytes >= previous.rssBytes ? '+' : ''}${fmt((s.rssBytes - previous.rssBytes) / MiB, 1)}`,
        fmt(s.heapUsedBytes / MiB, 1),
        previous === undefined
          ? '—'
          : `${s.heapUsedBytes >= previous.heapUsedBytes ? '+' : ''}${fmt((s.heapUsedBytes - previous.heapUsedBytes) / MiB, 1)}`,
        fmt(s.seconds, 1),
      ];
    });
    const revocationStage = result.stages[result.stages.length - 1];
    const beforeRevocations = result.stages[result.stages.length - 2];
    const bytesPerRevocation =
      revocationStage !== undefined && beforeRevocations !== undefined
        ? (revocationStage.heapUsedBytes - beforeRevocations.heapUsedBytes) / sizes.revocations
        : null;
    for (const s of result.stages) context.log(`    ${s.stage}: RSS ${fmt(s.rssBytes / MiB, 1)} MiB (${fmt(s.seconds, 1)} s)`);

    const markdown = [
      'One process runs the real app (buildApp on a SQLite file, listening); the bench then, through the services the app decorates itself with, ' +
        "inserts users with Kysely on the app's database handle in batches of 500 (one precomputed argon2id hash), starts sessions through " +
        "the app's SessionService (what a login does after the password check: a session row, an audit row, a refresh-token row, two signed tokens), " +
        "checks that a seeded user can log in and read /users/me over the app, and finally records session revocations in the app's " +
        'RevocationList (Revocations.announce, as a logout does after its commit). Figures are read after two full GCs. ' +
        "Sessions live in the database, not in memory: RSS growth there is mostly SQLite's page cache. " +
        'The first row is the bare process (Node and the tsx loader every bench process carries; a built `npm start` has no tsx).',
      '',
      ...table(['stage', 'RSS MiB', 'Δ RSS', 'heap used MiB', 'Δ heap', 'stage took s'], rows),
      '',
      `Rows in the database at the end: ${Object.entries(result.rows)
        .map(([table, n]) => `${table} ${fmt(n)}`)
        .join(
          ', ',
        )} (the revocations were applied in memory, as a logout applies its own after committing it, so the table holds none of them). ` +
        `Heap per revocation ≈ ${fmt(bytesPerRevocation, 0)} bytes. Starting RSS: ${fmt((first?.rssBytes ?? 0) / MiB, 1)} MiB.`,
    ];
    return { markdown, data: { sizes, ...result, bytesPerRevocation }, ratios: [] };
  },
};
