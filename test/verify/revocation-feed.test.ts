import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { ADMIN_ENV, ADMIN_EMAIL, ADMIN_PASSWORD } from '../helpers/admin.js';
import { REDIS_URL, createTestDatabase, describeNeeding } from '../helpers/app.js';
import { freePort, REPO_ROOT, startInstance, waitFor, type Instance } from '../helpers/instances.js';
import {
  CLI_BIN,
  EXAMPLE_SERVICE_ARGS,
  VERIFY_BUILD,
  basicAuthorization,
  call,
  openEventStream,
  parseServiceCredential,
  percentile,
  runCli,
  within,
  type Answer,
  type ServiceCredential,
} from '../helpers/remote.js';

/**
 * Issue 14's revocation feed end to end, as real processes on loopback: gatepass (ES256) publishes
 * `/auth/revocations`, examples/projects-service follows it with `gatepass/verify`, and a logged-out,
 * demoted or deactivated user's token is refused by the service within a second; the service fails
 * closed (503) while gatepass is away and catches up when it returns; only live service credentials
 * read the feed.
 */

/** The issue's bound: the example service refuses a revoked token within this long of the revocation. */
const BOUND_MS = 1000;
const REVOKED = { detail: 'Token has been revoked', code: 'token_revoked' };
const UNAVAILABLE = { detail: 'Revocation state unavailable; try again shortly', code: 'service_unavailable' };
const INVALID_CLIENT = 'invalid_client';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The settings of one gatepass deployment: ES256 keys in `dir`, the admin of ADMIN_ENV, no login throttling. */
function gatepassEnv(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'test',
    JWT_ALGORITHM: 'ES256',
    JWT_KEYS_DIR: path.join(dir, 'keys'),
    JWT_REFRESH_SECRET: randomBytes(32).toString('hex'),
    GATEPASS_DATA_DIR: path.join(dir, 'data'),
    LOGIN_RATE_LIMIT_PER_MINUTE: '0',
    ACCOUNT_LOCKOUT_THRESHOLD: '0',
    ...ADMIN_ENV,
    ...extra,
  };
}

function startService(gatepassUrl: string, credential: ServiceCredential, extra: Record<string, string> = {}): Promise<Instance> {
  return startInstance(
    {
      GATEPASS_URL: gatepassUrl,
      GATEPASS_CLIENT_ID: credential.clientId,
      GATEPASS_CLIENT_SECRET: credential.clientSecret,
      LOG_LEVEL: 'warn',
      ...extra,
    },
    EXAMPLE_SERVICE_ARGS,
    '/health',
  );
}

function assertBuilt(): void {
  assert.ok(
    existsSync(VERIFY_BUILD) && existsSync(CLI_BIN),
    `${path.relative(REPO_ROOT, VERIFY_BUILD)} or ${path.relative(REPO_ROOT, CLI_BIN)} is missing: run \`npm run build\` first (npm test does it); the example imports gatepass/verify from dist/`,
  );
}

async function createCredentialWithCli(cwd: string, env: Record<string, string>, name: string): Promise<ServiceCredential> {
  const run = await runCli(['service', 'create', name], cwd, env);
  assert.equal(run.code, 0, run.stderr);
  return parseServiceCredential(run.stdout);
}

interface User {
  id: number;
  email: string;
  password: string;
}

let usersSoFar = 0;

