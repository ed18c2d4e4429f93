import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { rotateKeys } from '../../src/cli/commands.js';
import { createVerifier, VerifyError, type Verifier } from '../../src/verify/index.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { login, signUp } from '../helpers/client.js';
import { freePort, waitFor } from '../helpers/instances.js';
import { b64, claims, decode, es256, EXPIRED, hs256, INVALID, listen, segments } from '../helpers/jwt.js';

/**
 * `gatepass/verify` against a real gatepass app on a loopback port: the verifier in JWKS mode
 * (caching, refetch on an unknown kid, rotation, failing closed) and in secret mode. The Fastify
 * plugin and the Express middleware are in verify-plugins.test.ts.
 */

type Jwk = Record<string, string>;

/** A fetch that counts its calls (the real fetch underneath). */
function countingFetch(): { fetch: typeof fetch; calls: () => number } {
  let calls = 0;
  return {
    fetch: (input, init) => {
      calls += 1;
      return fetch(input, init);
    },
    calls: () => calls,
  };
}

/** Asserts a refusal with exactly the gatepass server's answer. */
async function assertRefused(promise: Promise<unknown>, expected: typeof INVALID | typeof EXPIRED, what: string): Promise<void> {
  await assert.rejects(
    promise,
    (error: unknown) => {
      assert.ok(error instanceof VerifyError, `${what}: expected a VerifyError, got ${String(error)}`);
      assert.equal(error.code, expected.code, `${what}: ${error.reason}`);
      assert.equal(error.status, 401, what);
      assert.deepEqual(error.body, expected, what);
      assert.equal(error.wwwAuthenticate, 'Bearer error="invalid_token"', what);
      return true;
    },
    what,
  );
}

