import os from 'node:os';
import { runLoad, type LoadOptions, type LoadResult } from '../lib/load.js';
import type { ChildServer } from '../lib/processes.js';
import { fmt, fmtRatio, ratio, table, type BenchContext, type Ratio, type Section } from '../lib/report.js';
import {
  assertAuthorized,
  gatepassEnv,
  loginGatepass,
  privatePostgresSchema,
  privateRedisPrefix,
  scratchDir,
  seedGatepass,
  startGatepass,
} from '../lib/servers.js';
import { median, percentileOfSorted } from '../lib/stats.js';
import { CONNECTIONS, httpPlan, ROUTES } from './protected-route.js';

const USERS = 1000;
type Route = (typeof ROUTES)[number];

/** One measurement of one case: the load split over `instances.length` instances, run in parallel. */
interface CaseRun {
  /** Sum of the instances' req/s. */
  requestsPerSecond: number;
  /** Percentiles over every 2xx response of all instances of the run together. */
  p50Ms: number;
  p99Ms: number;
  instances: LoadResult[];
}

interface CaseSummary {
  /** Medians over the runs. */
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** req/s of each instance in the run whose total is the median (so that they add up to it with an odd number of runs). */
  perInstance: number[];
  runs: CaseRun[];
}

interface RouteResult {
  one: CaseSummary;
  two: CaseSummary;
  /** two ÷ one, of the median req/s. */
  ratio: number;
}

/**
 * `CONNECTIONS` connections split evenly over `servers` (one autocannon run per server, all at once);
 * req/s summed, latency percentiles over the merged responses.
 */
async function measureCase(servers: ChildServer[], route: Route, token: string, seconds: number): Promise<CaseRun> {
  const perServer = CONNECTIONS / servers.length;
  if (!Number.isInteger(perServer)) throw new Error(`${CONNECTIONS} connections do not split evenly over ${servers.length} instances`);
  const latencies: Float64Array[] = [];
  const options = (server: ChildServer): LoadOptions => ({
    url: `${server.baseUrl}${route.path}`,
    connections: perServer,
    durationSeconds: seconds,
    headers: { authorization: `Bearer ${token}` },
    onLatencies: (sorted) => latencies.push(sorted),
  });
  const instances = await Promise.all(servers.map((server) => runLoad(options(server))));
  instances.forEach((result, i) => {
    if (result.failures > 0)
      throw new Error(
        `${servers[i]?.name ?? '?'} ${route.path}: ${result.failures} failed requests (${JSON.stringify(result.statusCounts)})`,
      );
  });
  const merged = new Float64Array(latencies.reduce((n, l) => n + l.length, 0));
  let offset = 0;
  for (const l of latencies) {
    merged.set(l, offset);
    offset += l.length;
  }
  merged.sort();
  return {
    requestsPerSecond: instances.reduce((sum, r) => sum + r.requestsPerSecond, 0),
    p50Ms: percentileOfSorted(merged, 50),
    p99Ms: percentileOfSorted(merged, 99),
    instances,
  };
}

function summarizeCase(runs: CaseRun[]): CaseSummary {
  const requestsPerSecond = median(runs.map((r) => r.requestsPerSecond));
  const medianRun = runs.reduce<CaseRun | undefined>(
    (best, r) =>
      best === undefined || Math.abs(r.requestsPerSecond - requestsPerSecond) < Math.abs(best.requestsPerSecond - requestsPerSecond)
        ? r
        : best,
    undefined,
  );
  return {
    requestsPerSecond,
    p50Ms: median(runs.map((r) => r.p50Ms)),
    p99Ms: median(runs.map((r) => r.p99Ms)),
    perInstance: medianRun?.instances.map((r) => r.requestsPerSecond) ?? [],
    runs,
  };
}

function scaleRatios(results: Partial<Record<Route['id'], RouteResult>>, note?: string): Ratio[] {
  return ROUTES.map((route) =>
    ratio({
      section: 'scale-out',
      name: `${route.path}: two instances ÷ one (scale-out)`,
      definition: `req/s of two instances sharing PostgreSQL and Redis (${CONNECTIONS / 2} + ${CONNECTIONS / 2} connections) ÷ req/s of one (${CONNECTIONS}), same machine`,
      value: results[route.id]?.ratio ?? null,
      comparator: 'info',
      threshold: null,
      unit: '×',
      ...(note !== undefined && { note }),
    }),
  );
}

/**
 * 5. Scale-out: the protected routes on one gatepass instance, and on two instances sharing one
 * PostgreSQL schema and one Redis prefix with the load split evenly between them.
 */
