import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateKeys, retireKey, rotateKeys } from '../../src/cli/commands.js';
import { loadSettings } from '../../src/config/settings.js';
import { buildApp } from '../../src/http/app.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { b64, es256, hs256 } from '../helpers/jwt.js';
import { assertInvalid, assertMe, claimsAt, headerOf, jwksOf, me, privateKeyOf, type Jwk } from '../helpers/key-pairs.js';

/**
 * Asymmetric access-token keys under pressure: the production start without keys, and forgeries
 * that try to get around the key pair.
 */

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
    assertMe(await me(t.app, es256(genuineHeader(), claimsAt(user.id, clock), genuineKey)), user.id, 'hand-made genuine token');
    assertMe(
      await me(t.app, es256({ typ: 'JWT', alg: 'ES256', kid }, claimsAt(user.id, clock), genuineKey)),
      user.id,
      'header members in another order',
    );
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
      for (const header of [
        { alg: 'HS256', typ: 'JWT' },
        { alg: 'HS256', typ: 'JWT', kid },
      ]) {
        assertInvalid(await me(t.app, hs256(header, claimsAt(user.id, clock), secret)), `HS256 with ${JSON.stringify(header)}`);
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
      assertInvalid(
        await me(t.app, es256(header, claimsAt(user.id, clock), attacker.privateKey)),
        `embedded jwk ${JSON.stringify(header).slice(0, 60)}`,
      );
    }
    // Signed by the attacker under the real kid, without any embedded key: the kid picks our key, not theirs.
    assertInvalid(
      await me(t.app, es256(genuineHeader(), claimsAt(user.id, clock), attacker.privateKey)),
      'attacker signature under the real kid',
    );
  });

  it('a kid that is unknown, or of a retired key, is refused', async () => {
    for (const other of ['es256-20990101-deadbeef', '', `${kid} `, kid.toUpperCase(), '../keys', `${kid}/../${kid}`]) {
      assertInvalid(
        await me(t.app, es256({ alg: 'ES256', typ: 'JWT', kid: other }, claimsAt(user.id, clock), genuineKey)),
        `kid ${JSON.stringify(other)}`,
      );
    }
    assertInvalid(await me(t.app, es256({ alg: 'ES256', typ: 'JWT', kid: 42 }, claimsAt(user.id, clock), genuineKey)), 'numeric kid');

    // Rotate, then retire the old key: a token it signs (still unexpired) is refused.
    const oldToken = es256(genuineHeader(), claimsAt(user.id, clock), genuineKey);
    rotateKeys(t.settings);
    clock += 1_001;
    assertMe(await me(t.app, oldToken), user.id, 'the rotated-out key still verifies before its retirement');
    retireKey(t.settings, kid);
    clock += 1_001;
    assertInvalid(await me(t.app, oldToken), 'token of the retired key');
    assertInvalid(await me(t.app, es256(genuineHeader(), claimsAt(user.id, clock), genuineKey)), 'fresh token signed by the retired key');
  });

  it('CVE-2022-21449: an all-zero ES256 signature is refused', async () => {
    // The header below names a live key: after the previous test the active one.
    const liveKid = String((await jwksOf(t.app)).keys[0]?.kid);
    const input = `${b64({ alg: 'ES256', typ: 'JWT', kid: liveKid })}.${b64(claimsAt(user.id, clock))}`;
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
    assertMe(await me(t.app, es256(header, claimsAt(user.id, clock), liveKey)), user.id, 'control: r||s');
    assertInvalid(await me(t.app, es256(header, claimsAt(user.id, clock), liveKey, 'der')), 'DER signature');
  });

  it('an ES256 token whose header names another algorithm is refused', async () => {
    const liveKid = String((await jwksOf(t.app)).keys[0]?.kid);
    const liveKey = privateKeyOf(t, liveKid);
    for (const alg of ['RS256', 'PS256', 'ES384', 'ES512', 'EdDSA', 'es256', 'ES256 ', 'none', 'HS256']) {
      assertInvalid(
        await me(t.app, es256({ alg, typ: 'JWT', kid: liveKid }, claimsAt(user.id, clock), liveKey)),
        `alg ${JSON.stringify(alg)}`,
      );
    }
    // And an RS256 signature by an attacker's RSA key, under the real kid.
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const input = `${b64({ alg: 'RS256', typ: 'JWT', kid: liveKid })}.${b64(claimsAt(user.id, clock))}`;
    assertInvalid(
      await me(t.app, `${input}.${sign('sha256', Buffer.from(input), rsa.privateKey).toString('base64url')}`),
      'RS256 by an attacker key',
    );
  });
});
