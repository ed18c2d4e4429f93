import http from 'node:http';
import { fmt, ratio, table, type BenchContext, type Section } from '../lib/report.js';
import { gatepassEnv, scratchDir, seedGatepass, startGatepass } from '../lib/servers.js';
import { median, percentileOfSorted } from '../lib/stats.js';
import { BENCH_PASSWORD, benchEmail } from '../lib/users.js';

const USERS = 200;
/** Not the seeded password, and the same for both kinds of failed login, so that only the email differs. */
const WRONG_PASSWORD = 'Incorrect-Horse-Battery-Staple-42';
/** |unknown ÷ wrong − 1| must not exceed this. */
const TOLERANCE = 0.1;

type Kind = 'unknown' | 'wrong' | 'correct';

interface Timings {
  samples: number;
  medianMs: number;
  p10Ms: number;
  p90Ms: number;
  minMs: number;
  maxMs: number;
  /** Every sample in the order taken. */
  ms: number[];
}

function describe(ms: number[]): Timings {
  const sorted = [...ms].sort((a, b) => a - b);
  return {
    samples: ms.length,
    medianMs: median(ms),
    p10Ms: percentileOfSorted(sorted, 10),
    p90Ms: percentileOfSorted(sorted, 90),
    minMs: sorted[0] ?? Number.NaN,
    maxMs: sorted[sorted.length - 1] ?? Number.NaN,
    ms,
  };
}

/** One login over the kept-alive connection of `agent`, timed with performance.now() from send to the last byte of the answer. */
function timedLogin(agent: http.Agent, baseUrl: string, email: string, password: string): Promise<{ status: number; ms: number }> {
  const url = new URL('/auth/login', baseUrl);
  if (url.hostname !== '127.0.0.1') throw new Error('bench requests target 127.0.0.1 only');
  const body = JSON.stringify({ email, password });
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const request = http.request(
      url,
      {
        method: 'POST',
        agent,
        timeout: 30_000,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (response) => {
        response.resume();
        response.on('end', () => resolve({ status: response.statusCode ?? 0, ms: performance.now() - started }));
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error('login timed out after 30 s')));
    request.on('error', reject);
    request.end(body);
  });
}

/**
 * 7. Login timing: does a login with an unknown email take as long as one with a known email and a
 * wrong password (the dummy argon2id verification of AccountService.authenticate)?
 */
