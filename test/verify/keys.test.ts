import assert from 'node:assert/strict';
import { constants, createHmac, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { generateKeys, listKeys, retireKey, rotateKeys } from '../../src/cli/commands.js';
import { loadSettings } from '../../src/config/settings.js';
import { buildApp, type GatepassApp } from '../../src/http/app.js';
import { KeyStore, KeyStoreError } from '../../src/tokens/key-store.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { login, signUp } from '../helpers/client.js';
import { REPO_ROOT, runNode, type ProcessRun } from '../helpers/instances.js';

/**
 * Asymmetric access-token keys: what the JWKS publishes (and never publishes), key rotation and
 * retirement as running servers see them, the production start without keys, and forgeries that
 * try to get around the key pair.
 */

type Jwk = Record<string, string>;
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'];
const INVALID_TOKEN = { detail: 'Could not validate credentials', code: 'invalid_token' };
/** The built CLI binary (npm test builds before testing). */
const BIN = path.join(REPO_ROOT, 'dist', 'cli', 'main.js');

function b64(value: object | string | Buffer): string {
  if (Buffer.isBuffer(value)) return value.toString('base64url');
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

function headerOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

async function jwksOf(app: GatepassApp): Promise<{ response: LightMyRequestResponse; keys: Jwk[] }> {
  const response = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
  assert.equal(response.statusCode, 200, response.body);
  return { response, keys: response.json<{ keys: Jwk[] }>().keys };
}

async function kidsOf(app: GatepassApp): Promise<string[]> {
  return (await jwksOf(app)).keys.map((key) => key.kid ?? '').sort();
}

function me(app: GatepassApp, token: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${token}` } });
}

function assertMe(response: LightMyRequestResponse, userId: number, what: string): void {
  assert.equal(response.statusCode, 200, `${what}: ${response.body}`);
  assert.equal(response.json<{ id: number }>().id, userId, what);
}

function assertInvalid(response: LightMyRequestResponse, what: string): void {
  assert.equal(response.statusCode, 401, `${what}: expected 401, got ${response.statusCode} ${response.body}`);
  assert.deepEqual(response.json<unknown>(), INVALID_TOKEN, what);
  assert.equal(response.headers['www-authenticate'], 'Bearer error="invalid_token"', what);
}

/** Claims shaped like gatepass's access tokens, dated by `nowMs`. */
function claims(userId: number, nowMs: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = Math.floor(nowMs / 1000);
  return { sub: String(userId), type: 'access', sid: randomUUID(), role: 'student', jti: randomUUID(), iat, exp: iat + 900, ...overrides };
}

/** header.payload.ES256(key) with the signature in the given encoding. */
function es256(header: object, payload: object, key: KeyObject, encoding: 'ieee-p1363' | 'der' = 'ieee-p1363'): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${sign('sha256', Buffer.from(input), { key, dsaEncoding: encoding }).toString('base64url')}`;
}

function hs256(header: object, payload: object, secret: string | Buffer): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** The real `gatepass` binary against a test app's key directory. */
function cli(t: TestApp, args: string[]): Promise<ProcessRun> {
  assert.ok(existsSync(BIN), `${BIN} is missing: run \`npm run build\` first (npm test does)`);
  return runNode([BIN, ...args], {
    cwd: t.cwd,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      JWT_ALGORITHM: t.settings.jwt.algorithm,
      JWT_KEYS_DIR: t.settings.jwt.keysDir,
      JWT_REFRESH_SECRET: t.settings.jwt.refreshSecret,
      DATABASE_URL: t.databaseUrl,
    },
  });
}

function privateKeyOf(t: TestApp, kid: string): KeyObject {
  return createPrivateKey(readFileSync(path.join(t.settings.jwt.keysDir, `${kid}.pem`)));
}

const CASES = [
  { algorithm: 'RS256', kty: 'RSA', members: ['alg', 'e', 'kid', 'kty', 'n', 'use'] },
  { algorithm: 'PS256', kty: 'RSA', members: ['alg', 'e', 'kid', 'kty', 'n', 'use'] },
  { algorithm: 'ES256', kty: 'EC', crv: 'P-256', members: ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'] },
  { algorithm: 'EdDSA', kty: 'OKP', crv: 'Ed25519', members: ['alg', 'crv', 'kid', 'kty', 'use', 'x'] },
] as const;

describe('the JWKS of each key-pair algorithm', () => {
  for (const expected of CASES) {
    it(`${expected.algorithm}: one public ${expected.kty} key, the kid of the tokens, no private member`, async (context) => {
      const t = await createTestApp('sqlite', { JWT_ALGORITHM: expected.algorithm });
      context.after(() => t.close());
      const { response, keys } = await jwksOf(t.app);
      assert.match(String(response.headers['content-type']), /^application\/json/);
      assert.match(String(response.headers['cache-control']), /max-age=\d+/);
      assert.equal(keys.length, 1, response.body);
      const jwk = keys[0] ?? {};
      assert.deepEqual(Object.keys(jwk).sort(), [...expected.members], response.body);
      assert.equal(jwk.kty, expected.kty);
      assert.equal(jwk.alg, expected.algorithm);
      assert.equal(jwk.use, 'sig');
      if ('crv' in expected) assert.equal(jwk.crv, expected.crv);
      for (const member of PRIVATE_MEMBERS) assert.ok(!(member in jwk), `the JWKS publishes the private member "${member}"`);
      // Nothing of the private key file appears in the body, in any spelling.
      const secretPart = createPrivateKey(readFileSync(path.join(t.settings.jwt.keysDir, `${jwk.kid}.pem`))).export({ format: 'jwk' }).d ?? '';
      assert.ok(secretPart.length > 0 && !response.body.includes(secretPart), 'the private exponent/scalar is in the JWKS');
      assert.ok(!response.body.includes('PRIVATE KEY'));

      const user = await signUp(t.app);
      const token = user.tokens.access_token;
      const header = headerOf(token);
      assert.equal(header.kid, jwk.kid, 'the access token names the published key');
      assert.equal(header.alg, expected.algorithm);
      assert.equal(header.typ, 'JWT');
      // The published key really is the one that signed the token.
      const [encodedHeader = '', encodedPayload = '', signature = ''] = token.split('.');
      const publicKey = createPublicKey({ key: jwk, format: 'jwk' });
      const data = Buffer.from(`${encodedHeader}.${encodedPayload}`);
      const raw = Buffer.from(signature, 'base64url');
      const valid =
        expected.algorithm === 'EdDSA'
          ? verify(null, data, publicKey, raw)
          : expected.algorithm === 'ES256'
            ? verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, raw)
            : expected.algorithm === 'PS256'
              ? verify('sha256', data, { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, raw)
              : verify('sha256', data, publicKey, raw);
      assert.ok(valid, 'the JWKS key verifies the access token');
      assertMe(await me(t.app, token), user.id, 'genuine token');
    });
  }

  it('HS256: {"keys": []}, and neither secret appears in the body', async (context) => {
    const t = await createTestApp('sqlite');
    context.after(() => t.close());
    const { response, keys } = await jwksOf(t.app);
    assert.deepEqual(response.json<unknown>(), { keys: [] });
    assert.deepEqual(keys, []);
    for (const secret of [t.settings.jwt.accessSecret, t.settings.jwt.refreshSecret]) {
      for (const spelling of [secret, Buffer.from(secret).toString('base64url'), Buffer.from(secret).toString('base64')]) {
        assert.ok(!response.body.includes(spelling), 'a secret is published');
      }
    }
    const token = (await signUp(t.app)).tokens.access_token;
    assert.equal(headerOf(token).kid, undefined);
  });
});

describe('key rotation with a controlled clock (ES256)', () => {
  /**
   * An ES256 app on a clock the test moves (from the real time: `rotateKeys` dates a rotation with
   * the real clock), a signed-up user, their first access token and its kid.
   */
  async function es256AppWithUser(context: TestContext) {
    const clock = { now: Date.now() };
    const t = await createTestApp('sqlite', { JWT_ALGORITHM: 'ES256' }, { now: () => clock.now });
    context.after(() => t.close());
    const user = await signUp(t.app);
    const tokenA = user.tokens.access_token;
    return { t, user, tokenA, kidA: String(headerOf(tokenA).kid), clock };
  }

  it('rotate: new tokens get the new kid, old and new both verify; the old key leaves after access TTL + leeway', async (context) => {
    const { t, user, tokenA, kidA, clock } = await es256AppWithUser(context);
    assert.deepEqual(await kidsOf(t.app), [kidA]);

    const rotated = rotateKeys(t.settings);
    const kidB = /new signing key (\S+);/.exec(rotated)?.[1];
    assert.ok(kidB !== undefined && kidB !== kidA, rotated);
    assert.ok(rotated.includes(kidA), rotated);
    clock.now += 1_001; // the server rereads the manifest at most once a second

    const tokenB = (await login(t.app, user)).access_token;
    assert.equal(headerOf(tokenB).kid, kidB, 'a token issued after the rotation is signed with the new key');
    assertMe(await me(t.app, tokenA), user.id, 'token of the rotated-out key');
    assertMe(await me(t.app, tokenB), user.id, 'token of the new key');
    assert.deepEqual(await kidsOf(t.app), [kidA, kidB].sort(), 'the JWKS lists both keys');

    const listed = listKeys(t.settings).split('\n');
    assert.equal(listed.length, 2, listed.join('\n'));
    assert.match(listed.find((line) => line.startsWith(kidA)) ?? '', /\bES256\s+verifying\b/);
    assert.match(listed.find((line) => line.startsWith(kidB)) ?? '', /\bES256\s+active\b/);

    // Just before the end of the verification window the old key is still published and verifying.
    clock.now += (900 + 30) * 1000 - 3_000;
    assert.deepEqual(await kidsOf(t.app), [kidA, kidB].sort(), 'still inside access TTL + leeway');

    clock.now += 5_000;
    assert.deepEqual(await kidsOf(t.app), [kidB], 'the old key leaves the JWKS after access TTL + leeway');
    const store = KeyStore.open({ dir: t.settings.jwt.keysDir, algorithm: 'ES256', tokenLifetimeMs: (900 + 30) * 1000, createIfEmpty: false, now: () => clock.now });
    assert.deepEqual(
      store.list().map((key) => [key.kid, key.status]),
      [
        [kidA, 'expired'],
        [kidB, 'active'],
      ],
    );
    // Its tokens are long expired; a token signed now with the old key is refused outright.
    assert.equal((await me(t.app, tokenA)).statusCode, 401);
    const lateForgery = es256({ alg: 'ES256', typ: 'JWT', kid: kidA }, claims(user.id, clock.now), privateKeyOf(t, kidA));
    assertInvalid(await me(t.app, lateForgery), 'a fresh token signed with the expired key');
    const tokenC = (await login(t.app, user)).access_token;
    assert.equal(headerOf(tokenC).kid, kidB);
    assertMe(await me(t.app, tokenC), user.id, 'token after the window');

    assert.throws(() => retireKey(t.settings, kidB), (error: unknown) => error instanceof KeyStoreError && /active key/.test(error.message));
    assert.match(retireKey(t.settings, kidA), new RegExp(`retired ${kidA}`));
    assert.deepEqual(
      listKeys(t.settings)
        .split('\n')
        .map((line) => line.split(/\s+/)[0]),
      [kidB],
    );
    assert.ok(!existsSync(path.join(t.settings.jwt.keysDir, `${kidA}.pem`)), 'the retired private key file is removed');
    clock.now += 1_001;
    assertMe(await me(t.app, tokenC), user.id, 'the active key keeps working after the retirement');
  });

  it('retire right after a rotation: tokens of the retired key are refused within a second', async (context) => {
    const { t, user, tokenA, kidA, clock } = await es256AppWithUser(context);
    rotateKeys(t.settings);
    retireKey(t.settings, kidA);
    clock.now += 1_001;
    assertInvalid(await me(t.app, tokenA), 'token of a retired key');
    assert.ok(!(await kidsOf(t.app)).includes(kidA), 'a retired key is not published');
    const tokenB = (await login(t.app, user)).access_token;
    assert.notEqual(headerOf(tokenB).kid, kidA);
    assertMe(await me(t.app, tokenB), user.id, 'token of the new key');
  });

  it('a manifest rewritten within one file-system timestamp tick is still reread', async (context) => {
    // File times here advance in ticks of a few milliseconds, so a rotation and a retirement in one
    // script can leave the manifest's modification time as the server last saw it. Setting a
    // whole-second time (exactly representable) before and after the change makes that case certain.
    const { t, user, tokenA, kidA, clock } = await es256AppWithUser(context);
    const manifest = path.join(t.settings.jwt.keysDir, 'keys.json');
    assert.ok(existsSync(manifest), `expected the manifest at ${manifest}`);
    const tick = Math.floor(Date.now() / 1000) - 60;
    utimesSync(manifest, tick, tick);
    clock.now += 1_001;
    assertMe(await me(t.app, tokenA), user.id, 'the server has read the manifest at its whole-second time');
    rotateKeys(t.settings);
    retireKey(t.settings, kidA);
    utimesSync(manifest, tick, tick);
    assert.equal(statSync(manifest).mtimeMs, tick * 1000);
    clock.now += 1_001;
    assertInvalid(await me(t.app, tokenA), 'token of a key retired under an unchanged modification time');
    assert.ok(!(await kidsOf(t.app)).includes(kidA), 'the retired key is not published');
  });

  it('the CLI binary: keys list shows active and verifying; retire of the active key fails, of an unknown kid fails', async (context) => {
    const t = await createTestApp('sqlite', { JWT_ALGORITHM: 'ES256' });
    context.after(() => t.close());
    const user = await signUp(t.app);
    const kidA = String(headerOf(user.tokens.access_token).kid);

    const rotate = await cli(t, ['keys', 'rotate']);
    assert.equal(rotate.code, 0, rotate.stderr);
    const kidB = /new signing key (\S+);/.exec(rotate.stdout)?.[1] ?? '';
    assert.match(kidB, /^es256-\d{8}-[0-9a-f]{8}$/);

    const list = await cli(t, ['keys', 'list']);
    assert.equal(list.code, 0, list.stderr);
    const lines = list.stdout.trim().split('\n');
    assert.equal(lines.length, 2, list.stdout);
    assert.match(lines.find((line) => line.startsWith(kidA)) ?? '', /\bverifying\b/);
    assert.match(lines.find((line) => line.startsWith(kidB)) ?? '', /\bactive\b/);

    const retireActive = await cli(t, ['keys', 'retire', kidB]);
    assert.notEqual(retireActive.code, 0, 'retiring the active key must fail');
    assert.match(retireActive.stderr, /active key/);
    const retireUnknown = await cli(t, ['keys', 'retire', 'es256-20000101-00000000']);
    assert.notEqual(retireUnknown.code, 0);
    assert.match(retireUnknown.stderr, /no key es256-20000101-00000000/);
    const usage = await cli(t, ['keys', 'retire']);
    assert.equal(usage.code, 2, usage.stderr);

    const retireOld = await cli(t, ['keys', 'retire', kidA]);
    assert.equal(retireOld.code, 0, retireOld.stderr);
    const after = await cli(t, ['keys', 'list']);
    assert.deepEqual(after.stdout.trim().split('\n').map((line) => line.split(/\s+/)[0]), [kidB]);
  });

  it('keys commands refuse an HMAC algorithm with a usage error', async (context) => {
    const t = await createTestApp('sqlite');
    context.after(() => t.close());
    assert.throws(() => rotateKeys(t.settings), /JWT_ALGORITHM is HS256/);
  });
});

describe('production without keys', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'gatepass-prod-keys-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses to start and says `gatepass keys generate`; after generateKeys it starts', async () => {
    const keysDir = path.join(dir, 'keys');
    mkdirSync(keysDir);
    const settings = loadSettings(
      {
        NODE_ENV: 'production',
        JWT_ALGORITHM: 'ES256',
        JWT_REFRESH_SECRET: randomBytes(32).toString('hex'),
        DATABASE_URL: `sqlite:${path.join(dir, 'prod.db')}`,
        JWT_KEYS_DIR: keysDir,
        GATEPASS_DATA_DIR: path.join(dir, 'data'),
        LOG_LEVEL: 'silent',
      },
      { cwd: dir },
    );
    await assert.rejects(buildApp(settings, { cwd: dir }), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.match(error.message, /gatepass keys generate/);
      return true;
    });
    assert.deepEqual(readdirSync(keysDir), [], 'production never makes a key by itself');

    assert.match(generateKeys(settings), /^created es256-\S+ \(ES256\) in /);
    assert.throws(() => generateKeys(settings), /already has keys/);
    const app = await buildApp(settings, { cwd: dir });
    try {
      assert.equal((await app.inject({ method: 'GET', url: '/ping' })).statusCode, 200);
      const { keys } = await jwksOf(app);
      assert.equal(keys.length, 1);
      const user = await signUp(app);
      assert.equal(headerOf(user.tokens.access_token).kid, keys[0]?.kid);
    } finally {
      await app.close();
    }
  });

  it('a refused start releases the database it opened', async () => {
    const sub = mkdtempSync(path.join(dir, 'leak-'));
    const database = path.join(sub, 'leak.db');
    const settings = loadSettings(
      {
        NODE_ENV: 'production',
        JWT_ALGORITHM: 'ES256',
        JWT_REFRESH_SECRET: randomBytes(32).toString('hex'),
        DATABASE_URL: `sqlite:${database}`,
        JWT_KEYS_DIR: path.join(sub, 'keys'),
        GATEPASS_DATA_DIR: path.join(sub, 'data'),
        LOG_LEVEL: 'silent',
      },
      { cwd: sub },
    );
    await assert.rejects(buildApp(settings, { cwd: sub }), /gatepass keys generate/);
    // Every file this process holds open, by path (Linux).
    const handles = readdirSync('/proc/self/fd')
      .map((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`);
        } catch {
          return '';
        }
      })
      .filter((target) => target.startsWith(database));
    assert.deepEqual(handles, [], 'the database file is still open after buildApp rejected');
  });
});

describe('forged tokens against a key-pair server (ES256)', () => {
  let clock = Date.now();
  let t: TestApp;
  let user: Awaited<ReturnType<typeof signUp>>;
  let kid: string;
  let jwk: Jwk;
  let genuineKey: KeyObject;
  const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });

  before(async () => {
    t = await createTestApp('sqlite', { JWT_ALGORITHM: 'ES256' }, { now: () => clock });
    user = await signUp(t.app);
    kid = String(headerOf(user.tokens.access_token).kid);
    jwk = (await jwksOf(t.app)).keys[0] ?? {};
    genuineKey = privateKeyOf(t, kid);
  });
  after(() => t.close());

  const genuineHeader = () => ({ alg: 'ES256', typ: 'JWT', kid });

  it('control: a token hand-signed with the real key and header is accepted', async () => {
    assertMe(await me(t.app, es256(genuineHeader(), claims(user.id, clock), genuineKey)), user.id, 'hand-made genuine token');
    assertMe(await me(t.app, es256({ typ: 'JWT', alg: 'ES256', kid }, claims(user.id, clock), genuineKey)), user.id, 'header members in another order');
  });

  it('HS256 HMAC-signed with the public key (PEM, JWK JSON, DER) is refused', async () => {
    const publicKey = createPublicKey({ key: jwk, format: 'jwk' });
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const secrets: (string | Buffer)[] = [
      pem,
      pem.trimEnd(),
      JSON.stringify(jwk),
      JSON.stringify({ keys: [jwk] }),
      publicKey.export({ type: 'spki', format: 'der' }),
    ];
    for (const secret of secrets) {
      for (const header of [{ alg: 'HS256', typ: 'JWT' }, { alg: 'HS256', typ: 'JWT', kid }]) {
        assertInvalid(await me(t.app, hs256(header, claims(user.id, clock), secret)), `HS256 with ${JSON.stringify(header)}`);
      }
    }
  });

  it('an embedded jwk of the attacker, signed with its key, is refused', async () => {
    const attackerJwk = attacker.publicKey.export({ format: 'jwk' });
    const headers = [
      { alg: 'ES256', typ: 'JWT', jwk: attackerJwk },
      { alg: 'ES256', typ: 'JWT', kid, jwk: attackerJwk },
      { alg: 'ES256', typ: 'JWT', kid: 'attacker', jwk: { ...attackerJwk, kid: 'attacker' } },
    ];
    for (const header of headers) {
      assertInvalid(await me(t.app, es256(header, claims(user.id, clock), attacker.privateKey)), `embedded jwk ${JSON.stringify(header).slice(0, 60)}`);
    }
    // Signed by the attacker under the real kid, without any embedded key: the kid picks our key, not theirs.
    assertInvalid(await me(t.app, es256(genuineHeader(), claims(user.id, clock), attacker.privateKey)), 'attacker signature under the real kid');
  });

  it('a kid that is unknown, or of a retired key, is refused', async () => {
    for (const other of ['es256-20990101-deadbeef', '', `${kid} `, kid.toUpperCase(), '../keys', `${kid}/../${kid}`]) {
      assertInvalid(await me(t.app, es256({ alg: 'ES256', typ: 'JWT', kid: other }, claims(user.id, clock), genuineKey)), `kid ${JSON.stringify(other)}`);
    }
    assertInvalid(await me(t.app, es256({ alg: 'ES256', typ: 'JWT', kid: 42 }, claims(user.id, clock), genuineKey)), 'numeric kid');

    // Rotate, then retire the old key: a token it signs (still unexpired) is refused.
    const oldToken = es256(genuineHeader(), claims(user.id, clock), genuineKey);
    rotateKeys(t.settings);
    clock += 1_001;
    assertMe(await me(t.app, oldToken), user.id, 'the rotated-out key still verifies before its retirement');
    retireKey(t.settings, kid);
    clock += 1_001;
    assertInvalid(await me(t.app, oldToken), 'token of the retired key');
    assertInvalid(await me(t.app, es256(genuineHeader(), claims(user.id, clock), genuineKey)), 'fresh token signed by the retired key');
  });

  it('CVE-2022-21449: an all-zero ES256 signature is refused', async () => {
    // The header below names a live key: after the previous test the active one.
    const liveKid = String((await jwksOf(t.app)).keys[0]?.kid);
    const input = `${b64({ alg: 'ES256', typ: 'JWT', kid: liveKid })}.${b64(claims(user.id, clock))}`;
    for (const signature of [Buffer.alloc(64), Buffer.alloc(32), Buffer.concat([Buffer.alloc(32), Buffer.alloc(32, 0xff)])]) {
      assertInvalid(await me(t.app, `${input}.${signature.toString('base64url')}`), `signature of ${signature.length} bytes`);
    }
    // The all-zero signature in DER (SEQUENCE { INTEGER 0, INTEGER 0 }).
    assertInvalid(await me(t.app, `${input}.${Buffer.from('3006020100020100', 'hex').toString('base64url')}`), 'DER zero signature');
  });

  it('a DER-encoded ECDSA signature instead of r||s is refused', async () => {
    const liveKid = String((await jwksOf(t.app)).keys[0]?.kid);
    const liveKey = privateKeyOf(t, liveKid);
    const header = { alg: 'ES256', typ: 'JWT', kid: liveKid };
    assertMe(await me(t.app, es256(header, claims(user.id, clock), liveKey)), user.id, 'control: r||s');
    assertInvalid(await me(t.app, es256(header, claims(user.id, clock), liveKey, 'der')), 'DER signature');
  });

  it('an ES256 token whose header names another algorithm is refused', async () => {
    const liveKid = String((await jwksOf(t.app)).keys[0]?.kid);
    const liveKey = privateKeyOf(t, liveKid);
    for (const alg of ['RS256', 'PS256', 'ES384', 'ES512', 'EdDSA', 'es256', 'ES256 ', 'none', 'HS256']) {
      assertInvalid(await me(t.app, es256({ alg, typ: 'JWT', kid: liveKid }, claims(user.id, clock), liveKey)), `alg ${JSON.stringify(alg)}`);
    }
    // And an RS256 signature by an attacker's RSA key, under the real kid.
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const input = `${b64({ alg: 'RS256', typ: 'JWT', kid: liveKid })}.${b64(claims(user.id, clock))}`;
    assertInvalid(await me(t.app, `${input}.${sign('sha256', Buffer.from(input), rsa.privateKey).toString('base64url')}`), 'RS256 by an attacker key');
  });
});
