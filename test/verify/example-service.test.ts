import assert from 'node:assert/strict';
import { createHmac, createPublicKey, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, runNode, startInstance, waitFor, type Instance } from '../helpers/instances.js';
import { CLI_BIN as BIN, EXAMPLE_SERVICE_ARGS, VERIFY_BUILD, call, type Answer } from '../helpers/remote.js';

/**
 * The seeds' microservice setup as two real processes on loopback: gatepass (ES256) issues tokens,
 * examples/projects-service verifies them with `gatepass/verify` and gatepass's JWKS, and keeps
 * doing so across `gatepass keys rotate` run with the real CLI binary.
 */

type Jwk = Record<string, string>;

function b64(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function decode(segment: string | undefined): Record<string, unknown> {
  return JSON.parse(Buffer.from(segment ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

function kidOf(token: string): unknown {
  return decode(token.split('.')[0]).kid;
}

describe('gatepass (ES256) and examples/projects-service as two processes', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gatepass-example-'));
  const keysDir = path.join(dir, 'keys');
  const env = {
    NODE_ENV: 'test',
    JWT_ALGORITHM: 'ES256',
    GATEPASS_DATA_DIR: path.join(dir, 'data'),
    DATABASE_URL: `sqlite:${path.join(dir, 'gatepass.db')}`,
    JWT_KEYS_DIR: keysDir,
    JWT_REFRESH_SECRET: randomBytes(32).toString('hex'),
    LOGIN_RATE_LIMIT_PER_MINUTE: '0',
    ACCOUNT_LOCKOUT_THRESHOLD: '0',
  };
  const credentials = { email: `ada.${process.pid}@example.com`, password: 'Analytical-Engine-1843' };
  let gatepass: Instance | undefined;
  let service: Instance | undefined;
  let userId: number;

  const jwksUrl = () => `${gatepass?.url ?? ''}/.well-known/jwks.json`;

  async function loginToken(): Promise<string> {
    const answer = await call(`${gatepass?.url ?? ''}/auth/login`, { method: 'POST', body: credentials });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return (answer.body as { access_token: string }).access_token;
  }

  async function jwksKids(): Promise<string[]> {
    const answer = await call(jwksUrl());
    assert.equal(answer.status, 200);
    return (answer.body as { keys: Jwk[] }).keys.map((key) => key.kid ?? '').sort();
  }

  function projects(token?: string): Promise<Answer> {
    return call(`${service?.url ?? ''}/api/projects`, token === undefined ? {} : { token });
  }

  before(async () => {
    assert.ok(
      existsSync(VERIFY_BUILD) && existsSync(BIN),
      `${path.relative(REPO_ROOT, VERIFY_BUILD)} or ${path.relative(REPO_ROOT, BIN)} is missing: run \`npm run build\` first (npm test does it); the example imports gatepass/verify from dist/`,
    );
    gatepass = await startInstance(env);
    service = await startInstance({ GATEPASS_JWKS_URL: jwksUrl(), LOG_LEVEL: 'warn' }, EXAMPLE_SERVICE_ARGS, '/health');
    const registered = await call(`${gatepass.url}/auth/register`, { method: 'POST', body: credentials });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    userId = (registered.body as { id: number }).id;
  });

  after(async () => {
    await Promise.all([service?.stop(), gatepass?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a token from gatepass is accepted by the service: 200 with the user id', async () => {
    const token = await loginToken();
    const answer = await projects(token);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(answer.body, {
      user_id: userId,
      role: 'student',
      projects: [{ id: 1, name: 'Compilers course', owner_id: 1 }].filter((project) => project.owner_id === userId),
    });
    const all = await call(`${service?.url ?? ''}/api/projects/all`, { token });
    assert.deepEqual(all, { status: 403, body: { detail: 'Not enough permissions', code: 'forbidden' }, challenge: null });
  });

  it('no token, a tampered token and an HS256 token made with the public key are refused with 401', async () => {
    assert.deepEqual(await projects(), {
      status: 401,
      body: { detail: 'Not authenticated', code: 'not_authenticated' },
      challenge: 'Bearer',
    });
    const refused = {
      status: 401,
      body: { detail: 'Could not validate credentials', code: 'invalid_token' },
      challenge: 'Bearer error="invalid_token"',
    };

    const token = await loginToken();
    const [header = '', payload = '', signature = ''] = token.split('.');
    const tampered = `${header}.${b64({ ...decode(payload), role: 'admin' })}.${signature}`;
    assert.deepEqual(await projects(tampered), refused, 'tampered payload');
    assert.deepEqual(await projects(`${header}.${payload}.${signature.slice(0, -2)}AA`), refused, 'tampered signature');

    const { keys } = (await call(jwksUrl())).body as { keys: Jwk[] };
    const jwk = keys[0] ?? {};
    const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: String(userId), type: 'access', sid: randomUUID(), jti: randomUUID(), role: 'admin', iat: now, exp: now + 900 };
    for (const hsHeader of [
      { alg: 'HS256', typ: 'JWT' },
      { alg: 'HS256', typ: 'JWT', kid: jwk.kid },
    ]) {
      const input = `${b64(hsHeader)}.${b64(claims)}`;
      const confused = `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
      assert.deepEqual(await projects(confused), refused, `HS256 with the public PEM, header ${JSON.stringify(hsHeader)}`);
    }
  });

  it('after `gatepass keys rotate` (real CLI), tokens of the old and the new key are both accepted while the JWKS lists both', async () => {
    const oldToken = await loginToken();
    const oldKid = kidOf(oldToken);
    assert.equal((await projects(oldToken)).status, 200);

    const rotation = await runNode([BIN, 'keys', 'rotate'], { cwd: dir, env: { PATH: process.env.PATH ?? '', ...env } });
    assert.equal(rotation.code, 0, rotation.stderr);
    const newKid = /new signing key (\S+);/.exec(rotation.stdout)?.[1];
    assert.ok(newKid !== undefined && newKid !== oldKid, rotation.stdout);

    let newToken = '';
    await waitFor(
      'gatepass to sign with the rotated key',
      async () => {
        newToken = await loginToken();
        return kidOf(newToken) === newKid;
      },
      5_000,
      100,
    );

    assert.deepEqual(await jwksKids(), [String(oldKid), newKid].sort(), 'the JWKS lists the old and the new key');
    const oldAnswer = await projects(oldToken);
    assert.equal(oldAnswer.status, 200, `token of the rotated-out key: ${JSON.stringify(oldAnswer.body)}`);
    let newAnswer = await projects(newToken);
    const started = performance.now();
    // The service learns the new key from the JWKS when it first sees its kid; give it a few seconds.
    while (newAnswer.status !== 200 && performance.now() - started < 5_000) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      newAnswer = await projects(newToken);
    }
    assert.equal(
      newAnswer.status,
      200,
      `a token of the new key (${newKid}) is still refused by the service ${Math.round(performance.now() - started)} ms after gatepass started signing with it: ${JSON.stringify(newAnswer.body)}`,
    );
    assert.deepEqual((newAnswer.body as { user_id: number }).user_id, userId);
    assert.equal((await projects(oldToken)).status, 200, 'the old token still works afterwards');
  });
});
