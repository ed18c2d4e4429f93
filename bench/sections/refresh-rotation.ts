import type autocannon from 'autocannon';
import { runLoad, summarize, type LoadOptions, type RepeatedLoad } from '../lib/load.js';
import type { ChildServer } from '../lib/processes.js';
import { fmt, table, type BenchContext, type Section } from '../lib/report.js';
import { gatepassEnv, loginGatepass, privatePostgresSchema, scratchDir, seedGatepass, startGatepass } from '../lib/servers.js';

const CONNECTIONS = 10;

/**
 * Each connection carries one session's chain: it presents its current refresh token and keeps the
 * one it gets back, so every request is a genuine rotation (never a reuse). Fresh sessions (HTTP
 * logins) for every run, so no chain is broken by a request cut off at the end of the previous run.
 */
async function refreshLoad(server: ChildServer, seconds: number): Promise<LoadOptions> {
  const chains = await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => loginGatepass(server.baseUrl, i + 1)));
  let next = 0;
  return {
    url: server.baseUrl,
    connections: CONNECTIONS,
    durationSeconds: seconds,
    setupClient: (client: autocannon.Client) => {
      const chain = { token: chains[next++ % chains.length]?.refresh_token ?? '' };
      client.setRequests([
        {
          method: 'POST',
          path: '/auth/refresh',
          headers: { 'content-type': 'application/json' },
          setupRequest: (request) => ({ ...request, body: JSON.stringify({ refresh_token: chain.token }) }),
          onResponse: (status, body) => {
            if (status === 200) chain.token = (JSON.parse(body) as { refresh_token: string }).refresh_token;
          },
        },
      ]);
    },
  };
}

async function measure(server: ChildServer, plan: { warmup: number; runs: number; seconds: number }): Promise<RepeatedLoad> {
  await runLoad(await refreshLoad(server, plan.warmup));
  const runs = [];
  for (let i = 0; i < plan.runs; i++) {
    const result = await runLoad(await refreshLoad(server, plan.seconds));
    if (result.failures > 0)
      throw new Error(`${server.name}: ${result.failures} failed refreshes (${JSON.stringify(result.statusCounts)})`);
    runs.push(result);
  }
  return summarize(runs);
}

/** 4. Refresh rotation: refreshes/s on SQLite and on PostgreSQL (a private schema, dropped after). */
export const refreshRotation: Section = {
  id: 'refresh',
  title: '4. Refresh rotation (refreshes/s, SQLite and PostgreSQL)',
  async run(context: BenchContext) {
    const plan = context.quick ? { warmup: 0.5, runs: 1, seconds: 1 } : { warmup: 2, runs: 3, seconds: 5 };
    const results: Record<string, RepeatedLoad | { skipped: string }> = {};
    const versions: Record<string, string> = {};

    context.log('  SQLite');
    {
      const cwd = scratchDir(context, 'refresh-sqlite');
      const env = gatepassEnv('sqlite:./data/gatepass.db');
      await seedGatepass(env.DATABASE_URL ?? '', cwd, CONNECTIONS);
      const server = await startGatepass('gatepass (SQLite)', cwd, env);
      try {
        results.sqlite = await measure(server, plan);
      } finally {
        await server.stop();
      }
    }

    context.log('  PostgreSQL');
    let schema: Awaited<ReturnType<typeof privatePostgresSchema>> | undefined;
    try {
      schema = await privatePostgresSchema(context.postgresUrl);
    } catch (error) {
      const reason = `PostgreSQL at ${new URL(context.postgresUrl).host} unreachable: ${error instanceof Error ? error.message : String(error)}`;
      context.log(`  skipping PostgreSQL: ${reason}`);
      results.postgres = { skipped: reason };
    }
    if (schema !== undefined) {
      versions.postgresql = schema.serverVersion;
      try {
        const cwd = scratchDir(context, 'refresh-postgres');
        const env = gatepassEnv(schema.url);
        await seedGatepass(schema.url, cwd, CONNECTIONS);
        const server = await startGatepass('gatepass (PostgreSQL)', cwd, env);
        try {
          results.postgres = await measure(server, plan);
        } finally {
          await server.stop();
        }
      } finally {
        await schema.drop();
      }
    }

    const row = (label: string, r: RepeatedLoad | { skipped: string } | undefined) =>
      r === undefined || 'skipped' in r
        ? [label, `skipped${r !== undefined ? `: ${r.skipped}` : ''}`, '—', '—']
        : [label, fmt(r.requestsPerSecond), fmt(r.p50Ms, 2), fmt(r.p99Ms, 2)];
    for (const [name, r] of Object.entries(results)) {
      if (!('skipped' in r)) context.log(`    ${name}: ${fmt(r.requestsPerSecond)} refreshes/s, p99 ${fmt(r.p99Ms, 2)} ms`);
    }
    const markdown = [
      `POST /auth/refresh over ${CONNECTIONS} connections, each rotating its own session's chain (the token it presents is always the latest). ` +
        `A ${plan.warmup} s warm-up, then ${plan.runs} runs of ${plan.seconds} s, each on ${CONNECTIONS} freshly logged-in sessions; median shown. ` +
        'Every refresh is one transaction: claim the token, check the session and user, insert the next token. ' +
        "PostgreSQL runs in a private schema of GATEPASS_TEST_POSTGRES_URL, dropped afterwards; the app's pool holds 10 connections.",
      '',
      ...table(
        ['database', 'refreshes/s', 'p50 ms', 'p99 ms'],
        [row('SQLite (WAL, file in the temp directory)', results.sqlite), row('PostgreSQL', results.postgres)],
      ),
    ];
    return { markdown, data: { plan, connections: CONNECTIONS, results }, ratios: [], versions };
  },
};
