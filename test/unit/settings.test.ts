import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadSettings } from '../../src/config/settings.js';

const STRONG_A = 'a'.repeat(16) + '0123456789abcdef0123456789';
const STRONG_B = 'b'.repeat(16) + '0123456789abcdef0123456789';

function freshDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'gatepass-settings-'));
}

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('settings', () => {
  it('has the documented defaults', () => {
    const settings = loadSettings({ JWT_SECRET: STRONG_A, JWT_REFRESH_SECRET: STRONG_B }, { cwd: freshDir() });
    assert.equal(settings.env, 'development');
    assert.equal(settings.host, '127.0.0.1');
    assert.equal(settings.port, 8000);
    assert.equal(settings.databaseUrl, 'sqlite:./data/gatepass.db');
    assert.equal(settings.jwt.algorithm, 'HS256');
    assert.equal(settings.jwt.accessTtlSeconds, 15 * 60);
    assert.equal(settings.jwt.refreshTtlSeconds, 7 * 24 * 3600);
    assert.equal(settings.jwt.leewaySeconds, 30);
    assert.equal(settings.refreshReuseGraceSeconds, 10);
    assert.equal(settings.trustProxy, false);
    assert.equal(settings.requireEmailVerification, false);
    assert.equal(settings.publicUrl, 'http://127.0.0.1:8000');
    assert.deepEqual(settings.warnings, []);
  });

  it('REQUIRE_EMAIL_VERIFICATION: true/false, 1/0, yes/no, on/off; anything else is refused', () => {
    const cwd = freshDir();
    const load = (value: string) =>
      loadSettings({ JWT_SECRET: STRONG_A, JWT_REFRESH_SECRET: STRONG_B, REQUIRE_EMAIL_VERIFICATION: value }, { cwd })
        .requireEmailVerification;
    for (const value of ['true', 'TRUE', '1', 'yes', 'on']) assert.equal(load(value), true, value);
    for (const value of ['false', '0', 'no', 'off', '']) assert.equal(load(value), false, value);
    assert.deepEqual(
      problemsOf(() => load('maybe')),
      ['REQUIRE_EMAIL_VERIFICATION must be true or false (got "maybe")'],
    );
  });

  it("PUBLIC_URL: an http(s) URL, trailing slashes dropped; by default the server's HOST and PORT", () => {
    const cwd = freshDir();
    const secrets = { JWT_SECRET: STRONG_A, JWT_REFRESH_SECRET: STRONG_B };
    const load = (env: Record<string, string>) => loadSettings({ ...secrets, ...env }, { cwd }).publicUrl;
    assert.equal(load({ HOST: '0.0.0.0', PORT: '9000' }), 'http://0.0.0.0:9000');
    assert.equal(load({ HOST: '::1' }), 'http://[::1]:8000');
    assert.equal(load({ PUBLIC_URL: 'https://auth.example.com/' }), 'https://auth.example.com');
    assert.equal(load({ PUBLIC_URL: 'https://example.com/portal' }), 'https://example.com/portal');
    for (const bad of [
      'auth.example.com',
      'ftp://example.com',
      'https://example.com/?x=1',
      'https://example.com/#page',
      'https://u:p@example.com',
    ]) {
      const problems = problemsOf(() => load({ PUBLIC_URL: bad }));
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.ok(problems[0]?.startsWith('PUBLIC_URL must be an http:// or https:// URL'), problems[0]);
    }
  });

  it('production refuses missing secrets and says how to make one', () => {
    const problems = problemsOf(() => loadSettings({ NODE_ENV: 'production' }, { cwd: freshDir() }));
    assert.equal(problems.length, 2);
    for (const problem of problems) assert.match(problem, /is required in production; generate one with `openssl rand -hex 32`/);
  });

  it('production refuses short, well-known and equal secrets', () => {
    const cwd = freshDir();
    assert.match(
      problemsOf(() => loadSettings({ NODE_ENV: 'production', JWT_SECRET: 'short', JWT_REFRESH_SECRET: STRONG_B }, { cwd }))[0] ?? '',
      /at least 32 bytes/,
    );
    const seedSecret = 'your-super-secret-key-change-this-in-production-min-32-chars';
    assert.match(
      problemsOf(() => loadSettings({ NODE_ENV: 'production', JWT_SECRET: seedSecret, JWT_REFRESH_SECRET: STRONG_B }, { cwd }))[0] ?? '',
      /well-known/,
    );
    assert.match(
      problemsOf(() => loadSettings({ NODE_ENV: 'production', JWT_SECRET: STRONG_A, JWT_REFRESH_SECRET: STRONG_A }, { cwd }))[0] ?? '',
      /must differ/,
    );
    assert.equal(loadSettings({ NODE_ENV: 'production', JWT_SECRET: STRONG_A, JWT_REFRESH_SECRET: STRONG_B }, { cwd }).env, 'production');
  });

  it('equal secrets are refused in development too', () => {
    assert.match(
      problemsOf(() => loadSettings({ JWT_SECRET: STRONG_A, JWT_REFRESH_SECRET: STRONG_A }, { cwd: freshDir() }))[0] ?? '',
      /must differ/,
    );
  });

  it('development generates secrets once, stores them owner-only under ./data, and warns', () => {
    const cwd = freshDir();
    const first = loadSettings({}, { cwd });
    const file = path.join(cwd, 'data', 'dev-secrets.json');
    assert.ok(existsSync(file));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(first.warnings.length, 1);
    assert.match(first.warnings[0] ?? '', /development secrets stored in/);
    assert.ok(first.jwt.accessSecret.length >= 64);
    assert.notEqual(first.jwt.accessSecret, first.jwt.refreshSecret);
    const second = loadSettings({}, { cwd });
    assert.equal(second.jwt.accessSecret, first.jwt.accessSecret);
    assert.equal(second.jwt.refreshSecret, first.jwt.refreshSecret);
    assert.ok(!readFileSync(file, 'utf8').includes('undefined'));
  });

  it('reads .env, with the environment taking precedence', () => {
    const cwd = freshDir();
    writeFileSync(
      path.join(cwd, '.env'),
      `JWT_SECRET=${STRONG_A}\nJWT_REFRESH_SECRET=${STRONG_B}\nPORT=9001\nACCESS_TOKEN_EXPIRE_MINUTES=5\n`,
    );
    const settings = loadSettings({ PORT: '9002' }, { cwd });
    assert.equal(settings.port, 9002);
    assert.equal(settings.jwt.accessTtlSeconds, 300);
    assert.equal(settings.jwt.accessSecret, STRONG_A);
  });

  it('reports every invalid value at once, clearly', () => {
    const problems = problemsOf(() =>
      loadSettings(
        {
          JWT_SECRET: STRONG_A,
          JWT_REFRESH_SECRET: STRONG_B,
          PORT: 'eighty',
          REFRESH_REUSE_GRACE_SECONDS: '-1',
          TRUST_PROXY: 'maybe',
          DATABASE_URL: 'mysql://x',
          JWT_ALGORITHM: 'none',
        },
        { cwd: freshDir() },
      ),
    );
    assert.equal(problems.length, 5, problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('PORT must be a whole number')));
    assert.ok(problems.some((p) => p.startsWith('REFRESH_REUSE_GRACE_SECONDS')));
    assert.ok(problems.some((p) => p.startsWith('TRUST_PROXY')));
    assert.ok(problems.some((p) => p.startsWith('DATABASE_URL')));
    assert.ok(problems.some((p) => p.startsWith('JWT_ALGORITHM must be one of')));
  });

  it('with a key-pair algorithm, production needs only the refresh secret; keys live in JWT_KEYS_DIR', () => {
    const cwd = freshDir();
    for (const algorithm of ['RS256', 'PS256', 'ES256', 'EdDSA']) {
      const settings = loadSettings({ NODE_ENV: 'production', JWT_ALGORITHM: algorithm, JWT_REFRESH_SECRET: STRONG_B }, { cwd });
      assert.equal(settings.jwt.algorithm, algorithm);
      assert.equal(settings.jwt.keysDir, path.join(cwd, 'data', 'keys'));
    }
    assert.match(
      problemsOf(() => loadSettings({ NODE_ENV: 'production', JWT_ALGORITHM: 'ES256' }, { cwd }))[0] ?? '',
      /JWT_REFRESH_SECRET is required/,
    );
    assert.equal(
      loadSettings({ JWT_ALGORITHM: 'ES256', JWT_REFRESH_SECRET: STRONG_B, JWT_KEYS_DIR: '/etc/gatepass/keys' }, { cwd }).jwt.keysDir,
      '/etc/gatepass/keys',
    );
  });

  it('TRUST_PROXY: off, a hop count, or proxy addresses and CIDRs; `true` is refused', () => {
    const cwd = freshDir();
    const trustProxy = (value: string) =>
      loadSettings({ JWT_SECRET: STRONG_A, JWT_REFRESH_SECRET: STRONG_B, TRUST_PROXY: value }, { cwd }).trustProxy;
    for (const off of ['false', 'FALSE', 'off', 'no', '0', ' ']) assert.equal(trustProxy(off), false, off);
    assert.equal(trustProxy('1'), 1);
    assert.equal(trustProxy('2'), 2);
    assert.deepEqual(trustProxy(' 10.0.0.0/8, 192.0.2.7 ,fd00::/8,::1, loopback'), [
      '10.0.0.0/8',
      '192.0.2.7',
      'fd00::/8',
      '::1',
      'loopback',
    ]);

    for (const everyone of ['true', 'True', 'yes', 'on']) {
      const problems = problemsOf(() =>
        loadSettings({ JWT_SECRET: STRONG_A, JWT_REFRESH_SECRET: STRONG_B, TRUST_PROXY: everyone }, { cwd }),
      );
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.match(
        problems[0] ?? '',
        /^TRUST_PROXY=\w+ would believe any X-Forwarded-For a client writes itself; give the number of proxies .*\(TRUST_PROXY=1\) or their addresses\/CIDRs/,
      );
    }
    const bad = problemsOf(() =>
      loadSettings(
        {
          JWT_SECRET: STRONG_A,
          JWT_REFRESH_SECRET: STRONG_B,
          TRUST_PROXY: '10.0.0.1, proxy.internal, 10.0.0.0/33, 300.1.2.3, fd00::/129, 10.0.0.0/8/1, fe80::1%eth0',
        },
        { cwd },
      ),
    );
    assert.equal(bad.length, 1, bad.join('\n'));
    assert.match(bad[0] ?? '', /^TRUST_PROXY entries must be IP addresses or CIDRs/);
    for (const entry of ['"proxy.internal"', '"10.0.0.0/33"', '"300.1.2.3"', '"fd00::/129"', '"10.0.0.0/8/1"', '"fe80::1%eth0"'])
      assert.ok(bad[0]?.includes(entry), entry);
    assert.ok(!bad[0]?.includes('"10.0.0.1"'), 'a valid entry is not reported');
    assert.match(
      problemsOf(() => loadSettings({ JWT_SECRET: STRONG_A, JWT_REFRESH_SECRET: STRONG_B, TRUST_PROXY: '99' }, { cwd }))[0] ?? '',
      /hop count must be from 0 to 32/,
    );
  });

  it('the lockout policy: threshold, first lock, ceiling and memory, each validated; the first lock within the ceiling', () => {
    const cwd = freshDir();
    const secrets = { JWT_SECRET: STRONG_A, JWT_REFRESH_SECRET: STRONG_B };
    assert.deepEqual(loadSettings(secrets, { cwd }).lockout, {
      threshold: 5,
      lockSeconds: 60,
      maxLockSeconds: 3600,
      memorySeconds: 86_400,
    });
    const custom = {
      ACCOUNT_LOCKOUT_THRESHOLD: '3',
      ACCOUNT_LOCKOUT_SECONDS: '30',
      ACCOUNT_LOCKOUT_MAX_SECONDS: '7200',
      ACCOUNT_LOCKOUT_MEMORY_SECONDS: '3600',
    };
    assert.deepEqual(loadSettings({ ...secrets, ...custom }, { cwd }).lockout, {
      threshold: 3,
      lockSeconds: 30,
      maxLockSeconds: 7200,
      memorySeconds: 3600,
    });
    const problems = problemsOf(() =>
      loadSettings({ ...secrets, ACCOUNT_LOCKOUT_MAX_SECONDS: '0', ACCOUNT_LOCKOUT_MEMORY_SECONDS: 'day' }, { cwd }),
    );
    assert.deepEqual(problems, [
      'ACCOUNT_LOCKOUT_MAX_SECONDS must be a whole number from 1 to 86400 (got "0")',
      'ACCOUNT_LOCKOUT_MEMORY_SECONDS must be a whole number from 60 to 2592000 (got "day")',
    ]);
    assert.deepEqual(
      problemsOf(() => loadSettings({ ...secrets, ACCOUNT_LOCKOUT_SECONDS: '600', ACCOUNT_LOCKOUT_MAX_SECONDS: '300' }, { cwd })),
      ['ACCOUNT_LOCKOUT_SECONDS (600) must not exceed ACCOUNT_LOCKOUT_MAX_SECONDS (300), the longest lock'],
    );
  });

  it('hides the password of a database URL in messages', () => {
    const problems = problemsOf(() =>
      loadSettings({ JWT_SECRET: STRONG_A, JWT_REFRESH_SECRET: STRONG_B, DATABASE_URL: 'mysql://admin:hunter2@db/x' }, { cwd: freshDir() }),
    );
    assert.ok(!problems.join(' ').includes('hunter2'));
  });
});