export const loginTiming: Section = {
  id: 'login-timing',
  title: '7. Login timing: unknown email vs wrong password',
  async run(context: BenchContext) {
    // 200 of each, not 50: single logins here take about 9.5 or about 12 ms (two clusters), and with
    // 50 of each the ratio of medians of unchanged code ranged from 0.87 to 1.18 over five runs.
    const plan = context.quick ? { warmup: 3, samples: 20, context: 10 } : { warmup: 10, samples: 200, context: 50 };
    const cwd = scratchDir(context, 'login-timing');
    // Lockout off, so that neither kind of failure ever meets a locked account (which answers 429 without
    // hashing); the per-IP limit at its maximum (gatepassEnv), so that it never trips.
    const databaseUrl = 'sqlite:./data/gatepass.db';
    const env: Record<string, string> = { ...gatepassEnv(databaseUrl), ACCOUNT_LOCKOUT_THRESHOLD: '0' };
    await seedGatepass(databaseUrl, cwd, USERS);
    const server = await startGatepass('gatepass (login timing)', cwd, env);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const taken: Record<Kind, number[]> = { unknown: [], wrong: [], correct: [] };
    let nextUnknown = 1;
    let nextUser = 1;
    const login = async (kind: Kind, record: boolean): Promise<void> => {
      // A different account every time: unknown emails never seeded, seeded users in turn.
      const email =
        kind === 'unknown'
          ? `bench-unknown-${String(nextUnknown++).padStart(6, '0')}@example.com`
          : benchEmail(((nextUser++ - 1) % USERS) + 1);
      const { status, ms } = await timedLogin(agent, server.baseUrl, email, kind === 'correct' ? BENCH_PASSWORD : WRONG_PASSWORD);
      const expected = kind === 'correct' ? 200 : 401;
      if (status !== expected) throw new Error(`${kind} login answered ${status}, expected ${expected}`);
      if (record) taken[kind].push(ms);
    };
    try {
      context.log(`  ${plan.warmup} + ${plan.samples} logins of each kind, one at a time, interleaved`);
      for (let i = 0; i < plan.warmup; i++) {
        await login('unknown', false);
        await login('wrong', false);
      }
      for (let i = 0; i < plan.samples; i++) {
        await login('unknown', true);
        await login('wrong', true);
      }
      context.log(`  ${plan.context} correct-password logins, for context`);
      for (let i = 0; i < Math.min(plan.warmup, 3); i++) await login('correct', false);
      for (let i = 0; i < plan.context; i++) await login('correct', true);
    } finally {
      agent.destroy();
      await server.stop();
    }

    const unknown = describe(taken.unknown);
    const wrong = describe(taken.wrong);
    const correct = describe(taken.correct);
    const value = unknown.medianMs / wrong.medianMs;
    const met = Math.abs(value - 1) <= TOLERANCE;
    context.log(
      `    median unknown ${fmt(unknown.medianMs, 2)} ms, wrong ${fmt(wrong.medianMs, 2)} ms, ratio ${fmt(value, 3)} (${met ? 'met' : 'not met'}); correct ${fmt(correct.medianMs, 2)} ms`,
    );
    const row = (label: string, t: Timings) => [
      label,
      fmt(t.samples),
      fmt(t.medianMs, 2),
      fmt(t.p10Ms, 2),
      fmt(t.p90Ms, 2),
      fmt(t.minMs, 2),
      fmt(t.maxMs, 2),
    ];
    const markdown = [
      `One gatepass server (SQLite, ${USERS} seeded users, argon2id 19 MiB t=2), ACCOUNT_LOCKOUT_THRESHOLD=0 (lockout off) and ` +
        'LOGIN_RATE_LIMIT_PER_MINUTE=1000000, so that neither ever answers in place of the password check. One request at a time over one ' +
        'kept-alive connection, timed in the bench process with performance.now() from sending POST /auth/login to the last byte of the answer. ' +
        `After ${plan.warmup} warm-up logins of each kind, ${plan.samples} of each, interleaved (unknown, wrong, unknown, wrong, …): ` +
        '**unknown** is an email never registered (a new one each time), **wrong** a seeded account (a different one each time) with a wrong ' +
        'password; both send the same wrong password, and both must answer 401. Then, for context, ' +
        `${plan.context} logins with the correct password (after ${Math.min(plan.warmup, 3)} warm-up), which also start a session. ` +
        'Single logins fall in two clusters (about 9.5 and 12 ms on the machine this was written on), so the median needs more than 50 ' +
        'samples to settle: with 50 of each, the ratio of unchanged code ranged from 0.87 to 1.18 over five runs.',
      '',
      ...table(
        ['login', 'samples', 'median ms', 'p10 ms', 'p90 ms', 'min ms', 'max ms'],
        [row('unknown email', unknown), row('known email, wrong password', wrong), row('correct password (context)', correct)],
      ),
      '',
      `**Ratio of medians** unknown ÷ wrong: ${fmt(value, 3)} (difference ${fmt(unknown.medianMs - wrong.medianMs, 2)} ms). ` +
        `Target: within ${fmt(TOLERANCE * 100, 0)}% (|ratio − 1| ≤ ${TOLERANCE}): **${met ? 'met' : 'not met'}**.`,
    ];
    return {
      markdown,
      data: { plan, users: USERS, tolerance: TOLERANCE, unknown, wrong, correct, ratioOfMedians: value },
      ratios: [
        ratio({
          section: 'login-timing',
          name: 'login: unknown email as slow as a wrong password',
          definition: `median of ${plan.samples} logins with an unknown email ÷ median of ${plan.samples} with a known email and wrong password, interleaved, one at a time`,
          value,
          comparator: 'within',
          threshold: TOLERANCE,
          unit: '×',
        }),
      ],
    };
  },
};
