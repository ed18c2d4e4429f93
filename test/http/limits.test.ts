import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import type { GatepassApp } from '../../src/http/app.js';
import { REDIS_URL, createTestApp, describeNeeding, type TestApp } from '../helpers/app.js';
import { assertError, register } from '../helpers/client.js';

function attempt(app: GatepassApp, email: string, password: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, headers });
}

function assertLocked(response: LightMyRequestResponse, seconds: number): void {
  assertError(response, 429, `Account temporarily locked after repeated failed logins; try again in ${seconds} seconds`, 'account_locked');
  assert.equal(response.headers['retry-after'], String(seconds));
}

describe('login rate limit per client (in-process, controlled clock)', () => {
  let t: TestApp;
  let clock = Date.now();
  before(async () => {
    t = await createTestApp('sqlite', { LOGIN_RATE_LIMIT_PER_MINUTE: '3' }, { now: () => clock });
  });
  after(() => t.close());

  it('allows 3 attempts a minute, then answers 429 with Retry-After until the window ends', async () => {
    const user = await register(t.app);
    for (let i = 0; i < 3; i += 1) assert.equal((await attempt(t.app, user.email, user.password)).statusCode, 200);
    const limited = await attempt(t.app, user.email, user.password);
    assertError(limited, 429, 'Too many requests; try again in 60 seconds', 'rate_limited');
    assert.equal(limited.headers['retry-after'], '60');
    // Malformed requests are counted too, before their body is read.
    assert.equal(
      (await t.app.inject({ method: 'POST', url: '/auth/login', payload: '{bad', headers: { 'content-type': 'application/json' } }))
        .statusCode,
      429,
    );
    clock += 30_000;
    assert.equal((await attempt(t.app, user.email, user.password)).headers['retry-after'], '30');
    clock += 30_000;
    assert.equal((await attempt(t.app, user.email, user.password)).statusCode, 200);
  });

  it('ignores X-Forwarded-For unless TRUST_PROXY is set', async () => {
    clock += 60_000;
    for (let i = 0; i < 3; i += 1) await attempt(t.app, 'nobody@example.com', 'whatever-password', { 'x-forwarded-for': `203.0.113.${i}` });
    assert.equal((await attempt(t.app, 'nobody@example.com', 'whatever-password', { 'x-forwarded-for': '203.0.113.99' })).statusCode, 429);
  });

  it('limits registration in its own bucket', async () => {
    clock += 60_000;
    for (let i = 0; i < 3; i += 1) await register(t.app);
    const limited = await t.app.inject({
      method: 'POST',
      url: '/auth/register',
      payload: { email: 'late@example.com', password: 'Another-Long-Passphrase-1' },
    });
    assert.equal(limited.statusCode, 429);
    assert.equal((await attempt(t.app, 'nobody@example.com', 'whatever-password')).statusCode, 401);
  });
});

describe('login rate limit behind a trusted proxy', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp('sqlite', { LOGIN_RATE_LIMIT_PER_MINUTE: '2', TRUST_PROXY: '1' });
  });
  after(() => t.close());

  it('counts each forwarded client separately', async () => {
    for (const client of ['203.0.113.1', '203.0.113.2']) {
      for (let i = 0; i < 2; i += 1)
        assert.equal((await attempt(t.app, 'x@example.com', 'whatever-password', { 'x-forwarded-for': client })).statusCode, 401);
    }
    assert.equal((await attempt(t.app, 'x@example.com', 'whatever-password', { 'x-forwarded-for': '203.0.113.1' })).statusCode, 429);
    assert.equal((await attempt(t.app, 'x@example.com', 'whatever-password', { 'x-forwarded-for': '203.0.113.3' })).statusCode, 401);
  });
});