export const scaleOut: Section = {
  id: 'scale-out',
  title: '5. Scale-out (one instance vs two sharing PostgreSQL and Redis)',
  async run(context: BenchContext) {
    const plan = httpPlan(context.quick);
    const cores = os.cpus().length;
    const versions: Record<string, string> = {};

    const skip = (reason: string) => {
      context.log(`  skipping: ${reason}`);
      return { markdown: [`**Skipped:** ${reason}`], data: { skipped: reason }, ratios: scaleRatios({}, `skipped: ${reason}`) };
    };
    let redis: Awaited<ReturnType<typeof privateRedisPrefix>>;
    try {
      redis = await privateRedisPrefix(context.redisUrl);
    } catch (error) {
      return skip(`Redis at ${new URL(context.redisUrl).host} unreachable: ${error instanceof Error ? error.message : String(error)}`);
    }
    versions.redis = redis.serverVersion;
    let schema: Awaited<ReturnType<typeof privatePostgresSchema>>;
    try {
      schema = await privatePostgresSchema(context.postgresUrl);
    } catch (error) {
      await redis.drop();
      return skip(
        `PostgreSQL at ${new URL(context.postgresUrl).host} unreachable: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    versions.postgresql = schema.serverVersion;

    const runs = new Map<string, CaseRun[]>();
    const key = (route: Route['id'], instances: number) => `${route}:${instances}`;
    const servers: ChildServer[] = [];
    try {
      // One deployment: the same secrets, database schema and Redis prefix for both instances, each
      // with its own working directory; a token issued by one is accepted by the other.
      const env = { ...gatepassEnv(schema.url), REDIS_URL: context.redisUrl, REDIS_PREFIX: redis.prefix };
      await seedGatepass(schema.url, scratchDir(context, 'scale-seed'), USERS);
      for (const name of ['gatepass instance A', 'gatepass instance B']) {
        context.log(`  starting ${name}`);
        // /health/ready answers 200 once the database answers and the Redis revocation bus is in sync.
        servers.push(await startGatepass(name, scratchDir(context, 'scale'), env, '/health/ready'));
      }
      const [first, second] = servers;
      if (first === undefined || second === undefined) throw new Error('unreachable: two instances started');
      const token = (await loginGatepass(first.baseUrl, 1)).access_token;
      for (const server of servers) for (const route of ROUTES) await assertAuthorized(server, route.path, token);

      const cases = [
        { instances: 1, servers: [first] },
        { instances: 2, servers: [first, second] },
      ];
      context.log(`  warm-up: ${plan.warmup} s per route and case`);
      for (const route of ROUTES) for (const c of cases) await measureCase(c.servers, route, token, plan.warmup);
      for (let round = 1; round <= plan.runs; round++) {
        context.log(`  round ${round} of ${plan.runs}`);
        for (const route of ROUTES) {
          for (const c of cases) {
            const result = await measureCase(c.servers, route, token, plan.seconds);
            const k = key(route.id, c.instances);
            runs.set(k, [...(runs.get(k) ?? []), result]);
          }
        }
      }
    } finally {
      for (const server of servers) await server.stop();
      try {
        await schema.drop();
      } finally {
        await redis.drop();
      }
    }

    const results: Partial<Record<Route['id'], RouteResult>> = {};
    for (const route of ROUTES) {
      const one = summarizeCase(runs.get(key(route.id, 1)) ?? []);
      const two = summarizeCase(runs.get(key(route.id, 2)) ?? []);
      results[route.id] = { one, two, ratio: two.requestsPerSecond / one.requestsPerSecond };
      context.log(
        `    ${route.path}: one ${fmt(one.requestsPerSecond)} req/s (p99 ${fmt(one.p99Ms, 2)} ms), ` +
          `two ${fmt(two.requestsPerSecond)} req/s (p99 ${fmt(two.p99Ms, 2)} ms), two ÷ one ${fmtRatio(two.requestsPerSecond / one.requestsPerSecond)}`,
      );
    }

    const markdown: string[] = [
      `The two routes of section 2, on gatepass with PostgreSQL (a private schema of GATEPASS_TEST_POSTGRES_URL, ${fmt(USERS)} seeded users, dropped afterwards) ` +
        `and Redis (GATEPASS_TEST_REDIS_URL, a private REDIS_PREFIX whose keys are deleted afterwards), all on 127.0.0.1. Two instances are started as one ` +
        'deployment (same secrets, schema and prefix; a token issued by one is accepted by the other), each ready once /health/ready answers 200. ' +
        `**One instance**: ${CONNECTIONS} autocannon connections to instance A. **Two instances**: ${CONNECTIONS / 2} connections to A and ` +
        `${CONNECTIONS / 2} to B at the same time (two autocannon runs in parallel, in the bench process); req/s summed, latency percentiles over the ` +
        `responses of both. Same plan as section 2: one ${plan.warmup} s warm-up of each case, then ${plan.runs} round(s) of ${plan.seconds} s runs ` +
        '(every route and case once per round); median of the runs (the split between instances is that of the run whose total is the median). ' +
        'Both instances run throughout, so in the one-instance case B idles, as the other servers do in section 2.',
      '',
      `**What the ratio means here.** This machine has ${cores} cores, and the two instances, PostgreSQL, Redis and the load generator compete for them. ` +
        'A second instance adds no CPU; it only splits the same CPU between more processes. So two ÷ one measures the overhead (or the gain, ' +
        'from a second event loop using a core the first left idle) of running two instances that share the database and Redis on the same cores, ' +
        'not the capacity a second machine would add.',
      '',
    ];
    for (const route of ROUTES) {
      const r = results[route.id];
      if (r === undefined) continue;
      markdown.push(`### ${route.label}`, '');
      markdown.push(
        ...table(
          ['case', 'connections', 'req/s', 'req/s per instance (median run)', 'p50 ms', 'p99 ms', 'req/s ÷ one instance'],
          [
            [
              'one instance',
              String(CONNECTIONS),
              fmt(r.one.requestsPerSecond),
              fmt(r.one.perInstance[0]),
              fmt(r.one.p50Ms, 2),
              fmt(r.one.p99Ms, 2),
              '1.00×',
            ],
            [
              'two instances',
              `${CONNECTIONS / 2} + ${CONNECTIONS / 2}`,
              fmt(r.two.requestsPerSecond),
              r.two.perInstance.map((v) => fmt(v)).join(' + '),
              fmt(r.two.p50Ms, 2),
              fmt(r.two.p99Ms, 2),
              fmtRatio(r.ratio),
            ],
          ],
        ),
        '',
      );
    }
    return { markdown, data: { plan, connections: CONNECTIONS, users: USERS, cores, results }, ratios: scaleRatios(results), versions };
  },
};
