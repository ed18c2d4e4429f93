import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, randomBytes, randomUUID, sign, type KeyObject } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadSettings } from '../../src/config/settings.js';
import { buildApp } from '../../src/http/app.js';
import { KeyStore, KeyStoreError } from '../../src/tokens/key-store.js';
import { createVerifier, JwksFetchError, JwksTimeoutError, VerifyError, type VerifierOptions } from '../../src/verify/index.js';
import { b64, claims, es256 } from '../helpers/jwt.js';

/**
 * `gatepass/verify`'s JWKS fetching under a hostile or failing JWKS host (issue 14): JWKS documents
 * served by a real node:http server on a loopback port to a real verifier, and the server's own
 * PEM keys held to the same RSA minimum.
 */

type Jwk = Record<string, unknown>;

/** header.payload.RS256(key): signed by hand, so that a key gatepass refuses can still sign. */
function rs256(header: object, payload: object, key: KeyObject): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

function publicJwk(privateKey: KeyObject, fields: Jwk): Jwk {
  return { ...(createPublicKey(privateKey).export({ format: 'jwk' }) as Jwk), ...fields };
}

interface Hit {
  path: string;
  arrivedAt: number;
  endedAt: number | undefined;
}

/** A JWKS host on 127.0.0.1: `handler` answers; every request is recorded with when it came and when its answer ended. */
async function jwksHost(handler: (request: IncomingMessage, response: ServerResponse) => void) {
  const hits: Hit[] = [];
  const server = createServer((request, response) => {
    const hit: Hit = { path: request.url ?? '', arrivedAt: Date.now(), endedAt: undefined };
    hits.push(hit);
    response.on('close', () => (hit.endedAt = Date.now()));
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    hits,
    count: (pathname = '/.well-known/jwks.json') => hits.filter((hit) => hit.path === pathname).length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function serveJson(response: ServerResponse, body: unknown): void {
  response.writeHead(200, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

/** The verifier's refusal: always gatepass's 401 invalid_token, whatever the reason. */
async function refusal(promise: Promise<unknown>, what: string): Promise<VerifyError> {
  let refused: VerifyError | undefined;
  await assert.rejects(
    promise,
    (error: unknown) => {
      assert.ok(error instanceof VerifyError, `${what}: expected a VerifyError, got ${String(error)}`);
      assert.equal(error.status, 401, what);
      assert.deepEqual(error.body, { detail: 'Could not validate credentials', code: 'invalid_token' }, `${what}: ${error.reason}`);
      refused = error;
      return true;
    },
    what,
  );
  assert.ok(refused);
  return refused;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('gatepass/verify: JWKS fetching, hardened', () => {
  let rsa: KeyObject;
  let ec: KeyObject;
  let weak: KeyObject;

  before(() => {
    rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
  });

  const rsToken = (kid: string, key = rsa) => rs256({ alg: 'RS256', typ: 'JWT', kid }, claims(7), key);
  const esToken = (kid: string) => es256({ alg: 'ES256', typ: 'JWT', kid }, claims(7), ec);

  /** A host serving `keys` as its JWKS, and a verifier on it. */
  async function hostOf(keys: Jwk[], options: Partial<VerifierOptions> = {}) {
    const host = await jwksHost((_request, response) => serveJson(response, { keys }));
    return { host, verifier: createVerifier({ jwksUrl: host.url, ...options }) };
  }

  it('a redirect is refused, and its target never requested', async () => {
    let status = 302;
    const host = await jwksHost((request, response) => {
      if (request.url === '/elsewhere.json') {
        serveJson(response, { keys: [publicJwk(rsa, { kid: 'r', alg: 'RS256', use: 'sig' })] });
        return;
      }
      response.writeHead(status, { location: '/elsewhere.json' });
      response.end();
    });
    try {
      for (status of [301, 302, 303, 307, 308]) {
        const refused = await refusal(createVerifier({ jwksUrl: host.url }).verify(rsToken('r')), `JWKS answering ${status}`);
        assert.match(refused.reason, new RegExp(`answered ${status}`));
        assert.ok(refused.cause instanceof JwksFetchError, `cause: ${String(refused.cause)}`);
      }
      assert.equal(host.count('/elsewhere.json'), 0, 'the redirect target was requested');
      assert.equal(host.count(), 5);
    } finally {
      await host.close();
    }
  });

  it('skips a key whose use is not sig', async () => {
    const { host, verifier } = await hostOf([
      publicJwk(rsa, { kid: 'enc', alg: 'RS256', use: 'enc' }),
      publicJwk(rsa, { kid: 'sig', alg: 'RS256', use: 'sig' }),
      publicJwk(rsa, { kid: 'no-use', alg: 'RS256' }),
    ]);
    try {
      assert.equal((await verifier.verify(rsToken('sig'))).id, 7, 'the same key published for sig verifies');
      assert.equal((await verifier.verify(rsToken('no-use'))).id, 7, 'use is optional');
      const refused = await refusal(verifier.verify(rsToken('enc')), 'use: enc');
      assert.match(refused.reason, /use is not sig/);
    } finally {
      await host.close();
    }
  });

  it('skips a key whose key_ops do not include verify', async () => {
    const { host, verifier } = await hostOf([
      publicJwk(rsa, { kid: 'encrypt', alg: 'RS256', key_ops: ['encrypt', 'wrapKey'] }),
      publicJwk(rsa, { kid: 'not-a-list', alg: 'RS256', key_ops: 'verify' }),
      publicJwk(rsa, { kid: 'empty', alg: 'RS256', key_ops: [] }),
      publicJwk(rsa, { kid: 'verify', alg: 'RS256', key_ops: ['verify'] }),
    ]);
    try {
      assert.equal((await verifier.verify(rsToken('verify'))).id, 7);
      for (const kid of ['encrypt', 'not-a-list', 'empty']) {
        const refused = await refusal(verifier.verify(rsToken(kid)), `key_ops of ${kid}`);
        assert.match(refused.reason, /key_ops/, kid);
      }
    } finally {
      await host.close();
    }
  });

  it('skips a key whose alg is missing, not accepted, or does not fit its kty/crv', async () => {
    const { host, verifier } = await hostOf(
      [
        publicJwk(rsa, { kid: 'no-alg', use: 'sig' }),
        publicJwk(ec, { kid: 'ec-as-rs', alg: 'RS256', use: 'sig' }),
        publicJwk(rsa, { kid: 'rs-as-es', alg: 'ES256', use: 'sig' }),
        publicJwk(rsa, { kid: 'ps', alg: 'PS256', use: 'sig' }),
        publicJwk(ec, { kid: 'es', alg: 'ES256', use: 'sig' }),
      ],
      { algorithms: ['RS256', 'ES256'] },
    );
    try {
      assert.equal((await verifier.verify(esToken('es'))).id, 7);
      await refusal(verifier.verify(rsToken('no-alg')), 'alg missing');
      await refusal(verifier.verify(rsToken('ec-as-rs')), 'EC key published as RS256');
      await refusal(verifier.verify(es256({ alg: 'ES256', typ: 'JWT', kid: 'rs-as-es' }, claims(7), ec)), 'RSA key published as ES256');
      await refusal(verifier.verify(rs256({ alg: 'PS256', typ: 'JWT', kid: 'ps' }, claims(7), rsa)), 'PS256 not accepted');
      await refusal(verifier.verify(rsToken('ps')), 'a PS256 key does not verify RS256');
    } finally {
      await host.close();
    }
  });

  it('skips an RSA key under 2048 bits', async () => {
    const { host, verifier } = await hostOf([
      publicJwk(weak, { kid: 'weak', alg: 'RS256', use: 'sig' }),
      publicJwk(rsa, { kid: 'strong', alg: 'RS256', use: 'sig' }),
    ]);
    try {
      assert.equal((await verifier.verify(rsToken('strong'))).id, 7);
      const refused = await refusal(verifier.verify(rsToken('weak', weak)), '1024-bit RSA key');
      assert.match(refused.reason, /1024-bit RSA key is too short/);
    } finally {
      await host.close();
    }
  });

  it('a body over 1 MiB is refused while it is read', async () => {
    const host = await jwksHost((_request, response) => {
      // No Content-Length: the bound has to hold while streaming.
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write(`{"keys":[${JSON.stringify(publicJwk(rsa, { kid: 'big', alg: 'RS256', use: 'sig' }))}],"pad":"`);
      const chunk = 'x'.repeat(64 * 1024);
      for (let i = 0; i < 20; i += 1) response.write(chunk);
      response.end('"}');
    });
    try {
      const refused = await refusal(createVerifier({ jwksUrl: host.url }).verify(rsToken('big')), 'JWKS of 1.25 MiB');
      assert.match(refused.reason, /larger than 1048576 bytes/);
      assert.ok(refused.cause instanceof JwksFetchError);
    } finally {
      await host.close();
    }
  });

  it('a slow JWKS host gives a JwksTimeoutError as the cause of a 401, headers or body late alike', async () => {
    const never = await jwksHost(() => {
      // Accept the request and never answer.
    });
    const trickle = await jwksHost((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write('{"keys":[');
    });
    try {
      for (const host of [never, trickle]) {
        const started = Date.now();
        const refused = await refusal(createVerifier({ jwksUrl: host.url, jwksTimeoutSeconds: 0.3 }).verify(rsToken('r')), 'slow JWKS');
        assert.ok(refused.cause instanceof JwksTimeoutError, `cause: ${String(refused.cause)}`);
        assert.ok(refused.cause instanceof JwksFetchError, 'a timeout is a fetch failure too');
        assert.equal(refused.cause.timeoutMs, 300);
        assert.match(refused.reason, /timed out after 300 ms/);
        assert.ok(Date.now() - started < 2000, `refused after ${Date.now() - started} ms`);
      }
      // A fetch() that ignores the abort signal is outrun by the timeout all the same.
      const deaf = createVerifier({ jwksUrl: never.url, jwksTimeoutSeconds: 0.2, fetch: () => new Promise<Response>(() => undefined) });
      assert.ok((await refusal(deaf.verify(rsToken('r')), 'fetch ignoring its signal')).cause instanceof JwksTimeoutError);
    } finally {
      await never.close();
      await trickle.close();
    }
  });

  it('50 tokens with unknown kids share one fetch; a known kid does not wait for it', async () => {
    let delayMs = 0;
    const host = await jwksHost((_request, response) => {
      setTimeout(() => serveJson(response, { keys: [publicJwk(rsa, { kid: 'known', alg: 'RS256', use: 'sig' })] }), delayMs);
    });
    try {
      const verifier = createVerifier({ jwksUrl: host.url });
      assert.equal((await verifier.verify(rsToken('known'))).id, 7);
      assert.equal(host.count(), 1);
      await sleep(1100); // past the 1 s cooldown

      delayMs = 500;
      const burst = Promise.allSettled(Array.from({ length: 50 }, () => verifier.verify(rsToken(`unknown-${randomUUID()}`))));
      const started = Date.now();
      assert.equal((await verifier.verify(rsToken('known'))).id, 7);
      assert.ok(Date.now() - started < 250, `a known kid waited ${Date.now() - started} ms for the unknown kids' fetch`);
      const results = await burst;
      assert.ok(results.every((result) => result.status === 'rejected' && result.reason instanceof VerifyError));
      assert.equal(host.count(), 2, 'the 50 unknown kids made one fetch');

      // More junk within the cooldown fetches nothing.
      await Promise.allSettled(Array.from({ length: 50 }, () => verifier.verify(rsToken(`unknown-${randomUUID()}`))));
      assert.equal(host.count(), 2);
    } finally {
      await host.close();
    }
  });

  it('a JWKS host that is down is asked at most once per cooldown, counted from the end of the failed attempt', async () => {
    const cooldownMs = 300;
    const dropping = await jwksHost((request) => request.socket.destroy());
    // Fails slowly: an attempt ends 400 ms after it began, longer than the cooldown.
    const slowFailing = await jwksHost((_request, response) => {
      setTimeout(() => {
        response.writeHead(503, { 'content-type': 'application/json' });
        response.end('{"detail":"starting"}');
      }, 400);
    });
    try {
      for (const [what, host, cause] of [
        ['connection dropped', dropping, /could not be fetched/],
        ['503 after 400 ms', slowFailing, /answered 503/],
      ] as const) {
        const verifier = createVerifier({ jwksUrl: host.url, jwksMinRefetchSeconds: cooldownMs / 1000 });
        const until = Date.now() + 1600;
        const pending: Promise<VerifyError>[] = [];
        while (Date.now() < until) {
          pending.push(refusal(verifier.verify(rsToken(`kid-${randomUUID()}`)), what));
          await sleep(10);
        }
        // Every refusal, in the cooldown or not, names the failure rather than an unknown kid.
        for (const refused of await Promise.all(pending)) {
          assert.ok(refused.cause instanceof JwksFetchError, `${what}: ${refused.reason}`);
          assert.match(refused.reason, cause, what);
        }
        assert.ok(host.hits.length >= 2, `${what}: ${host.hits.length} fetches`);
        for (let i = 1; i < host.hits.length; i += 1) {
          const previous = host.hits[i - 1];
          const gap = (host.hits[i]?.arrivedAt ?? 0) - (previous?.endedAt ?? Number.POSITIVE_INFINITY);
          // 20 ms for the client to see the end after the server closed it.
          assert.ok(gap >= cooldownMs - 20, `${what}: fetch ${i + 1} came ${gap} ms after fetch ${i} ended (${host.hits.length} fetches)`);
        }
      }
    } finally {
      await dropping.close();
      await slowFailing.close();
    }
  });
});

describe('RSA keys under 2048 bits in JWT_KEYS_DIR', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'gatepass-weak-keys-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A key directory as `gatepass keys generate` lays it out, holding `key` as its active RS256 key. */
  function keysDirWith(name: string, key: KeyObject): { keysDir: string; kid: string } {
    const keysDir = path.join(dir, name);
    mkdirSync(keysDir, { mode: 0o700 });
    const kid = `rs256-${randomBytes(4).toString('hex')}`;
    writeFileSync(path.join(keysDir, `${kid}.pem`), key.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    const manifest = { active: kid, keys: [{ kid, algorithm: 'RS256', createdAt: Date.now(), deactivatedAt: null }] };
    writeFileSync(path.join(keysDir, 'keys.json'), JSON.stringify(manifest), { mode: 0o600 });
    return { keysDir, kid };
  }

  it('stop the server at start, naming the file and the minimum', async () => {
    const { keysDir, kid } = keysDirWith('weak', generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey);
    const settings = loadSettings(
      {
        NODE_ENV: 'production',
        JWT_ALGORITHM: 'RS256',
        JWT_REFRESH_SECRET: randomBytes(32).toString('hex'),
        DATABASE_URL: `sqlite:${path.join(dir, 'weak.db')}`,
        JWT_KEYS_DIR: keysDir,
        GATEPASS_DATA_DIR: path.join(dir, 'data'),
        LOG_LEVEL: 'silent',
      },
      { cwd: dir },
    );
    await assert.rejects(buildApp(settings, { cwd: dir }), (error: unknown) => {
      assert.ok(error instanceof KeyStoreError, String(error));
      assert.ok(error.message.includes(path.join(keysDir, `${kid}.pem`)), error.message);
      assert.match(error.message, /1024-bit RSA key is too short for RS256: at least 2048 bits are required/);
      return true;
    });
  });

  it('a 2048-bit key opens; a running store that reads a manifest naming a weak key keeps its keys', () => {
    const { keysDir, kid } = keysDirWith('strong', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
    let clock = Date.now();
    const store = KeyStore.open({ dir: keysDir, algorithm: 'RS256', tokenLifetimeMs: 900_000, createIfEmpty: false, now: () => clock });
    assert.equal(store.signingKey().kid, kid);

    const weakKid = 'rs256-weak';
    writeFileSync(
      path.join(keysDir, `${weakKid}.pem`),
      generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ format: 'pem', type: 'pkcs8' }),
    );
    const manifest = {
      active: weakKid,
      keys: [
        { kid, algorithm: 'RS256', createdAt: clock, deactivatedAt: clock },
        { kid: weakKid, algorithm: 'RS256', createdAt: clock, deactivatedAt: null },
      ],
    };
    writeFileSync(path.join(keysDir, 'keys.json'), JSON.stringify(manifest));
    clock += 2000;
    assert.equal(store.signingKey().kid, kid, 'still signs with the strong key');
    assert.ok(store.resolver().byHeader('RS256', kid), 'still verifies with it');
    assert.equal(store.resolver().byHeader('RS256', weakKid), undefined);
    assert.throws(
      () => KeyStore.open({ dir: keysDir, algorithm: 'RS256', tokenLifetimeMs: 900_000, createIfEmpty: false }),
      (error: unknown) => error instanceof KeyStoreError && /too short/.test(error.message),
    );
  });
});