/** gatepass as a client sees it: one instance to log in on and administer through. */
function gatepassClient(instance: () => Instance) {
  const url = (route: string) => `${instance().url}${route}`;
  return {
    async register(): Promise<User> {
      usersSoFar += 1;
      const user = { email: `feed.${process.pid}.${usersSoFar}@example.com`, password: 'Analytical-Engine-1843' };
      const answer = await call(url('/auth/register'), { method: 'POST', body: user });
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      return { ...user, id: (answer.body as { id: number }).id };
    },
    async login(user: { email: string; password: string }): Promise<string> {
      const answer = await call(url('/auth/login'), { method: 'POST', body: { email: user.email, password: user.password } });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      return (answer.body as { access_token: string }).access_token;
    },
    loginAdmin(): Promise<string> {
      return this.login({ email: ADMIN_EMAIL, password: ADMIN_PASSWORD });
    },
    async logout(token: string): Promise<void> {
      const answer = await call(url('/auth/logout'), { method: 'POST', token });
      assert.equal(answer.status, 204, JSON.stringify(answer.body));
    },
    async patchUser(adminToken: string, id: number, change: { role?: string; is_active?: boolean }): Promise<void> {
      const answer = await call(url(`/admin/users/${id}`), { method: 'PATCH', token: adminToken, body: change });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
    },
    async createCredential(adminToken: string, name: string): Promise<ServiceCredential> {
      const answer = await call(url('/admin/services'), { method: 'POST', token: adminToken, body: { name } });
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      const { client_id: clientId, client_secret: clientSecret } = answer.body as { client_id: string; client_secret: string };
      return { clientId, clientSecret };
    },
    async revokeCredential(adminToken: string, name: string): Promise<void> {
      const answer = await call(url(`/admin/services/${name}`), { method: 'DELETE', token: adminToken });
      assert.equal(answer.status, 204, JSON.stringify(answer.body));
    },
    feed(credential: ServiceCredential | undefined, query = ''): Promise<Answer> {
      return call(
        url(`/auth/revocations${query}`),
        credential === undefined ? {} : { headers: { authorization: basicAuthorization(credential) } },
      );
    },
  };
}

/**
 * Polls `request` (every few ms, for at most 5 s) until it answers 401 token_revoked and returns
 * the ms from `since` to that answer. Until then every answer must be `stillOk` (the token is
 * accepted): a 503 or any other refusal fails at once.
 */
async function refusalDelay(request: () => Promise<Answer>, since: number, stillOk: number): Promise<number> {
  for (;;) {
    const answer = await request();
    const elapsed = performance.now() - since;
    if (answer.status === 401) {
      assert.deepEqual(answer.body, REVOKED);
      return elapsed;
    }
    assert.equal(answer.status, stillOk, `before the refusal: ${JSON.stringify(answer.body)}`);
    if (elapsed > 5000) assert.fail(`the service still accepts the revoked token ${Math.round(elapsed)} ms after the revocation`);
    await sleep(2);
  }
}

function report(t: TestContext, what: string, delays: number[]): void {
  t.diagnostic(
    `${what}: ${delays.length} trials, p50 ${percentile(delays, 50).toFixed(1)} ms, p99 ${percentile(delays, 99).toFixed(1)} ms, max ${Math.max(...delays).toFixed(1)} ms`,
  );
  const late = delays.filter((delay) => delay > BOUND_MS);
  assert.deepEqual(late, [], `${what}: trials over ${BOUND_MS} ms: ${late.map((delay) => delay.toFixed(0)).join(', ')}`);
}

/**
 * The revocation trials, on gatepass instance(s) already running and the example service following
 * the feed of `followed()`: users act on `acting()` (the same instance, or another one).
 */
