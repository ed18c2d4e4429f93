import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadSettings } from '../../src/config/settings.js';
import { buildApp, type GatepassApp } from '../../src/http/app.js';
import { REVOCATION_POLL_MS } from '../../src/sessions/revocation-bus.js';
import { createHmacKey, signJws } from '../../src/tokens/jws.js';
import { claimsOf, get, post, type Tokens } from '../helpers/client.js';
import { REPO_ROOT, runNode, startInstance, waitFor, type ProcessRun } from '../helpers/instances.js';

/** The built binary (npm test builds before testing), as `npx gatepass` runs it. */
const BIN = path.join(REPO_ROOT, 'dist', 'cli', 'main.js');

describe('the gatepass CLI (real binary, temporary SQLite database)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gatepass-cli-'));
  const env = {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'test',
    DATABASE_URL: `sqlite:${path.join(dir, 'cli.db')}`,
    JWT_SECRET: randomBytes(32).toString('hex'),
    JWT_REFRESH_SECRET: randomBytes(32).toString('hex'),
  };
  const apps: GatepassApp[] = [];

  function gatepass(args: string[], stdin?: string): Promise<ProcessRun> {
    return runNode([BIN, ...args], { cwd: dir, env, stdin: stdin ?? '' });
  }

  /** A server process's view of the same database, started after the CLI changed it. */
  async function freshApp(): Promise<GatepassApp> {
    const app = await buildApp(loadSettings({ ...env, LOGIN_RATE_LIMIT_PER_MINUTE: '0' }, { cwd: dir }), { cwd: dir });
    apps.push(app);
    return app;
  }

  before(async () => {
    assert.equal((await gatepass(['migrate'])).code, 0);
  });
  after(async () => {
    for (const app of apps) await app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints help for the program and for every command, and exits 0', async () => {
    const main = await gatepass(['--help']);
    assert.equal(main.code, 0);
    for (const command of [
      'serve',
      'migrate',
      'user create',
      'user set-role',
      'user deactivate',
      'secret generate',
      'token decode',
      'token verify',
      'service create',
      'service list',
    ]) {
      assert.ok(main.stdout.includes(command), `--help lists ${command}`);
    }
    for (const command of ['serve', 'migrate', 'user', 'secret', 'token', 'service']) {
      const help = await gatepass([command, '--help']);
      assert.equal(help.code, 0, command);
      assert.match(help.stdout, /Usage/, command);
    }
  });

  it('answers usage mistakes with a clear message and exit code 2', async () => {
    const cases: [string[], RegExp][] = [
      [[], /Usage: gatepass <command>/],
      [['bogus'], /unknown command "bogus"/],
      [['migrate', '--email', 'x@example.com'], /unknown option --email/],
      [['user'], /user needs an action/],
      [['user', 'create'], /--email is required/],
      [['user', 'create', '--email', 'x@example.com', '--role', 'emperor', '--password-stdin'], /unknown role "emperor"/],
      [['user', 'create', '--email', 'x@example.com'], /no terminal to ask for the password on/],
      [['secret', 'generate', '--bytes', '8'], /--bytes must be a whole number from 32/],
      [['token', 'decode'], /usage: gatepass token decode\|verify <jwt>/],
      [['token', 'decode', 'not-a-jwt'], /not a JWT: expected 3 dot-separated parts/],
      [['token', 'decode', 'a.b.c'], /not a JWT: the header is not base64url-encoded JSON/],
      [['service'], /service needs an action: create, revoke or list/],
      [['service', 'create'], /usage: gatepass service create <name>/],
      [['service', 'revoke'], /usage: gatepass service revoke <name>/],
      [['service', 'rename', 'x'], /unknown service action "rename"/],
      [['service', 'list', 'x'], /unexpected argument "x"/],
      [['service', 'create', 'a', 'b'], /unexpected argument "b"/],
      [['service', 'create', 'a', '--email', 'x@example.com'], /unknown option --email/],
    ];
    for (const [args, message] of cases) {
      const run = await gatepass(args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message, args.join(' '));
    }
  });

  it('migrate is idempotent', async () => {
    const run = await gatepass(['migrate']);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /already up to date/);
  });

  it('secret generate prints 32 random bytes as hex, fresh each time', async () => {
    const [a, b] = await Promise.all([gatepass(['secret', 'generate']), gatepass(['secret', 'generate'])]);
    assert.match(a.stdout.trim(), /^[0-9a-f]{64}$/);
    assert.notEqual(a.stdout, b.stdout);
    assert.match((await gatepass(['secret', 'generate', '--bytes', '48'])).stdout.trim(), /^[0-9a-f]{96}$/);
  });

  it('user create makes an account the server accepts, with the role asked for', async () => {
    const run = await gatepass(
      ['user', 'create', '--email', 'Root@Example.com', '--role', 'admin', '--full-name', 'Root', '--password-stdin'],
      'Root-Passphrase-Long-1\n',
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^created user \d+ root@example\.com \(role admin\)$/m);
    const app = await freshApp();
    const login = await post(app, '/auth/login', { email: 'root@example.com', password: 'Root-Passphrase-Long-1' });
    assert.equal(login.statusCode, 200, login.body);
    assert.equal(claimsOf(login.json<Tokens>().access_token).role, 'admin');
    assert.equal((await get(app, '/admin/users', login.json<Tokens>().access_token)).statusCode, 200);
  });

  it('user create refuses a taken email and a weak password with exit code 1', async () => {
    const taken = await gatepass(['user', 'create', '--email', 'root@example.com', '--password-stdin'], 'Another-Passphrase-2\n');
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /Email already registered/);
    const weak = await gatepass(['user', 'create', '--email', 'weak@example.com', '--password-stdin'], 'password123\n');
    assert.equal(weak.code, 1);
    assert.match(weak.stderr, /password: Password is too common/);
  });

  it('user set-role changes the role; a running server refuses the older access token within about a second, and a refresh carries the new role', async () => {
    assert.equal(
      (await gatepass(['user', 'create', '--email', 'pupil@example.com', '--password-stdin'], 'Pupil-Passphrase-Long-3')).code,
      0,
    );
    const running = await freshApp();
    const tokens = (await post(running, '/auth/login', { email: 'pupil@example.com', password: 'Pupil-Passphrase-Long-3' })).json<Tokens>();
    assert.equal(claimsOf(tokens.access_token).role, 'student');
    assert.equal((await get(running, '/users/me', tokens.access_token)).statusCode, 200);
    const run = await gatepass(['user', 'set-role', '--email', 'pupil@example.com', '--role', 'teacher']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /now has role teacher/);
    // No Redis here: the running server reads the revocation from the shared database.
    await waitFor(
      'the running server to refuse the token minted before the role change',
      async () => (await get(running, '/users/me', tokens.access_token)).json<{ code?: string }>().code === 'token_revoked',
      REVOCATION_POLL_MS * 3,
    );
    const refreshed = (await post(running, '/auth/refresh', { refresh_token: tokens.refresh_token })).json<Tokens>();
    assert.equal(claimsOf(refreshed.access_token).role, 'teacher');
    assert.equal((await get(running, '/admin/users', refreshed.access_token)).statusCode, 200);
    // And a server started afterwards knows it from the start.
    const stale = await get(await freshApp(), '/users/me', tokens.access_token);
    assert.equal(stale.json<{ code: string }>().code, 'token_revoked');
    const missing = await gatepass(['user', 'set-role', '--email', 'nobody@example.com', '--role', 'teacher']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no user with email nobody@example.com/);
  });

  it('user deactivate ends the account: a running server refuses its access token within about a second, login answers 403', async () => {
    assert.equal(
      (await gatepass(['user', 'create', '--email', 'leaver@example.com', '--password-stdin'], 'Leaver-Passphrase-Long-4')).code,
      0,
    );
    const running = await freshApp();
    const tokens = (
      await post(running, '/auth/login', { email: 'leaver@example.com', password: 'Leaver-Passphrase-Long-4' })
    ).json<Tokens>();
    const run = await gatepass(['user', 'deactivate', '--email', 'leaver@example.com']);
    assert.equal(run.code, 0, run.stderr);
    // Data routes refuse it at once (they look the account up); the revocation of its sessions
    // arrives within about a second, and from then on the token check alone refuses it.
    await waitFor(
      "the running server to refuse the deactivated account's token",
      async () => (await post(running, '/auth/logout', {}, tokens.access_token)).json<{ code?: string }>().code === 'token_revoked',
      REVOCATION_POLL_MS * 3,
    );
    const login = await post(running, '/auth/login', { email: 'leaver@example.com', password: 'Leaver-Passphrase-Long-4' });
    assert.equal(login.statusCode, 403);
  });

  it('user set-role and user deactivate refuse to leave no active admin (exit 1, a clear message); with a second admin, set-role works', async () => {
    // root@example.com (made by "user create" above) is the only admin.
    for (const args of [
      ['user', 'set-role', '--email', 'root@example.com', '--role', 'teacher'],
      ['user', 'deactivate', '--email', 'root@example.com'],
    ]) {
      const run = await gatepass(args);
      assert.equal(run.code, 1, `${args.join(' ')}: ${run.stdout} ${run.stderr}`);
      assert.match(run.stderr, /^gatepass: This is the last active admin: make another account admin first$/m, args.join(' '));
    }
    const login = await post(await freshApp(), '/auth/login', { email: 'root@example.com', password: 'Root-Passphrase-Long-1' });
    assert.equal(login.statusCode, 200, login.body);
    assert.equal(claimsOf(login.json<Tokens>().access_token).role, 'admin');
    // With a second admin, either may be demoted.
    assert.equal(
      (
        await gatepass(
          ['user', 'create', '--email', 'deputy@example.com', '--role', 'admin', '--password-stdin'],
          'Deputy-Passphrase-Long-5',
        )
      ).code,
      0,
    );
    const demoted = await gatepass(['user', 'set-role', '--email', 'deputy@example.com', '--role', 'student']);
    assert.equal(demoted.code, 0, demoted.stderr);
    assert.match(demoted.stdout, /now has role student/);
  });

  it('service create prints exactly the client_id and client_secret lines; list shows the credential without its secret; revoke ends it at once', async () => {
    const created = await gatepass(['service', 'create', 'projects-service']);
    assert.equal(created.code, 0, created.stderr);
    const match = /^client_id: (svc_[A-Za-z0-9_-]{22})\nclient_secret: ([A-Za-z0-9_-]{43})\n$/.exec(created.stdout);
    assert.ok(match !== null, JSON.stringify(created.stdout));
    const [, clientId = '', clientSecret = ''] = match;
    assert.match(created.stderr, /shown only this once/);
    assert.ok(!created.stderr.includes(clientSecret), 'the secret is on standard output only');
    const header = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`;
    const running = await freshApp();
    assert.equal((await running.gatepass.serviceCredentials.authenticate(header))?.name, 'projects-service');

    const listed = await gatepass(['service', 'list']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(
      listed.stdout,
      new RegExp(`^projects-service +${clientId} +created \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z +last used \\d{4}-`, 'm'),
    );
    assert.ok(!listed.stdout.includes(clientSecret), 'list shows the secret');

    const taken = await gatepass(['service', 'create', 'projects-service']);
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /^gatepass: A service credential named "projects-service" already exists$/m);
    assert.equal(taken.stdout, '');
    const badName = await gatepass(['service', 'create', 'no spaces/please']);
    assert.equal(badName.code, 1);
    assert.match(badName.stderr, /^gatepass: name: Name must be 1-64 characters/m);

    const revoked = await gatepass(['service', 'revoke', 'projects-service']);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, /revoked service credential projects-service/);
    // The running server reads credentials on every use: refused at once, no polling interval to wait.
    assert.equal(await running.gatepass.serviceCredentials.authenticate(header), undefined);
    const again = await gatepass(['service', 'revoke', 'projects-service']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^gatepass: no service credential named "projects-service"$/m);
    const empty = await gatepass(['service', 'list']);
    assert.equal(empty.code, 0);
    assert.equal(empty.stdout, 'no service credentials\n');

    // Both recorded, as the CLI's, with the name and client id and never the secret.
    const events = await running.gatepass.audit.query({ limit: 200 });
    for (const name of ['service_created', 'service_revoked']) {
      const event = events.find((candidate) => candidate.event === name);
      assert.ok(event !== undefined, `no ${name} event`);
      assert.equal(event.actorId, null);
      assert.equal(event.userAgent, 'gatepass-cli');
      assert.deepEqual(event.details, { name: 'projects-service', client_id: clientId });
    }
    assert.ok(!JSON.stringify(events).includes(clientSecret));
  });

  it('token decode shows header, payload, times and says it did not verify', async () => {
    const app = await freshApp();
    const tokens = (await post(app, '/auth/login', { email: 'root@example.com', password: 'Root-Passphrase-Long-1' })).json<Tokens>();
    const run = await gatepass(['token', 'decode', tokens.access_token]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /"alg": "HS256"/);
    assert.match(run.stdout, /"type": "access"/);
    assert.match(run.stdout, /exp +\d+ +\d{4}-\d\d-\d\dT[\d:.]+Z +\(in 15 minutes\)/);
    assert.match(run.stdout, /Status: not expired/);
    assert.match(run.stdout, /decoding is not verifying/);
    const now = Math.floor(Date.now() / 1000);
    const expired = signJws({ sub: '1', type: 'access', iat: now - 7200, exp: now - 3600 }, createHmacKey('HS256', 'anything'));
    const old = await gatepass(['token', 'decode', expired]);
    assert.match(old.stdout, /Status: EXPIRED/);
    assert.match(old.stdout, /\(60 minutes ago\)/);
  });

  it('serve starts the HTTP server on the configured port', async () => {
    const server = await startInstance({ ...env, GATEPASS_DATA_DIR: dir }, [BIN, 'serve']);
    try {
      const ping = await fetch(`${server.url}/ping`);
      assert.deepEqual(await ping.json(), { status: 'ok', message: 'pong' });
    } finally {
      await server.stop();
    }
  });

  it('token verify checks the signature with the configured secrets: 0 when valid, 1 otherwise', async () => {
    const app = await freshApp();
    const tokens = (await post(app, '/auth/login', { email: 'root@example.com', password: 'Root-Passphrase-Long-1' })).json<Tokens>();
    const access = await gatepass(['token', 'verify', tokens.access_token]);
    assert.equal(access.code, 0, access.stderr);
    assert.match(access.stdout, /^valid access token: user \d+, role admin, session [0-9a-f-]{36}, expires /);
    const refresh = await gatepass(['token', 'verify', tokens.refresh_token]);
    assert.equal(refresh.code, 0);
    assert.match(refresh.stdout, /^valid refresh token/);
    const [h, p, s = ''] = tokens.access_token.split('.');
    const tampered = await gatepass(['token', 'verify', `${h}.${p}.${s.slice(0, -2)}${s.endsWith('AA') ? 'BB' : 'AA'}`]);
    assert.equal(tampered.code, 1);
    assert.match(tampered.stdout, /^invalid token\n {2}as access token: invalid_token/);
    const forged = signJws(
      {
        sub: '1',
        type: 'access',
        sid: 's',
        jti: 'j',
        role: 'admin',
        iat: Math.floor(Date.now() / 1000),
        exp: Math.floor(Date.now() / 1000) + 60,
      },
      createHmacKey('HS256', 'guessed-secret'),
    );
    assert.equal((await gatepass(['token', 'verify', forged])).code, 1);
  });
});
