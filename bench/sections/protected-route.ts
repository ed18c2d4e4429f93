import { runLoad, summarize, type LoadOptions, type LoadResult, type RepeatedLoad } from '../lib/load.js';
import { ensureFastapiSeed } from '../lib/python.js';
import { fmt, fmtRatio, ratio, table, type BenchContext, type Ratio, type Section } from '../lib/report.js';
import {
  assertAuthorized,
  bareOnSqlite,
  fastifyGuardOnly,
  gatepassOnSqlite,
  startExpress,
  startFastapi,
  type RunningServer,
} from '../lib/servers.js';

const USERS = 1000;
/** Also the total of the scale-out section, which measures the same routes with the same plan. */
export const CONNECTIONS = 10;
/** Warm-up, runs and run length of every HTTP throughput measurement on these routes (shared with the scale-out section). */
export function httpPlan(quick: boolean): { warmup: number; runs: number; seconds: number } {
  return quick ? { warmup: 0.5, runs: 1, seconds: 1 } : { warmup: 2, runs: 3, seconds: 5 };
}
export const ROUTES = [
  { id: 'db-free', path: '/bench/protected', label: 'DB-free protected route (GET /bench/protected)' },
  { id: 'users-me', path: '/users/me', label: 'GET /users/me (token check + user lookup)' },
] as const;
type RouteId = (typeof ROUTES)[number]['id'];

interface System {
  id: 'gatepass' | 'bare' | 'fastify-guard' | 'express' | 'fastapi';
  label: string;
  routes: readonly RouteId[];
  start(context: BenchContext): Promise<RunningServer>;
}

const BOTH: readonly RouteId[] = ['db-free', 'users-me'];
const SYSTEMS: System[] = [
  { id: 'bare', label: 'bare node:http, same verification (ceiling)', routes: BOTH, start: (c) => bareOnSqlite(c, USERS) },
  { id: 'gatepass', label: 'gatepass (Fastify, buildApp)', routes: BOTH, start: (c) => gatepassOnSqlite(c, USERS) },
  {
    id: 'fastify-guard',
    label: 'diagnostic: Fastify + gatepass guard only, no app plugins',
    routes: ['db-free'],
    start: (c) => fastifyGuardOnly(c),
  },
  { id: 'express', label: 'Express + jsonwebtoken + bcryptjs', routes: BOTH, start: (c) => startExpress(c, USERS) },
  { id: 'fastapi', label: 'FastAPI seed + python-jose (uvicorn)', routes: BOTH, start: (c) => startFastapi(c, USERS) },
];

type Measurement = { load: RepeatedLoad } | { skipped: string };

/**
 * 2. Protected route: req/s and latency of a DB-free protected route and of GET /users/me on gatepass
 * and on the three baselines (plus a diagnostic Fastify), measured in round-robin rounds.
 */
