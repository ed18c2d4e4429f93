import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { loadSettings } from '../../src/config/settings.js';
import { buildApp } from '../../src/http/app.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { assertError, get, post, signUp } from '../helpers/client.js';
import { startRedisServer, waitFor } from '../helpers/instances.js';

/**
 * gatepass against a Redis server of its own that the test kills and restarts: requests that need
 * revocation state fail closed with 503 while it is gone, and service resumes when it returns, with
 * the revocations made before still in force (Redis keeps nothing; the database does).
 */
describe('Redis outage: fail closed, recover, lose no revocation', () => {
  let redis: Awaited<ReturnType<typeof startRedisServer>>;
  let t: TestApp;
  const logs = new PassThrough();
  let logText = '';
  logs.on('data', (chunk: Buffer) => (logText += chunk.toString()));

  before(async () => {
    redis = await startRedisServer();
    t = await createTestApp('sqlite', { REDIS_URL: redis.url, LOG_LEVEL: 'info' }, { logStream: logs });
  });
  after(async () => {
    await t.close();
    await redis.stop();
  });

  it('refuses with 503 while Redis is down and resumes, revocations intact', async () => {
    const user = await signUp(t.app);
    const loggedOut = (await post(t.app, '/auth/login', { email: user.email, password: user.password })).json<{ access_token: string }>();
    assert.equal((await post(t.app, '/auth/logout', undefined, loggedOut.access_token)).statusCode, 204);
    assert.equal((await get(t.app, '/users/me', user.tokens.access_token)).statusCode, 200);
    assert.equal((await get(t.app, '/health/ready')).json<{ checks: { redis: string } }>().checks.redis, 'ok');

    await redis.stop();
    await waitFor(
      'requests to fail closed',
      async () => (await get(t.app, '/users/me', user.tokens.access_token)).statusCode === 503,
      5000,
    );
    assertError(
      await get(t.app, '/users/me', user.tokens.access_token),
      503,
      'Revocation state unavailable; try again shortly',
      'service_unavailable',
    );
    const health = await get(t.app, '/health/ready');
    assert.equal(health.statusCode, 503);
    assert.deepEqual(health.json(), { status: 'unavailable', checks: { database: 'ok', redis: 'unreachable' } });
    // Routes that need no revocation state keep answering.
    assert.equal((await get(t.app, '/ping')).statusCode, 200);

    redis = await startRedisServer(redis.port);
    await waitFor(
      'service to resume',
      async () => (await get(t.app, '/users/me', user.tokens.access_token)).statusCode === 200,
      10_000,
      50,
    );
    assertError(await get(t.app, '/users/me', loggedOut.access_token), 401, 'Token has been revoked', 'token_revoked');
    assert.equal((await get(t.app, '/health/ready')).statusCode, 200);

    const downLines = logText.split('\n').filter((line) => line.includes('Redis unreachable'));
    assert.equal(downLines.length, 1, `logged the outage ${downLines.length} times`);
    assert.ok(logText.includes('Redis reachable again'));
  });

  it('a revocation made elsewhere while Redis was down is learnt from the database on reconnect', async () => {
    // A second instance on the same database and Redis. With Redis down it cannot broadcast, but
    // refresh-token reuse detection (which needs no revocation state) still revokes in the database.
    const other = await buildApp(
      loadSettings(
        {
          NODE_ENV: 'test',
          DATABASE_URL: t.databaseUrl,
          REDIS_URL: redis.url,
          JWT_SECRET: t.settings.jwt.accessSecret,
          JWT_REFRESH_SECRET: t.settings.jwt.refreshSecret,
          REFRESH_REUSE_GRACE_SECONDS: '0',
        },
        { cwd: t.cwd },
      ),
      { cwd: t.cwd },
    );
    try {
      const user = await signUp(t.app);
      const heir = (await post(other, '/auth/refresh', { refresh_token: user.tokens.refresh_token })).json<{ access_token: string }>();
      assert.equal((await get(t.app, '/users/me', heir.access_token)).statusCode, 200);

      await redis.stop();
      await waitFor('fail closed', async () => (await get(t.app, '/users/me', heir.access_token)).statusCode === 503, 5000);
      const reuse = await post(other, '/auth/refresh', { refresh_token: user.tokens.refresh_token });
      assert.equal(reuse.json<{ code: string }>().code, 'token_reused');

      redis = await startRedisServer(redis.port);
      await waitFor(
        'service to resume',
        async () => (await get(t.app, '/ping')).statusCode === 200 && (await get(t.app, '/health/ready')).statusCode === 200,
        10_000,
        50,
      );
      assertError(await get(t.app, '/users/me', heir.access_token), 401, 'Token has been revoked', 'token_revoked');
    } finally {
      await other.close();
    }
  });
});
