import { LatencyProbe, runLoad, type LoadResult } from '../lib/load.js';
import type { ChildServer } from '../lib/processes.js';
import { fmt, fmtRatio, ratio, table, type BenchContext, type Section } from '../lib/report.js';
import { gatepassOnSqlite } from '../lib/servers.js';
import { median } from '../lib/stats.js';

const HOSTILE_CONNECTIONS = 2;
const PROBE_INTERVAL_MS = 10;
/** The route the bodies go to: it takes a body without any login, as an attacker would find it. */
const TARGET = '/auth/refresh';

type ProbeResult = Awaited<ReturnType<LatencyProbe['stop']>>;

interface HostileBody {
  id: string;
  label: string;
  body: string;
}

/**
 * Two 16 KB bodies, under the auth routes' 16 KiB limit so that they reach the parser: the one of
 * issue 12 (8,000 nested arrays: a 500 and about a second of blocked event loop each before the
 * bounds), and the costliest one within the bounds (32 levels deep, 8 arrays of 999 numbers: parsed,
 * then walked by the NUL check, before the schema refuses it).
 */
function hostileBodies(): HostileBody[] {
  const numbers = `[${Array.from({ length: 999 }, () => '0').join(',')}]`;
  const withinBounds = `{"x":${'['.repeat(30)}${Array.from({ length: 8 }, () => numbers).join(',')}${']'.repeat(30)}}`;
  return [
    { id: 'deep', label: '8,000 nested arrays', body: '['.repeat(8000) + ']'.repeat(8000) },
    { id: 'within', label: 'within the bounds: 8 × 999 numbers, 32 deep', body: withinBounds },
  ];
}

interface HostileRun {
  idle: ProbeResult;
  loaded: Record<string, { load: LoadResult; probe: ProbeResult }>;
}

async function probeFor(url: string, seconds: number): Promise<ProbeResult> {
  const probe = new LatencyProbe(url, PROBE_INTERVAL_MS);
  probe.start();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  return probe.stop();
}

/** `HOSTILE_CONNECTIONS` connections sending `body` back to back while the probe times GET /ping. */
async function underLoad(server: ChildServer, body: HostileBody, seconds: number): Promise<{ load: LoadResult; probe: ProbeResult }> {
  const probe = new LatencyProbe(`${server.baseUrl}/ping`, PROBE_INTERVAL_MS);
  const loading = runLoad({
    url: `${server.baseUrl}${TARGET}`,
    connections: HOSTILE_CONNECTIONS,
    durationSeconds: seconds,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body.body,
  });
  probe.start();
  const load = await loading;
  const probed = await probe.stop();
  // Every hostile body must be refused as malformed input (422): a 500 or a 413 means the bench
  // measured something else than the parser (a regression, or a body over the size limit).
  const statuses = Object.keys(load.statusCounts);
  if (statuses.length !== 1 || statuses[0] !== '422')
    throw new Error(`${body.label}: expected only 422 answers, got ${JSON.stringify(load.statusCounts)}`);
  return { load, probe: probed };
}

/**
 * 8. Hostile bodies: GET /ping latency while two connections send 16 KB worst-case JSON bodies —
 * does bounded parsing keep hostile input linear, so that it cannot block the event loop?
 */