export const protectedRoute: Section = {
  id: 'protected',
  title: '2. Protected route (req/s and latency over HTTP)',
  async run(context) {
    const plan = httpPlan(context.quick);
    const python = await ensureFastapiSeed(context.log);
    const versions: Record<string, string> = {};
    if (python.available) {
      for (const [name, version] of Object.entries(python.versions))
        versions[name === 'python' ? 'python (/usr/bin/python3)' : `${name} (Debian)`] = version;
      if (python.installed.length > 0) context.log(`  installed ${python.installed.join(' ')}`);
    } else {
      context.log(`  skipping the FastAPI baseline: ${python.reason}`);
    }

    const results = new Map<string, Measurement>();
    const key = (system: System['id'], route: RouteId) => `${system}:${route}`;
    // Every server is started first and idles while another is loaded; the runs then go round-robin
    // (round 1 of every server and route, then round 2, …), so a slow spell of the machine hits all
    // servers alike instead of whichever happened to be measured during it.
    const targets: { system: System; route: (typeof ROUTES)[number]; server: RunningServer['server']; token: string }[] = [];
    const servers: RunningServer['server'][] = [];
    const runs = new Map<string, LoadResult[]>();
    try {
      for (const system of SYSTEMS) {
        if (system.id === 'fastapi' && !python.available) {
          for (const route of ROUTES) results.set(key(system.id, route.id), { skipped: python.reason });
          continue;
        }
        context.log(`  starting ${system.label}`);
        const { server, token } = await system.start(context);
        servers.push(server);
        for (const route of ROUTES.filter((r) => system.routes.includes(r.id))) {
          await assertAuthorized(server, route.path, token);
          targets.push({ system, route, server, token });
        }
      }
      const options = (target: (typeof targets)[number], seconds: number): LoadOptions => ({
        url: `${target.server.baseUrl}${target.route.path}`,
        connections: CONNECTIONS,
        durationSeconds: seconds,
        headers: { authorization: `Bearer ${target.token}` },
      });
      context.log(`  warm-up: ${plan.warmup} s per server and route`);
      for (const target of targets) await runLoad(options(target, plan.warmup));
      for (let round = 1; round <= plan.runs; round++) {
        context.log(`  round ${round} of ${plan.runs}`);
        for (const target of targets) {
          const result = await runLoad(options(target, plan.seconds));
          if (result.failures > 0) {
            throw new Error(
              `${target.system.label} ${target.route.path}: ${result.failures} failed requests (${JSON.stringify(result.statusCounts)})`,
            );
          }
          const k = key(target.system.id, target.route.id);
          runs.set(k, [...(runs.get(k) ?? []), result]);
        }
      }
    } finally {
      for (const server of servers) await server.stop();
    }
    for (const target of targets) {
      const load = summarize(runs.get(key(target.system.id, target.route.id)) ?? []);
      context.log(
        `    ${target.system.id} ${target.route.path}: ${fmt(load.requestsPerSecond)} req/s, p50 ${fmt(load.p50Ms, 2)} ms, p99 ${fmt(load.p99Ms, 2)} ms`,
      );
      results.set(key(target.system.id, target.route.id), { load });
    }

    const rps = (system: System['id'], route: RouteId): number | null => {
      const m = results.get(key(system, route));
      return m !== undefined && 'load' in m ? m.load.requestsPerSecond : null;
    };
    const skippedNote = (system: System['id'], route: RouteId): string | undefined => {
      const m = results.get(key(system, route));
      return m !== undefined && 'skipped' in m ? `skipped: ${m.skipped}` : undefined;
    };
    const over = (route: RouteId, baseline: System['id']): number | null => {
      const mine = rps('gatepass', route);
      const theirs = rps(baseline, route);
      return mine === null || theirs === null ? null : mine / theirs;
    };

    const ratios: Ratio[] = [];
    for (const route of ROUTES) {
      const goals = [
        { baseline: 'bare', threshold: 0.9, name: '≥ 90% of bare node:http' },
        { baseline: 'express', threshold: 5, name: '≥ 5× Express' },
        { baseline: 'fastapi', threshold: 20, name: '≥ 20× FastAPI seed' },
      ] as const;
      for (const goal of goals) {
        const note = skippedNote(goal.baseline, route.id);
        ratios.push(
          ratio({
            section: 'protected',
            name: `${route.path}: ${goal.name}`,
            definition: `gatepass req/s ÷ ${goal.baseline} req/s on ${route.path}`,
            value: over(route.id, goal.baseline),
            comparator: '>=',
            threshold: goal.threshold,
            unit: '×',
            ...(note !== undefined && { note }),
          }),
        );
      }
    }

    const markdown: string[] = [
      `autocannon, ${CONNECTIONS} connections, no pipelining, one ${plan.warmup} s warm-up then ${plan.runs} runs of ${plan.seconds} s per server and route, ` +
        "in round-robin rounds (every server and route once per round) so that the machine's drift hits all alike; median of the runs. Latency percentiles are over every 2xx response of a run (sub-millisecond timings), median over runs. " +
        `Each server is a child process (all started first; only the one under load is busy) with ${fmt(USERS)} seeded users on SQLite; gatepass logs at warn (no per-request log lines), ` +
        'uvicorn without access log. The load generator shares the 2 cores with the server.',
      '',
    ];
    for (const route of ROUTES) {
      markdown.push(`### ${route.label}`, '');
      markdown.push(
        ...table(
          ['server', 'req/s', 'p50 ms', 'p99 ms', 'gatepass ÷ this'],
          SYSTEMS.filter((system) => system.routes.includes(route.id)).map((system) => {
            const m = results.get(key(system.id, route.id));
            if (m === undefined || 'skipped' in m)
              return [system.label, `skipped${m !== undefined ? `: ${m.skipped}` : ''}`, '—', '—', '—'];
            return [
              system.label,
              fmt(m.load.requestsPerSecond),
              fmt(m.load.p50Ms, 2),
              fmt(m.load.p99Ms, 2),
              system.id === 'gatepass' ? '1.00×' : fmtRatio(over(route.id, system.id)),
            ];
          }),
        ),
        '',
      );
    }
    const data = Object.fromEntries([...results.entries()].map(([k, m]) => [k, 'load' in m ? m.load : m]));
    return { markdown, data: { plan, connections: CONNECTIONS, users: USERS, results: data }, ratios, versions };
  },
};
