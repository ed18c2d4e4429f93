import { LatencyProbe, runLoad, type LoadResult } from '../lib/load.js';
import type { ChildServer } from '../lib/processes.js';
import { fmt, ratio, table, type BenchContext, type Section } from '../lib/report.js';
import { gatepassOnSqlite, startExpress } from '../lib/servers.js';
import { median } from '../lib/stats.js';
import { BENCH_PASSWORD, benchEmail } from '../lib/users.js';

const CONCURRENT_LOGINS = 50;
const PROBE_INTERVAL_MS = 20;

interface StormRun {
  logins: LoadResult;
  probe: Awaited<ReturnType<LatencyProbe['stop']>>;
}

interface StormSummary {
  idleProbe: Awaited<ReturnType<LatencyProbe['stop']>>;
  runs: StormRun[];
  loginsPerSecond: number;
  loginP50Ms: number;
  loginP99Ms: number;
  pingP50Ms: number;
  pingP99Ms: number;
  pingMaxMs: number;
}

async function probeFor(url: string, seconds: number): Promise<Awaited<ReturnType<LatencyProbe['stop']>>> {
  const probe = new LatencyProbe(url, PROBE_INTERVAL_MS);
  probe.start();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  return probe.stop();
}

/** `CONCURRENT_LOGINS` connections logging in back to back (each as its own user) while a probe times GET /ping. */
async function storm(server: ChildServer, loginPath: string, plan: { runs: number; seconds: number }): Promise<StormSummary> {
  const idleProbe = await probeFor(`${server.baseUrl}/ping`, 2);
  const runs: StormRun[] = [];
  for (let run = 0; run < plan.runs; run++) {
    let nextUser = 1;
    const probe = new LatencyProbe(`${server.baseUrl}/ping`, PROBE_INTERVAL_MS);
    const loading = runLoad({
      url: `${server.baseUrl}${loginPath}`,
      connections: CONCURRENT_LOGINS,
      durationSeconds: plan.seconds,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: benchEmail(1), password: BENCH_PASSWORD }),
      setupClient: (client) => client.setBody(JSON.stringify({ email: benchEmail(nextUser++), password: BENCH_PASSWORD })),
    });
    probe.start();
    const logins = await loading;
    const probed = await probe.stop();
    // A refused login means the setup is wrong (rate limit, seed); timeouts and dropped connections
    // under the storm are findings, reported in the table.
    if (logins.non2xx > 0) throw new Error(`${server.name}: ${logins.non2xx} refused logins (${JSON.stringify(logins.statusCounts)})`);
    runs.push({ logins, probe: probed });
  }
  return {
    idleProbe,
    runs,
    loginsPerSecond: median(runs.map((r) => r.logins.requestsPerSecond)),
    loginP50Ms: median(runs.map((r) => r.logins.p50Ms)),
    loginP99Ms: median(runs.map((r) => r.logins.p99Ms)),
    pingP50Ms: median(runs.map((r) => r.probe.p50Ms)),
    pingP99Ms: median(runs.map((r) => r.probe.p99Ms)),
    pingMaxMs: Math.max(...runs.map((r) => r.probe.maxMs).filter((ms) => Number.isFinite(ms))),
  };
}

/**
 * 3. Login storm: 50 concurrent logins for 10 s; logins/s, and the p99 of GET /ping measured by a
 * separate low-rate probe during the storm — does hashing block the event loop?
 */
export const loginStorm: Section = {
  id: 'login-storm',
  title: '3. Login storm (50 concurrent logins; GET /ping latency meanwhile)',
  async run(context: BenchContext) {
    const plan = context.quick ? { runs: 1, seconds: 3 } : { runs: 3, seconds: 10 };
    const users = CONCURRENT_LOGINS * 2;

    context.log('  gatepass (argon2id on the libuv pool)');
    const gatepass = await gatepassOnSqlite(context, users);
    let gatepassStorm: StormSummary;
    try {
      gatepassStorm = await storm(gatepass.server, '/auth/login', plan);
    } finally {
      await gatepass.server.stop();
    }
    context.log(`    ${fmt(gatepassStorm.loginsPerSecond, 1)} logins/s, /ping p99 ${fmt(gatepassStorm.pingP99Ms, 2)} ms`);

    context.log('  Express (bcryptjs cost 10 on the event loop)');
    const express = await startExpress(context, users);
    let expressStorm: StormSummary;
    try {
      expressStorm = await storm(express.server, '/login', plan);
    } finally {
      await express.server.stop();
    }
    context.log(`    ${fmt(expressStorm.loginsPerSecond, 1)} logins/s, /ping p99 ${fmt(expressStorm.pingP99Ms, 2)} ms`);

    const row = (label: string, s: StormSummary) => [
      label,
      fmt(s.loginsPerSecond, 1),
      fmt(s.loginP50Ms, 1),
      fmt(s.loginP99Ms, 1),
      fmt(s.idleProbe.p99Ms, 2),
      fmt(s.pingP50Ms, 2),
      fmt(s.pingP99Ms, 2),
      fmt(s.pingMaxMs, 1),
      fmt(median(s.runs.map((r) => r.probe.samples))),
      fmt(s.runs.reduce((sum, r) => sum + r.logins.timeouts, 0)),
      fmt(s.runs.reduce((sum, r) => sum + r.logins.errors, 0)),
      fmt(s.runs.reduce((sum, r) => sum + r.probe.failures, 0)),
    ];
    const markdown = [
      `${CONCURRENT_LOGINS} autocannon connections POST their login back to back (each as its own seeded user, correct password) for ${plan.seconds} s, ` +
        `${plan.runs} run(s), median shown. Meanwhile a probe on its own keep-alive connection sends GET /ping every ${PROBE_INTERVAL_MS} ms ` +
        '(never overlapping itself) and times each answer; "idle" is the same probe for 2 s before the storm. ' +
        "gatepass hashes with argon2id (19 MiB, t=2) on libuv's thread pool; the Express baseline with bcryptjs (cost 10) in JavaScript. " +
        '"Timed out" counts logins without an answer after 10 s (autocannon\'s timeout) and "connection errors" connections the ' +
        'server dropped, both over all runs; "probes failed" counts /ping probes that got no 200 within 10 s.',
      '',
      ...table(
        [
          'server',
          'logins/s',
          'login p50 ms',
          'login p99 ms',
          '/ping p99 idle ms',
          '/ping p50 storm ms',
          '/ping p99 storm ms',
          '/ping max ms',
          'probes/run',
          'logins timed out',
          'connection errors',
          'probes failed',
        ],
        [row('gatepass', gatepassStorm), row('Express + bcryptjs', expressStorm)],
      ),
    ];
    return {
      markdown,
      data: {
        plan,
        concurrentLogins: CONCURRENT_LOGINS,
        probeIntervalMs: PROBE_INTERVAL_MS,
        gatepass: gatepassStorm,
        express: expressStorm,
      },
      ratios: [
        ratio({
          section: 'login-storm',
          name: 'GET /ping p99 during a login storm',
          definition: `p99 of /ping (every ${PROBE_INTERVAL_MS} ms) during ${CONCURRENT_LOGINS} concurrent logins, median of runs`,
          value: gatepassStorm.pingP99Ms,
          comparator: '<',
          threshold: 20,
          unit: 'ms',
        }),
      ],
    };
  },
};