function defineRevocationTrials(options: {
  acting: () => Instance;
  service: () => Instance;
  logoutTrials: number;
  roleTrials: number;
  label: string;
}): void {
  const gatepass = gatepassClient(options.acting);
  const service = (route: string, token: string) => call(`${options.service().url}${route}`, { token });
  let adminToken: string;

  before(async () => {
    adminToken = await gatepass.loginAdmin();
  });

  it(`a logout is refused by the service within ${BOUND_MS} ms (${options.logoutTrials} trials)`, { timeout: 120_000 }, async (t) => {
    const user = await gatepass.register();
    const delays: number[] = [];
    for (let trial = 0; trial < options.logoutTrials; trial += 1) {
      const token = await gatepass.login(user);
      const accepted = await service('/api/projects', token);
      assert.equal(accepted.status, 200, `trial ${trial}: before the logout: ${JSON.stringify(accepted.body)}`);
      assert.equal((accepted.body as { user_id: number }).user_id, user.id);
      await gatepass.logout(token);
      delays.push(await refusalDelay(() => service('/api/projects', token), performance.now(), 200));
    }
    report(t, `${options.label}: logout → refused by the service`, delays);
  });

  it(`a demoted teacher's old token is refused outright (token_revoked) within ${BOUND_MS} ms`, { timeout: 60_000 }, async (t) => {
    const delays: number[] = [];
    for (let trial = 0; trial < options.roleTrials; trial += 1) {
      const teacher = await gatepass.register();
      await gatepass.patchUser(adminToken, teacher.id, { role: 'teacher' });
      const token = await gatepass.login(teacher);
      const all = await service('/api/projects/all', token);
      assert.equal(all.status, 200, `a teacher sees every project: ${JSON.stringify(all.body)}`);
      await gatepass.patchUser(adminToken, teacher.id, { role: 'student' });
      delays.push(await refusalDelay(() => service('/api/projects/all', token), performance.now(), 200));
      // Refused as revoked, not as a student would be (403): on the service's every route.
      assert.deepEqual((await service('/api/projects', token)).body, REVOKED);
      const fresh = await gatepass.login(teacher);
      assert.equal((await service('/api/projects', fresh)).status, 200, 'a token minted after the demotion is accepted');
      assert.equal((await service('/api/projects/all', fresh)).status, 403, 'and carries the new role');
    }
    report(t, `${options.label}: demotion → refused by the service`, delays);
  });

  it(`a deactivated user's token is refused within ${BOUND_MS} ms`, { timeout: 60_000 }, async (t) => {
    const delays: number[] = [];
    for (let trial = 0; trial < options.roleTrials; trial += 1) {
      const user = await gatepass.register();
      const token = await gatepass.login(user);
      assert.equal((await service('/api/projects', token)).status, 200);
      await gatepass.patchUser(adminToken, user.id, { is_active: false });
      delays.push(await refusalDelay(() => service('/api/projects', token), performance.now(), 200));
    }
    report(t, `${options.label}: deactivation → refused by the service`, delays);
  });
}

