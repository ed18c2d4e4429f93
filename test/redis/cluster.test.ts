import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadSettings } from '../../src/config/settings.js';
import { buildApp, type GatepassApp } from '../../src/http/app.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { get, post, signUp } from '../helpers/client.js';
import { freePort, waitFor } from '../helpers/instances.js';

/**
 * gatepass on a Redis Cluster of its own: three master nodes started here (redis-server with
 * cluster mode, slots assigned by redis-cli), two app instances sharing it and one SQLite database.
 */
describe('Redis Cluster: revocations and counters shared across instances', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gatepass-cluster-'));
  const nodes: ChildProcess[] = [];
  let ports: number[] = [];
  let a: TestApp;
  let b: GatepassApp;

  before(async () => {
    ports = [await freePort(), await freePort(), await freePort()];
    for (const port of ports) {
      nodes.push(
        spawn(
          'redis-server',
          [
            '--port',
            String(port),
            '--bind',
            '127.0.0.1',
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${port}.conf`,
            '--save',
            '',
            '--appendonly',
            'no',
          ],
          { cwd: dir, stdio: 'ignore' },
        ),
      );
    }
    for (const port of ports) {
      await waitFor(
        `cluster node ${port}`,
        async () => spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).stdout.trim() === 'PONG',
        10_000,
        50,
      );
    }
    const create = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8' },
    );
    assert.equal(create.status, 0, create.stdout + create.stderr);
    await waitFor(
      'the cluster to be ok',
      async () =>
        spawnSync('redis-cli', ['-p', String(ports[0]), 'cluster', 'info'], { encoding: 'utf8' }).stdout.includes('cluster_state:ok'),
      10_000,
      100,
    );
    const env = {
      REDIS_URL: ports.map((port) => `redis://127.0.0.1:${port}`).join(','),
      LOGIN_RATE_LIMIT_PER_MINUTE: '4',
      ACCOUNT_LOCKOUT_THRESHOLD: '3',
    };
    a = await createTestApp('sqlite', env);
    b = await buildApp(
      loadSettings(
        {
          NODE_ENV: 'test',
          DATABASE_URL: a.databaseUrl,
          JWT_SECRET: a.settings.jwt.accessSecret,
          JWT_REFRESH_SECRET: a.settings.jwt.refreshSecret,
          ...env,
        },
        { cwd: a.cwd },
      ),
      { cwd: a.cwd },
    );
  });

  after(async () => {
    // The tests run only once before() has built both; after() also runs when it stopped half-way.
    const built: (GatepassApp | TestApp | undefined)[] = [b, a];
    for (const app of built) await app?.close();
    for (const node of nodes) node.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('a logout on one instance is refused by the other', async () => {
    const user = await signUp(a.app);
    assert.equal((await get(b, '/users/me', user.tokens.access_token)).statusCode, 200);
    assert.equal((await post(a.app, '/auth/logout', undefined, user.tokens.access_token)).statusCode, 204);
    await waitFor(
      'the other instance to refuse the token',
      async () => (await get(b, '/users/me', user.tokens.access_token)).statusCode === 401,
      2000,
      5,
    );
    assert.equal((await get(b, '/health/ready')).json<{ checks: { redis: string } }>().checks.redis, 'ok');
  });

  it('lockout counts are shared through the cluster (both keys of an account in one slot)', async () => {
    const user = await signUp(a.app);
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        (i % 2 === 0 ? a.app : b).inject({
          method: 'POST',
          url: '/auth/login',
          payload: { email: user.email, password: `wrong-guess-${i}` },
          remoteAddress: `192.0.2.${i + 1}`,
        }),
      ),
    );
    const statuses = answers.map((answer) => answer.statusCode);
    assert.equal(statuses.filter((status) => status === 401).length, 3, statuses.join(','));
    assert.equal(statuses.filter((status) => status === 429).length, 9, statuses.join(','));
  });

  it('rate-limit counts are shared through the cluster', async () => {
    const statuses: number[] = [];
    for (const app of [a.app, b, a.app, b, a.app]) {
      statuses.push(
        (await app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'bad' }, remoteAddress: '203.0.113.9' })).statusCode,
      );
    }
    assert.deepEqual(statuses, [422, 422, 422, 422, 429]);
  });
});
