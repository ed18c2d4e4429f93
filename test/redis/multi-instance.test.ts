import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import { REDIS_URL, createTestDatabase, describeNeeding } from '../helpers/app.js';
import { claimsOf, newCredentials, type Tokens } from '../helpers/client.js';
import { startInstance, waitFor, type Instance } from '../helpers/instances.js';

/** The time within which every instance must honour a revocation made on another (issue: 100 ms). */
const PROPAGATION_BOUND_MS = 100;
const LOGIN_LIMIT = 5;

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

let clientsSoFar = 0;
/**
 * A client address from TEST-NET-2 (RFC 5737); the instances believe X-Forwarded-For (TRUST_PROXY).
 * A new one for each call, never a repeat: a random one could repeat an earlier test's client, whose
 * logins of the same minute would then count against the rate-limit test's.
 */
function clientAddress(): string {
  clientsSoFar += 1;
  if (clientsSoFar > 254) throw new Error('out of TEST-NET-2 client addresses');
  return `198.51.100.${clientsSoFar}`;
}

async function call(
  instance: Instance,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
  client = clientAddress(),
): Promise<Answer & { headers: Headers }> {
  const response = await fetch(instance.url + path, {
    method,
    headers: {
      'x-forwarded-for': client,
      ...(body !== undefined && { 'content-type': 'application/json' }),
      ...(token !== undefined && { authorization: `Bearer ${token}` }),
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

describeNeeding('three instances sharing PostgreSQL and Redis', { postgres: true, redis: true }, () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let a: Instance;
  let b: Instance;
  let c: Instance;

  before(async () => {
    database = await createTestDatabase('postgres');
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: REDIS_URL ?? '',
      REDIS_PREFIX: `gatepass-test-${randomBytes(4).toString('hex')}`,
      JWT_SECRET: randomBytes(32).toString('hex'),
      JWT_REFRESH_SECRET: randomBytes(32).toString('hex'),
      REFRESH_REUSE_GRACE_SECONDS: '1',
      TRUST_PROXY: '1',
      LOGIN_RATE_LIMIT_PER_MINUTE: String(LOGIN_LIMIT),
      GATEPASS_DATA_DIR: database.cwd,
    };
    a = await startInstance(env);
    [b, c] = await Promise.all([startInstance(env), startInstance(env)]);
  });
  after(async () => {
    // The tests run only once before() has started all three; after() also runs when it stopped half-way.
    const started: (Instance | undefined)[] = [a, b, c];
    await Promise.all(started.filter((i) => i !== undefined).map((i) => i.stop()));
    await database.drop();
  });

  async function signUpOn(instance: Instance): Promise<{ email: string; password: string; tokens: Tokens }> {
    const credentials = newCredentials();
    assert.equal((await call(instance, 'POST', '/auth/register', credentials)).status, 201);
    const login = await call(instance, 'POST', '/auth/login', credentials);
    assert.equal(login.status, 200);
    return { ...credentials, tokens: login.body as unknown as Tokens };
  }

  /** Waits (bounded) until `instance` refuses the token as revoked; returns how long that took. */
  async function refusedWithin(instance: Instance, token: string): Promise<number> {
    return waitFor(
      `${instance.url} to refuse a revoked token`,
      async () => {
        const answer = await call(instance, 'GET', '/users/me', undefined, token);
        return answer.status === 401 && answer.body.code === 'token_revoked';
      },
      PROPAGATION_BOUND_MS,
      2,
    );
  }

  it('a token issued by A works on B and C', async () => {
    const user = await signUpOn(a);
    for (const instance of [b, c]) {
      const me = await call(instance, 'GET', '/users/me', undefined, user.tokens.access_token);
      assert.equal(me.status, 200);
      assert.equal(me.body.email, user.email);
    }
  });

  it(`a logout on A is refused by B and C within ${PROPAGATION_BOUND_MS} ms`, async (t) => {
    const user = await signUpOn(a);
    assert.equal((await call(b, 'GET', '/users/me', undefined, user.tokens.access_token)).status, 200);
    assert.equal((await call(a, 'POST', '/auth/logout', undefined, user.tokens.access_token)).status, 204);
    const [onB, onC] = await Promise.all([refusedWithin(b, user.tokens.access_token), refusedWithin(c, user.tokens.access_token)]);
    t.diagnostic(`logout seen by B after ${onB.toFixed(1)} ms, by C after ${onC.toFixed(1)} ms`);
  });

  it(`a deactivation on A is refused by B and C within ${PROPAGATION_BOUND_MS} ms`, async (t) => {
    const user = await signUpOn(a);
    const other = await call(c, 'POST', '/auth/login', { email: user.email, password: user.password });
    const otherToken = (other.body as unknown as Tokens).access_token;
    assert.equal((await call(a, 'PUT', '/users/me/deactivate', undefined, user.tokens.access_token)).status, 200);
    const [onB, onC] = await Promise.all([refusedWithin(b, user.tokens.access_token), refusedWithin(c, otherToken)]);
    t.diagnostic(`deactivation seen by B after ${onB.toFixed(1)} ms, by C after ${onC.toFixed(1)} ms`);
    assert.equal((await call(b, 'POST', '/auth/login', { email: user.email, password: user.password })).status, 403);
  });

  it('refresh reuse on C of a token rotated on A is detected, and the heir dies everywhere', async () => {
    const user = await signUpOn(a);
    const rotated = await call(a, 'POST', '/auth/refresh', { refresh_token: user.tokens.refresh_token });
    assert.equal(rotated.status, 200);
    const heir = rotated.body as unknown as Tokens;
    // Past the 1 s grace window, a second use is theft.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const reuse = await call(c, 'POST', '/auth/refresh', { refresh_token: user.tokens.refresh_token });
    assert.equal(reuse.status, 401);
    assert.equal(reuse.body.code, 'token_reused');
    await Promise.all([refusedWithin(a, heir.access_token), refusedWithin(b, heir.access_token)]);
    assert.equal((await call(b, 'POST', '/auth/refresh', { refresh_token: heir.refresh_token })).status, 401);
  });

  it('parallel refreshes of one token spread over the instances keep one session', async () => {
    const user = await signUpOn(b);
    const instances = [a, b, c, a, b, c, a, b, c];
    const answers = await Promise.all(
      instances.map((instance) => call(instance, 'POST', '/auth/refresh', { refresh_token: user.tokens.refresh_token })),
    );
    assert.deepEqual(
      answers.map((answer) => answer.status),
      instances.map(() => 200),
    );
    const sessionIds = new Set(answers.map((answer) => claimsOf((answer.body as unknown as Tokens).refresh_token).sid));
    assert.deepEqual([...sessionIds], [claimsOf(user.tokens.refresh_token).sid]);
    const sessions = await call(c, 'GET', '/auth/sessions', undefined, (answers[0]?.body as unknown as Tokens).access_token);
    assert.equal((sessions.body as unknown as unknown[]).length, 1);
  });

  it('the account lockout holds across instances: of 45 concurrent wrong passwords spread over them, at most 5 are checked', async () => {
    const user = await signUpOn(a);
    const instances = [a, b, c];
    const answers = await Promise.all(
      Array.from({ length: 45 }, (_, i) =>
        call(instances[i % 3]!, 'POST', '/auth/login', { email: user.email, password: `wrong-guess-${i}` }),
      ),
    );
    const statuses = answers.map((answer) => answer.status);
    assert.equal(statuses.filter((status) => status === 401).length, 5, statuses.join(','));
    assert.equal(statuses.filter((status) => status === 429).length, 40, statuses.join(','));
    // Locked on every instance, even for the right password.
    for (const instance of instances)
      assert.equal(
        (await call(instance, 'POST', '/auth/login', { email: user.email, password: user.password })).body.code,
        'account_locked',
      );
  });

  it(`rate-limit counts are shared: ${LOGIN_LIMIT} logins per minute per client, whichever instance answers`, async () => {
    const client = clientAddress();
    const instances = [a, b, c, a, b, c, a];
    const answers = [];
    for (const [index, instance] of instances.entries()) {
      // A different unknown email each time, so that only the per-client limit is in play.
      answers.push(
        await call(
          instance,
          'POST',
          '/auth/login',
          { email: `nobody${index}-${client}@example.com`, password: 'irrelevant-password' },
          undefined,
          client,
        ),
      );
    }
    assert.deepEqual(
      answers.map((answer) => answer.status),
      [401, 401, 401, 401, 401, 429, 429],
    );
    const limited = answers[5]!;
    assert.equal(limited.body.code, 'rate_limited');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
    // Another client is not affected.
    assert.equal((await call(b, 'POST', '/auth/login', { email: 'someone@example.com', password: 'irrelevant-password' })).status, 401);
  });
});