describe('the revocation feed: gatepass on SQLite and the example service', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gatepass-feed-'));
  const env = gatepassEnv(dir, { DATABASE_URL: `sqlite:${path.join(dir, 'gatepass.db')}` });
  let gatepass: Instance | undefined;
  let service: Instance | undefined;
  const running = (instance: Instance | undefined) => {
    assert.ok(instance !== undefined, 'not started');
    return instance;
  };
  const client = gatepassClient(() => running(gatepass));

  before(async () => {
    assertBuilt();
    gatepass = await startInstance(env);
    const credential = await createCredentialWithCli(dir, env, 'projects');
    service = await startService(gatepass.url, credential);
  });

  after(async () => {
    await Promise.all([service?.stop(), gatepass?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  defineRevocationTrials({
    acting: () => running(gatepass),
    service: () => running(service),
    logoutTrials: 20,
    roleTrials: 3,
    label: 'SQLite',
  });

  it(
    'the feed refuses requests without a valid service credential, as JSON and as a stream: 401 invalid_client with a Basic challenge',
    { timeout: 30_000 },
    async () => {
      const credential = await createCredentialWithCli(dir, env, 'reader');
      const admin = await client.loginAdmin();
      const url = `${running(gatepass).url}/auth/revocations`;
      const wrong: Record<string, Record<string, string>> = {
        'no Authorization': {},
        'a wrong secret': {
          authorization: basicAuthorization({ ...credential, clientSecret: `${credential.clientSecret.slice(0, -1)}x` }),
        },
        'an unknown client id': { authorization: basicAuthorization({ ...credential, clientId: `${credential.clientId}x` }) },
        'the id alone': { authorization: `Basic ${Buffer.from(`${credential.clientId}:`).toString('base64')}` },
        'malformed Basic': { authorization: 'Basic !!!' },
        "the admin's access token": { authorization: `Bearer ${admin}` },
      };
      for (const [what, headers] of Object.entries(wrong)) {
        const page = await call(url, { headers });
        assert.equal(page.status, 401, `JSON, ${what}: ${JSON.stringify(page.body)}`);
        assert.equal((page.body as { code: string }).code, INVALID_CLIENT, `JSON, ${what}`);
        assert.match(page.challenge ?? '', /^Basic\b/, `JSON, ${what}`);

        const stream = await openEventStream(url, headers);
        assert.equal(stream.status, 401, `stream, ${what}`);
        assert.doesNotMatch(stream.contentType ?? '', /event-stream/, `stream, ${what}`);
        await within('the refused stream to end', stream.ended, 5000);
        assert.deepEqual(stream.events, [], `stream, ${what}: no event`);
      }
      // The same requests with the credential are answered, and carry a logout made just before.
      const user = await client.register();
      const token = await client.login(user);
      await client.logout(token);
      const { sid } = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { sid: string };
      const isTheLogout = (entry: unknown) => (entry as { kind?: string }).kind === 'session' && (entry as { sid?: string }).sid === sid;

      const page = await client.feed(credential);
      assert.equal(page.status, 200, JSON.stringify(page.body));
      assert.deepEqual(Object.keys(page.body as object).sort(), ['cursor', 'more', 'revocations']);
      // Paged by cursor, two new entries at a time, until `more` is false: the logout is in one of the pages.
      const paged: unknown[] = [];
      let cursor: string | undefined;
      for (let pages = 0; ; pages += 1) {
        assert.ok(pages < 500, 'the pages end');
        const next = await client.feed(credential, `?limit=2${cursor === undefined ? '' : `&after=${cursor}`}`);
        assert.equal(next.status, 200, JSON.stringify(next.body));
        const body = next.body as { revocations: unknown[]; cursor: string; more: boolean };
        // A page may repeat entries up to the cursor (the reread window); the cursor itself moves on.
        if (body.more) assert.ok(Number(body.cursor) > Number(cursor ?? 0), `the cursor moves on: ${cursor} → ${body.cursor}`);
        paged.push(...body.revocations);
        cursor = body.cursor;
        if (!body.more) break;
      }
      assert.ok(paged.some(isTheLogout), `the logout's session in the pages: ${JSON.stringify(paged)}`);

      const stream = await openEventStream(url, { authorization: basicAuthorization(credential) });
      try {
        assert.equal(stream.status, 200);
        assert.match(stream.contentType ?? '', /^text\/event-stream/);
        await waitFor('a heartbeat', async () => stream.events.some((event) => event.event === 'heartbeat'), 5000);
        const caughtUp = stream.events.slice(
          0,
          stream.events.findIndex((event) => event.event === 'heartbeat'),
        );
        assert.ok(
          caughtUp.some((event) => event.event === 'revocation' && event.id !== undefined && isTheLogout(JSON.parse(event.data))),
          'the catch-up before the first heartbeat carries the logout',
        );
      } finally {
        stream.close();
      }
    },
  );

  for (const how of ['gatepass service revoke (CLI)', 'DELETE /admin/services/{name}'] as const) {
    it(
      `a credential revoked with ${how} is refused at once, and its open stream ends without another revocation`,
      { timeout: 30_000 },
      async () => {
        const name = how.startsWith('DELETE') ? 'revoked-by-api' : 'revoked-by-cli';
        const credential = await createCredentialWithCli(dir, env, name);
        const admin = await client.loginAdmin();
        const url = `${running(gatepass).url}/auth/revocations`;
        const stream = await openEventStream(url, { authorization: basicAuthorization(credential) });
        try {
          assert.equal(stream.status, 200);
          await waitFor('the caught-up heartbeat', async () => stream.events.some((event) => event.event === 'heartbeat'), 5000);
          assert.equal((await client.feed(credential)).status, 200, 'the credential reads the feed before the revoke');
          const victim = await client.register();
          const victimToken = await client.login(victim);

          if (how.startsWith('DELETE')) await client.revokeCredential(admin, name);
          else {
            const run = await runCli(['service', 'revoke', name], dir, env);
            assert.equal(run.code, 0, run.stderr);
          }
          const revokedAt = performance.now();
          const seenBefore = stream.events.length;
          // A revocation right after the revoke: the revoked credential's stream must not carry it.
          await client.logout(victimToken);

          const next = await client.feed(credential);
          assert.equal(next.status, 401, `the next request after the revoke: ${JSON.stringify(next.body)}`);
          assert.equal((next.body as { code: string }).code, INVALID_CLIENT);
          assert.match(next.challenge ?? '', /^Basic\b/);
          const refusedStream = await openEventStream(url, { authorization: basicAuthorization(credential) });
          assert.equal(refusedStream.status, 401, 'a new stream after the revoke');
          await within('the refused stream to end', refusedStream.ended, 5000);

          const endedAt = await within('the open stream to be ended by gatepass', stream.ended, 5000);
          assert.ok(stream.endedByServer(), 'the server ended the open stream');
          const later = stream.events.slice(seenBefore);
          assert.deepEqual(
            later.filter((event) => event.event === 'revocation'),
            [],
            'no revocation event after the revoke',
          );
          assert.ok(endedAt - revokedAt < 4000, `the stream ended ${Math.round(endedAt - revokedAt)} ms after the revoke`);

          // The logout did reach followers with a live credential: the example service refuses the token.
          await refusalDelay(() => call(`${running(service).url}/api/projects`, { token: victimToken }), performance.now(), 200);
        } finally {
          stream.close();
        }
      },
    );
  }
});

describe('the example service through a gatepass outage (SQLite, REVOCATION_MAX_SILENCE_SECONDS=2)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gatepass-feed-outage-'));
  const env = gatepassEnv(dir, { DATABASE_URL: `sqlite:${path.join(dir, 'gatepass.db')}` });
  let port: number;
  let gatepass: Instance | undefined;
  let service: Instance | undefined;
  const client = gatepassClient(() => {
    assert.ok(gatepass !== undefined, 'not started');
    return gatepass;
  });

  before(async () => {
    assertBuilt();
    port = await freePort();
    gatepass = await startInstance(env, undefined, undefined, { port });
    const credential = await createCredentialWithCli(dir, env, 'projects');
    service = await startService(gatepass.url, credential, { REVOCATION_MAX_SILENCE_SECONDS: '2' });
  });

  after(async () => {
    await Promise.all([service?.stop(), gatepass?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'answers 503 once the feed is silent past the bound, and after gatepass returns on its port, recovers and enforces a revocation made during the outage',
    { timeout: 90_000 },
    async (t) => {
      const projects = (token: string) => call(`${service?.url ?? ''}/api/projects`, { token });
      const revokedLater = await client.register();
      const bystander = await client.register();
      const revokedToken = await client.login(revokedLater);
      const bystanderToken = await client.login(bystander);
      assert.equal((await projects(revokedToken)).status, 200);
      assert.equal((await projects(bystanderToken)).status, 200);

      await gatepass?.stop();
      const stoppedAt = performance.now();
      let unavailable: Answer | undefined;
      const silentAfter = await waitFor(
        'the service to answer 503',
        async () => {
          const answer = await projects(bystanderToken);
          if (answer.status === 503) unavailable = answer;
          else assert.equal(answer.status, 200, JSON.stringify(answer.body));
          return answer.status === 503;
        },
        6000,
        20,
      );
      assert.deepEqual(unavailable?.body, UNAVAILABLE);
      t.diagnostic(`503 from the service ${Math.round(silentAfter)} ms after gatepass stopped (bound 2 s, heartbeat every 2 s)`);
      assert.ok(silentAfter <= 4500, `503 came ${Math.round(silentAfter)} ms after gatepass stopped`);
      // Every token is refused while silent, not only the one polled.
      assert.deepEqual((await projects(revokedToken)).body, UNAVAILABLE);

      // A revocation while gatepass is down, through the database with the real CLI.
      const run = await runCli(['user', 'deactivate', '--email', revokedLater.email], dir, env);
      assert.equal(run.code, 0, run.stderr);
      assert.equal((await projects(bystanderToken)).status, 503, 'still silent while gatepass is down');

      gatepass = await startInstance(env, undefined, undefined, { port });
      const restartedAt = performance.now();
      const recoveredAfter = await waitFor(
        'the service to accept a valid token again',
        async () => {
          const answer = await projects(bystanderToken);
          if (answer.status !== 200) assert.deepEqual(answer.body, UNAVAILABLE, 'only 503 until it recovers');
          return answer.status === 200;
        },
        10_000,
        20,
      );
      // At once, no polling: the catch-up comes before the heartbeat that makes the service trust its list.
      const revoked = await projects(revokedToken);
      assert.deepEqual(
        { status: revoked.status, body: revoked.body },
        { status: 401, body: REVOKED },
        'the revocation made during the outage',
      );
      t.diagnostic(
        `gatepass down ${Math.round(restartedAt - stoppedAt)} ms; the service recovered ${Math.round(recoveredAfter)} ms after gatepass was ready again`,
      );
    },
  );
});

describeNeeding('the revocation feed: two gatepass instances on PostgreSQL and Redis', { postgres: true, redis: true }, () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  let a: Instance | undefined;
  let b: Instance | undefined;
  let service: Instance | undefined;
  const running = (instance: Instance | undefined) => {
    assert.ok(instance !== undefined, 'not started');
    return instance;
  };

  before(async () => {
    assertBuilt();
    database = await createTestDatabase('postgres');
    const env = gatepassEnv(database.cwd, {
      DATABASE_URL: database.url,
      REDIS_URL: REDIS_URL ?? '',
      REDIS_PREFIX: `gatepass-test-${randomBytes(4).toString('hex')}`,
    });
    // One after the other: the first makes the schema, the signing key and the admin.
    a = await startInstance(env);
    b = await startInstance(env);
    const onA = gatepassClient(() => running(a));
    const credential = await onA.createCredential(await onA.loginAdmin(), 'projects');
    // The service follows B while every login, logout and admin change happens on A.
    service = await startService(b.url, credential);
  });

  after(async () => {
    await Promise.all([service?.stop(), a?.stop(), b?.stop()]);
    await database?.drop();
  });

  defineRevocationTrials({
    acting: () => running(a),
    service: () => running(service),
    logoutTrials: 10,
    roleTrials: 3,
    label: 'PostgreSQL + Redis, acting on A, feed from B',
  });

  it('a credential revoked on A is refused by B at once, and its open stream on B ends', { timeout: 30_000 }, async () => {
    const onA = gatepassClient(() => running(a));
    const onB = gatepassClient(() => running(b));
    const admin = await onA.loginAdmin();
    const credential = await onA.createCredential(admin, 'short-lived');
    assert.equal((await onB.feed(credential)).status, 200);
    const stream = await openEventStream(`${running(b).url}/auth/revocations`, { authorization: basicAuthorization(credential) });
    try {
      await waitFor('the caught-up heartbeat', async () => stream.events.some((event) => event.event === 'heartbeat'), 5000);
      await onA.revokeCredential(admin, 'short-lived');
      const next = await onB.feed(credential);
      assert.equal(next.status, 401, JSON.stringify(next.body));
      assert.equal((next.body as { code: string }).code, INVALID_CLIENT);
      await within('the open stream on B to end', stream.ended, 5000);
      assert.ok(stream.endedByServer());
    } finally {
      stream.close();
    }
  });
});
