import assert from 'node:assert/strict';
import { constants, createPrivateKey, createPublicKey, verify } from 'node:crypto';
import { existsSync, readFileSync, statSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { listKeys, retireKey, rotateKeys } from '../../src/cli/commands.js';
import { KeyStore, KeyStoreError } from '../../src/tokens/key-store.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { login, signUp } from '../helpers/client.js';
import { REPO_ROOT, runNode, type ProcessRun } from '../helpers/instances.js';
import { es256 } from '../helpers/jwt.js';
import { assertInvalid, assertMe, claimsAt, headerOf, jwksOf, kidsOf, me, privateKeyOf } from '../helpers/key-pairs.js';

/**
 * Asymmetric access-token keys: what the JWKS publishes (and never publishes), and key rotation and
 * retirement as running servers see them. The production start without keys and the forgeries are
 * in keys-hardening.test.ts.
 */

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'];

/** The built CLI binary (npm test builds before testing). */
const BIN = path.join(REPO_ROOT, 'dist', 'cli', 'main.js');

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
      const secretPart =
        createPrivateKey(readFileSync(path.join(t.settings.jwt.keysDir, `${jwk.kid}.pem`))).export({ format: 'jwk' }).d ?? '';
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
    const store = KeyStore.open({
      dir: t.settings.jwt.keysDir,
      algorithm: 'ES256',
      tokenLifetimeMs: (900 + 30) * 1000,
      createIfEmpty: false,
      now: () => clock.now,
    });
    assert.deepEqual(
      store.list().map((key) => [key.kid, key.status]),
      [
        [kidA, 'expired'],
        [kidB, 'active'],
      ],
    );
    // Its tokens are long expired; a token signed now with the old key is refused outright.
    assert.equal((await me(t.app, tokenA)).statusCode, 401);
    const lateForgery = es256({ alg: 'ES256', typ: 'JWT', kid: kidA }, claimsAt(user.id, clock.now), privateKeyOf(t, kidA));
    assertInvalid(await me(t.app, lateForgery), 'a fresh token signed with the expired key');
    const tokenC = (await login(t.app, user)).access_token;
    assert.equal(headerOf(tokenC).kid, kidB);
    assertMe(await me(t.app, tokenC), user.id, 'token after the window');

    assert.throws(
      () => retireKey(t.settings, kidB),
      (error: unknown) => error instanceof KeyStoreError && /active key/.test(error.message),
    );
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
    assert.deepEqual(
      after.stdout
        .trim()
        .split('\n')
        .map((line) => line.split(/\s+/)[0]),
      [kidB],
    );
  });

  it('keys commands refuse an HMAC algorithm with a usage error', async (context) => {
    const t = await createTestApp('sqlite');
    context.after(() => t.close());
    assert.throws(() => rotateKeys(t.settings), /JWT_ALGORITHM is HS256/);
  });
});