export const hostileBodiesSection: Section = {
  id: 'hostile-bodies',
  title: '8. Hostile bodies (GET /ping latency while two connections send 16 KB worst-case JSON)',
  async run(context: BenchContext) {
    const plan = context.quick ? { runs: 1, seconds: 1 } : { runs: 3, seconds: 3 };
    const bodies = hostileBodies();
    for (const body of bodies)
      if (body.body.length > 16 * 1024) throw new Error(`${body.label} is ${body.body.length} bytes, over the 16 KiB limit`);

    const gatepass = await gatepassOnSqlite(context, 1);
    const runs: HostileRun[] = [];
    try {
      // Idle and each body in turn, round after round, so that a slow spell of the machine hits all alike.
      for (let run = 0; run < plan.runs; run++) {
        const idle = await probeFor(`${gatepass.server.baseUrl}/ping`, plan.seconds);
        const loaded: HostileRun['loaded'] = {};
        for (const body of bodies) loaded[body.id] = await underLoad(gatepass.server, body, plan.seconds);
        runs.push({ idle, loaded });
      }
    } finally {
      await gatepass.server.stop();
    }

    const idleP50 = median(runs.map((r) => r.idle.p50Ms));
    const idleP99 = median(runs.map((r) => r.idle.p99Ms));
    const summaries = bodies.map((body) => {
      const of = runs.map((r) => r.loaded[body.id]!);
      const pingP99 = median(of.map((o) => o.probe.p99Ms));
      return {
        body,
        bytes: Buffer.byteLength(body.body),
        hostilePerSecond: median(of.map((o) => (o.load.statusCounts['422'] ?? 0) / o.load.elapsedSeconds)),
        pingP50: median(of.map((o) => o.probe.p50Ms)),
        pingP99,
        pingMax: Math.max(...of.map((o) => o.probe.maxMs).filter((ms) => Number.isFinite(ms))),
        samples: median(of.map((o) => o.probe.samples)),
        probeFailures: of.reduce((sum, o) => sum + o.probe.failures, 0),
        ratio: pingP99 / idleP99,
      };
    });
    for (const s of summaries)
      context.log(
        `    ${s.body.label}: ${fmt(s.hostilePerSecond, 0)} bodies/s refused, /ping p99 ${fmt(s.pingP99, 2)} ms (idle ${fmt(idleP99, 2)} ms)`,
      );

    const markdown = [
      `gatepass (SQLite, production settings) receives, from ${HOSTILE_CONNECTIONS} autocannon connections, the same 16 KB JSON body ` +
        `POSTed to \`${TARGET}\` back to back (no login needed; every answer must be 422) for ${plan.seconds} s, while a probe on its own ` +
        `keep-alive connection sends GET /ping every ${PROBE_INTERVAL_MS} ms (never overlapping itself) and times each answer. ` +
        `"Idle" is the same probe with no other load. Idle and each body in turn, ${plan.runs} round(s); medians over rounds. ` +
        'The bodies: the nesting of issue 12, which the raw-text scan refuses at its 33rd level, and the costliest one within the bounds ' +
        '(parsed, walked by the NUL check, then refused by the schema). A parse error makes Fastify close the connection, so the first ' +
        'body also costs a new connection per request.',
      '',
      ...table(
        [
          'load',
          'body bytes',
          'bodies/s refused (422)',
          '/ping p50 ms',
          '/ping p99 ms',
          '/ping max ms',
          'probes/run',
          'probes failed',
          'p99 ÷ idle p99',
        ],
        [
          [
            'idle',
            '—',
            '—',
            fmt(idleP50, 2),
            fmt(idleP99, 2),
            fmt(Math.max(...runs.map((r) => r.idle.maxMs)), 2),
            fmt(median(runs.map((r) => r.idle.samples))),
            fmt(runs.reduce((sum, r) => sum + r.idle.failures, 0)),
            '—',
          ],
          ...summaries.map((s) => [
            s.body.label,
            fmt(s.bytes),
            fmt(s.hostilePerSecond, 0),
            fmt(s.pingP50, 2),
            fmt(s.pingP99, 2),
            fmt(s.pingMax, 2),
            fmt(s.samples),
            fmt(s.probeFailures),
            fmtRatio(s.ratio),
          ]),
        ],
      ),
    ];
    return {
      markdown,
      data: {
        plan,
        connections: HOSTILE_CONNECTIONS,
        probeIntervalMs: PROBE_INTERVAL_MS,
        target: TARGET,
        runs,
        summaries: summaries.map(({ body, ...rest }) => ({ body: body.id, ...rest })),
      },
      ratios: summaries.map((s) =>
        ratio({
          section: 'hostile-bodies',
          name: `GET /ping p99 while 2 connections send ${s.body.id === 'deep' ? '8,000-deep' : 'within-bounds'} 16 KB bodies ÷ idle`,
          definition: `p99 of /ping (every ${PROBE_INTERVAL_MS} ms) during ${HOSTILE_CONNECTIONS} connections POSTing "${s.body.label}" to ${TARGET} ÷ p99 idle, medians of rounds`,
          value: s.ratio,
          comparator: '<=',
          threshold: 2,
          unit: '×',
        }),
      ),
    };
  },
};