describe('account lockout (in-process, controlled clock)', () => {
  let t: TestApp;
  let clock = Date.now();
  before(async () => {
    t = await createTestApp('sqlite', { ACCOUNT_LOCKOUT_THRESHOLD: '3', ACCOUNT_LOCKOUT_SECONDS: '10' }, { now: () => clock });
  });
  after(() => t.close());

  it('locks after 3 consecutive failures, refusing even the right password, and recovers', async () => {
    const user = await register(t.app);
    for (let i = 0; i < 3; i += 1)
      assertError(await attempt(t.app, user.email, 'wrong-password'), 401, 'Incorrect email or password', 'invalid_credentials');
    assertLocked(await attempt(t.app, user.email, user.password), 10);
    assertLocked(await attempt(t.app, user.email.toUpperCase(), user.password), 10);
    clock += 4_000;
    assertLocked(await attempt(t.app, user.email, user.password), 6);
    clock += 6_000;
    assert.equal((await attempt(t.app, user.email, user.password)).statusCode, 200);
    // Success reset the count: two failures do not lock.
    for (let i = 0; i < 2; i += 1) await attempt(t.app, user.email, 'wrong-password');
    assert.equal((await attempt(t.app, user.email, user.password)).statusCode, 200);
  });

  it('doubles the lock with each further failure', async () => {
    const user = await register(t.app);
    for (let i = 0; i < 3; i += 1) await attempt(t.app, user.email, 'wrong-password');
    assertLocked(await attempt(t.app, user.email, 'wrong-password'), 10);
    clock += 10_000;
    assert.equal((await attempt(t.app, user.email, 'wrong-password')).statusCode, 401);
    assertLocked(await attempt(t.app, user.email, user.password), 20);
    clock += 20_000;
    assert.equal((await attempt(t.app, user.email, 'wrong-password')).statusCode, 401);
    assertLocked(await attempt(t.app, user.email, user.password), 40);
  });

  it('locks unknown emails exactly like real ones', async () => {
    for (let i = 0; i < 3; i += 1) assert.equal((await attempt(t.app, 'ghost@example.com', 'wrong-password')).statusCode, 401);
    assertLocked(await attempt(t.app, 'ghost@example.com', 'wrong-password'), 10);
  });
});

describe('account lockout is capped at one hour', () => {
  let t: TestApp;
  let clock = Date.now();
  before(async () => {
    t = await createTestApp('sqlite', { ACCOUNT_LOCKOUT_THRESHOLD: '1', ACCOUNT_LOCKOUT_SECONDS: '1000' }, { now: () => clock });
  });
  after(() => t.close());

  it('1000 s, 2000 s, then 3600 s', async () => {
    const user = await register(t.app);
    for (const seconds of [1000, 2000, 3600, 3600]) {
      assert.equal((await attempt(t.app, user.email, 'wrong-password')).statusCode, 401);
      assertLocked(await attempt(t.app, user.email, user.password), seconds);
      clock += seconds * 1000;
    }
  });
});

describeNeeding('rate limit and lockout in Redis', { redis: true }, () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp('sqlite', {
      REDIS_URL: REDIS_URL ?? '',
      REDIS_PREFIX: `gatepass-test-${randomBytes(4).toString('hex')}`,
      LOGIN_RATE_LIMIT_PER_MINUTE: '6',
      ACCOUNT_LOCKOUT_THRESHOLD: '2',
      ACCOUNT_LOCKOUT_SECONDS: '1',
    });
  });
  after(() => t.close());

  it('locks with counters in Redis and unlocks when the lock expires', async () => {
    const user = await register(t.app);
    for (let i = 0; i < 2; i += 1) assert.equal((await attempt(t.app, user.email, 'wrong-password')).statusCode, 401);
    assertLocked(await attempt(t.app, user.email, user.password), 1);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.equal((await attempt(t.app, user.email, user.password)).statusCode, 200);
  });

  it('rate-limits with counters in Redis', async () => {
    // Four attempts above were counted; two more fill the budget of six.
    for (let i = 0; i < 2; i += 1) assert.notEqual((await attempt(t.app, 'nobody@example.com', 'whatever-password')).statusCode, 429);
    const limited = await attempt(t.app, 'nobody@example.com', 'whatever-password');
    assert.equal(limited.statusCode, 429);
    assert.equal(limited.json<{ code: string }>().code, 'rate_limited');
  });
});