/** Settles within `ms`, or fails the test saying what hung. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not settled after ${ms} ms`)), ms);
    }),
  ]);
}

/** A plain HTTP server answering every request with `handler` (a JWKS host under the test's control). */
async function fakeHost(
  handler: (request: IncomingMessage, response: ServerResponse) => void,
): Promise<{ url: string; hits: () => number; close(): Promise<void> }> {
  let hits = 0;
  const server: Server = createServer((request, response) => {
    hits += 1;
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    hits: () => hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

for (const algorithm of ['ES256', 'RS256'] as const) {
  describe(`createVerifier with the JWKS of a ${algorithm} gatepass`, () => {
    let t: TestApp;
    let jwksUrl: string;
    let user: Awaited<ReturnType<typeof signUp>>;
    let verifier: Verifier;

    before(async () => {
      t = await createTestApp('sqlite', { JWT_ALGORITHM: algorithm });
      jwksUrl = `${await listen(t)}/.well-known/jwks.json`;
      user = await signUp(t.app);
      verifier = createVerifier({ jwksUrl });
    });
    after(() => t.close());

    async function publicJwk(): Promise<Jwk> {
      const response = await fetch(jwksUrl);
      const { keys } = (await response.json()) as { keys: Jwk[] };
      assert.equal(keys.length, 1);
      return keys[0] ?? {};
    }

    it('a genuine access token gives the VerifiedUser', async () => {
      const token = user.tokens.access_token;
      const payload = decode(segments(token)[1]);
      const verified = await verifier.verify(token);
      assert.equal(verified.id, user.id);
      assert.equal(verified.role, 'student');
      assert.equal(verified.sessionId, payload.sid);
      assert.equal(verified.tokenId, payload.jti);
      assert.equal(verified.expiresAt.getTime(), Number(payload.exp) * 1000);
      assert.equal(verified.claims.type, 'access');
      assert.equal((await verifier.verifyAuthorization(`Bearer ${token}`)).id, user.id);
      assert.equal((await verifier.verifyAuthorization(`bearer ${token}`)).id, user.id);
    });

    it('a tampered token is invalid_token, with the server body and challenge', async () => {
      const [header, payload, signature] = segments(user.tokens.access_token);
      const promoted = b64({ ...decode(payload), role: 'admin' });
      const otherClaims: Record<string, unknown> = { ...decode(payload), sub: String(user.id + 1) };
      const otherUser = b64(otherClaims);
      const flipped = `${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`;
      const cases: [string, string][] = [
        ['role changed', `${header}.${promoted}.${signature}`],
        ['sub changed', `${header}.${otherUser}.${signature}`],
        ['signature changed', `${header}.${payload}.${flipped}`],
        ['signature removed', `${header}.${payload}.`],
        ['signature truncated', `${header}.${payload}.${signature.slice(0, -4)}`],
        ['two segments', `${header}.${payload}`],
        ['garbage', 'not-a-token'],
        ['empty', ''],
        ['alg none', `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`],
      ];
      for (const [what, token] of cases) await assertRefused(verifier.verify(token), INVALID, what);
      await assertRefused(verifier.verifyAuthorization(`Bearer ${header}.${promoted}.${signature}`), INVALID, 'header form');
    });

    it('an expired token (beyond the 30 s leeway) is token_expired; within the leeway it passes', async () => {
      const now = Math.floor(Date.now() / 1000);
      const expired = t.app.gatepass.tokens.signAccess(claims(user.id, { iat: now - 1000, exp: now - 31 }));
      await assertRefused(verifier.verify(expired), EXPIRED, 'expired');
      const withinLeeway = t.app.gatepass.tokens.signAccess(claims(user.id, { iat: now - 1000, exp: now - 20 }));
      assert.equal((await verifier.verify(withinLeeway)).id, user.id);
      const future = t.app.gatepass.tokens.signAccess(claims(user.id, { iat: now + 120, exp: now + 1000 }));
      await assertRefused(verifier.verify(future), INVALID, 'iat in the future');
      const wrongType = t.app.gatepass.tokens.signAccess(claims(user.id, { type: 'refresh' }));
      await assertRefused(verifier.verify(wrongType), INVALID, 'type refresh under the access key');
    });

    it('a refresh token is refused', async () => {
      await assertRefused(verifier.verify(user.tokens.refresh_token), INVALID, 'refresh token');
      const refreshSigned = hs256({ alg: 'HS256', typ: 'JWT' }, claims(user.id), t.settings.jwt.refreshSecret);
      await assertRefused(verifier.verify(refreshSigned), INVALID, 'access claims under the refresh secret');
    });

    it('HS256 HMAC-signed with the public key (PEM or JWK JSON) is refused', async () => {
      const jwk = await publicJwk();
      const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString();
      for (const secret of [pem, pem.trimEnd(), JSON.stringify(jwk)]) {
        for (const header of [
          { alg: 'HS256', typ: 'JWT' },
          { alg: 'HS256', typ: 'JWT', kid: jwk.kid },
        ]) {
          await assertRefused(
            verifier.verify(hs256(header, claims(user.id), secret)),
            INVALID,
            `HS256 confusion ${JSON.stringify(header)}`,
          );
        }
      }
      // Even a verifier told to accept HS256 cannot be given a JWKS.
      assert.throws(() => createVerifier({ jwksUrl, algorithms: ['HS256'] }), /JWKS verifies only/);
    });

    it('the JWKS is fetched once for many verifications', async () => {
      const counter = countingFetch();
      const cached = createVerifier({ jwksUrl, fetch: counter.fetch });
      const tokens = [user.tokens.access_token];
      for (let i = 0; i < 4; i += 1) tokens.push((await login(t.app, user)).access_token);
      for (let round = 0; round < 5; round += 1) {
        for (const token of tokens) assert.equal((await cached.verify(token)).id, user.id);
      }
      // Bad signatures under the known kid do not refetch either.
      const [header, payload] = segments(user.tokens.access_token);
      for (let i = 0; i < 5; i += 1) await assertRefused(cached.verify(`${header}.${payload}.AAAA`), INVALID, 'bad signature');
      assert.equal(counter.calls(), 1);
    });

    it('concurrent first verifications share one fetch, and all succeed', async () => {
      const counter = countingFetch();
      const fresh = createVerifier({ jwksUrl, fetch: counter.fetch });
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => fresh.verify(user.tokens.access_token)));
      assert.equal(counter.calls(), 1, 'one JWKS fetch for ten concurrent verifications');
      const refused = results.filter((result) => result.status === 'rejected');
      assert.deepEqual(
        refused.map((result) =>
          result.reason instanceof VerifyError ? `${result.reason.code}: ${result.reason.reason}` : String(result.reason),
        ),
        [],
        `${refused.length} of 10 concurrent verifications of a genuine token were refused while the first JWKS fetch was in flight`,
      );
    });

    it('an unknown kid refetches at most once per jwksMinRefetchSeconds; concurrent ones share the fetch', async () => {
      let clock = Date.now();
      const counter = countingFetch();
      const limited = createVerifier({ jwksUrl, fetch: counter.fetch, now: () => clock, jwksMinRefetchSeconds: 30 });
      assert.equal((await limited.verify(user.tokens.access_token)).id, user.id);
      assert.equal(counter.calls(), 1);
      const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      const unknown = () => es256({ alg: 'ES256', typ: 'JWT', kid: `unknown-${randomUUID()}` }, claims(user.id), attacker);

      for (let i = 0; i < 5; i += 1) await assertRefused(limited.verify(unknown()), INVALID, 'unknown kid');
      assert.equal(counter.calls(), 1, 'no refetch within jwksMinRefetchSeconds of the last fetch');

      clock += 31_000;
      await assertRefused(limited.verify(unknown()), INVALID, 'unknown kid after 31 s');
      assert.equal(counter.calls(), 2, 'one refetch once the interval has passed');
      for (let i = 0; i < 5; i += 1) await assertRefused(limited.verify(unknown()), INVALID, 'unknown kid');
      assert.equal(counter.calls(), 2);

      clock += 31_000;
      const concurrent = await Promise.allSettled(Array.from({ length: 10 }, () => limited.verify(unknown())));
      assert.ok(
        concurrent.every(
          (result) => result.status === 'rejected' && result.reason instanceof VerifyError && result.reason.code === 'invalid_token',
        ),
      );
      assert.equal(counter.calls(), 3, 'ten concurrent unknown kids share one fetch');
      // Known kids keep verifying from the cache meanwhile.
      assert.equal((await limited.verify(user.tokens.access_token)).id, user.id);
      assert.equal(counter.calls(), 3);
      // After jwksMaxAgeSeconds (300 s by default) even a known kid refetches, once.
      clock += 301_000;
      assert.equal((await limited.verify(user.tokens.access_token)).id, user.id);
      assert.equal((await limited.verify(user.tokens.access_token)).id, user.id);
      assert.equal(counter.calls(), 4);
    });

    it('a JWKS that cannot be had fails closed with invalid_token', async () => {
      const token = user.tokens.access_token;
      const closedPort = await freePort();
      await assertRefused(
        createVerifier({ jwksUrl: `http://127.0.0.1:${closedPort}/.well-known/jwks.json` }).verify(token),
        INVALID,
        'connection refused',
      );
      await assertRefused(createVerifier({ jwksUrl: 'not a url' }).verify(token), INVALID, 'invalid URL');
      await assertRefused(
        createVerifier({
          jwksUrl,
          fetch: () => {
            throw new TypeError('fetch exploded synchronously');
          },
        }).verify(token),
        INVALID,
        'fetch throwing',
      );
      const bodies: [string, number, string][] = [
        ['500', 500, '{"keys":[]}'],
        ['HTML', 200, '<html>maintenance</html>'],
        ['keys not a list', 200, '{"keys":"nope"}'],
        ['null', 200, 'null'],
        ['empty set', 200, '{"keys":[]}'],
      ];
      for (const [what, status, body] of bodies) {
        const host = await fakeHost((_request, response) => {
          response.writeHead(status, { 'content-type': 'application/json' });
          response.end(body);
        });
        try {
          await assertRefused(createVerifier({ jwksUrl: host.url }).verify(token), INVALID, `JWKS host answering ${what}`);
          assert.equal(host.hits(), 1);
        } finally {
          await host.close();
        }
      }
    });

    it('after a failed JWKS fetch it recovers once the JWKS answers again (after jwksMinRefetchSeconds)', async () => {
      let clock = Date.now();
      let down = true;
      const upstream = await (await fetch(jwksUrl)).text();
      const host = await fakeHost((_request, response) => {
        response.writeHead(down ? 503 : 200, { 'content-type': 'application/json' });
        response.end(down ? '{"detail":"starting"}' : upstream);
      });
      try {
        const recovering = createVerifier({ jwksUrl: host.url, now: () => clock });
        await assertRefused(recovering.verify(user.tokens.access_token), INVALID, 'JWKS down');
        down = false;
        clock += 31_000;
        assert.equal((await recovering.verify(user.tokens.access_token)).id, user.id, 'accepted once the JWKS answers');
        assert.equal(host.hits(), 2);
      } finally {
        await host.close();
      }
    });

    it('a JWKS host that never answers makes verification fail closed in bounded time', async () => {
      const host = await fakeHost(() => {
        // Accept the request and never answer.
      });
      try {
        await within(
          assertRefused(createVerifier({ jwksUrl: host.url }).verify(user.tokens.access_token), INVALID, 'hanging JWKS host'),
          5_000,
          'verification against a JWKS host that never answers',
        );
      } finally {
        await host.close();
      }
    });

    it('a JWKS never supplies an HMAC key, nor a key of another algorithm', async () => {
      const secret = 'attacker-chosen-secret-attacker-chosen';
      const jwk = await publicJwk();
      const host = await fakeHost((_request, response) => {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(
          JSON.stringify({
            keys: [
              { kty: 'oct', k: Buffer.from(secret).toString('base64url'), kid: 'oct-key', alg: 'HS256', use: 'sig' },
              { kty: 'oct', k: Buffer.from(secret).toString('base64url'), kid: 'oct-es', alg: 'ES256', use: 'sig' },
              { ...jwk, kid: 'relabelled', alg: algorithm === 'ES256' ? 'RS256' : 'ES256' },
            ],
          }),
        );
      });
      try {
        const hostile = createVerifier({ jwksUrl: host.url });
        await assertRefused(
          hostile.verify(hs256({ alg: 'HS256', typ: 'JWT', kid: 'oct-key' }, claims(user.id), secret)),
          INVALID,
          'oct key from the JWKS',
        );
        await assertRefused(
          hostile.verify(hs256({ alg: 'ES256', typ: 'JWT', kid: 'oct-es' }, claims(user.id), secret)),
          INVALID,
          'oct key labelled ES256',
        );
        // The genuine token under the relabelled key: the key must not be used for another algorithm.
        const [, payload, signature] = segments(user.tokens.access_token);
        const relabelled = `${b64({ alg: algorithm === 'ES256' ? 'RS256' : 'ES256', typ: 'JWT', kid: 'relabelled' })}.${payload}.${signature}`;
        await assertRefused(hostile.verify(relabelled), INVALID, 'key relabelled with another alg');
      } finally {
        await host.close();
      }
    });

    // Last in the suite: it rotates this app's keys.
    it('after a rotation it accepts tokens of the new key (refetch on the unknown kid) and of the old one', async () => {
      let clock = Date.now();
      const counter = countingFetch();
      const rotating = createVerifier({ jwksUrl, fetch: counter.fetch, now: () => clock });
      const tokenA = (await login(t.app, user)).access_token;
      const kidA = decode(segments(tokenA)[0]).kid;
      assert.equal((await rotating.verify(tokenA)).id, user.id);
      assert.equal(counter.calls(), 1);

      rotateKeys(t.settings);
      let tokenB = '';
      await waitFor(
        'gatepass to sign with the new key',
        async () => {
          tokenB = (await login(t.app, user)).access_token;
          return decode(segments(tokenB)[0]).kid !== kidA;
        },
        5_000,
        100,
      );

      clock += 31_000; // past jwksMinRefetchSeconds since the first fetch
      assert.equal((await rotating.verify(tokenB)).id, user.id, 'token of the new key');
      assert.equal(counter.calls(), 2, 'the unknown kid caused one refetch');
      assert.equal((await rotating.verify(tokenA)).id, user.id, 'token of the rotated-out key');
      assert.equal((await rotating.verify(tokenB)).id, user.id);
      assert.equal(counter.calls(), 2);

      // A verifier that never saw the old JWKS gets both keys in one fetch.
      const fresh = countingFetch();
      const newcomer = createVerifier({ jwksUrl, fetch: fresh.fetch });
      assert.equal((await newcomer.verify(tokenA)).id, user.id);
      assert.equal((await newcomer.verify(tokenB)).id, user.id);
      assert.equal(fresh.calls(), 1);
    });
  });
}

describe('createVerifier with the shared secret (HS256 gatepass)', () => {
  let t: TestApp;
  let user: Awaited<ReturnType<typeof signUp>>;
  before(async () => {
    t = await createTestApp('sqlite');
    user = await signUp(t.app);
  });
  after(() => t.close());

  it('accepts genuine tokens and refuses tokens signed with the refresh secret', async () => {
    const verifier = createVerifier({ secret: t.settings.jwt.accessSecret });
    const verified = await verifier.verify(user.tokens.access_token);
    assert.equal(verified.id, user.id);
    assert.equal(verified.role, 'student');
    await assertRefused(
      verifier.verify(hs256({ alg: 'HS256', typ: 'JWT' }, claims(user.id), t.settings.jwt.refreshSecret)),
      INVALID,
      'refresh secret',
    );
    await assertRefused(verifier.verify(user.tokens.refresh_token), INVALID, 'refresh token');
    await assertRefused(
      verifier.verify(hs256({ alg: 'HS256', typ: 'JWT' }, claims(user.id), `${t.settings.jwt.accessSecret}x`)),
      INVALID,
      'other secret',
    );
    await assertRefused(
      verifier.verify(hs256({ alg: 'HS512', typ: 'JWT' }, claims(user.id), t.settings.jwt.accessSecret)),
      INVALID,
      'HS512 header, HS256 MAC',
    );
    const wrongSecretVerifier = createVerifier({ secret: t.settings.jwt.refreshSecret });
    await assertRefused(wrongSecretVerifier.verify(user.tokens.access_token), INVALID, 'verifier holding the refresh secret');
  });

  it('refuses to be created without exactly one of jwksUrl and secret, or with algorithms that do not fit', () => {
    assert.throws(() => createVerifier({}), /jwksUrl or secret is required/);
    assert.throws(
      () => createVerifier({ jwksUrl: 'http://127.0.0.1:1/.well-known/jwks.json', secret: t.settings.jwt.accessSecret }),
      /either jwksUrl or secret/,
    );
    assert.throws(() => createVerifier({ secret: t.settings.jwt.accessSecret, algorithms: ['ES256'] }), /secret verifies only/);
  });

  it('checks iss and aud when configured', async (context) => {
    const issuer = 'https://auth.example.test';
    const audience = 'projects-service';
    const scoped = await createTestApp('sqlite', { JWT_ISSUER: issuer, JWT_AUDIENCE: audience });
    context.after(() => scoped.close());
    const scopedUser = await signUp(scoped.app);
    const token = scopedUser.tokens.access_token;
    const payload = decode(segments(token)[1]);
    assert.equal(payload.iss, issuer);
    assert.equal(payload.aud, audience);
    const secret = scoped.settings.jwt.accessSecret;

    assert.equal((await createVerifier({ secret, issuer, audience }).verify(token)).id, scopedUser.id);
    assert.equal((await createVerifier({ secret }).verify(token)).id, scopedUser.id, 'unchecked when not configured');
    await assertRefused(createVerifier({ secret, issuer: 'https://evil.example.test', audience }).verify(token), INVALID, 'wrong issuer');
    await assertRefused(createVerifier({ secret, issuer, audience: 'billing-service' }).verify(token), INVALID, 'wrong audience');
    const bare = hs256({ alg: 'HS256', typ: 'JWT' }, claims(scopedUser.id), secret);
    await assertRefused(createVerifier({ secret, issuer }).verify(bare), INVALID, 'no iss');
    await assertRefused(createVerifier({ secret, audience }).verify(bare), INVALID, 'no aud');
    const listed = hs256({ alg: 'HS256', typ: 'JWT' }, claims(scopedUser.id, { iss: issuer, aud: ['other', audience] }), secret);
    assert.equal((await createVerifier({ secret, issuer, audience }).verify(listed)).id, scopedUser.id, 'aud as a list containing ours');
  });
});
