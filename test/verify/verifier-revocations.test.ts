import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createVerifier, VerifyError, type Verifier } from '../../src/verify/index.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { post, signUp } from '../helpers/client.js';
import { waitFor } from '../helpers/instances.js';
import { claims, hs256, listen } from '../helpers/jwt.js';

/**
 * `gatepass/verify` following the revocation feed, in process: against the real server (an access
 * token revoked by RFC 7009, a logout), and against a hostile or silent stand-in of the feed (what a
 * verifier must do when the feed misbehaves: skip what it cannot read, fail closed when silent).
 */

async function refusal(verifier: Verifier, token: string): Promise<string | undefined> {
  try {
    await verifier.verify(token);
    return undefined;
  } catch (error) {
    assert.ok(error instanceof VerifyError, String(error));
    return error.code;
  }
}

describe('gatepass/verify follows the feed of a real server', () => {
  let t: TestApp;
  let verifier: Verifier;
  let basic: string;

  before(async () => {
    t = await createTestApp('sqlite');
    const base = await listen(t);
    const { clientId, clientSecret } = await t.app.gatepass.serviceCredentials.create('verifier-test');
    basic = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`;
    verifier = createVerifier({
      secret: t.settings.jwt.accessSecret,
      revocations: { url: `${base}/auth/revocations`, clientId, clientSecret },
    });
    await verifier.ready();
  });

  after(async () => {
    await verifier.close();
    await t.close();
  });

  it('an access token revoked through /oauth/revoke is refused with token_revoked; another token of its session is not', async () => {
    const user = await signUp(t.app);
    const second = await post(t.app, '/auth/refresh', { refresh_token: user.tokens.refresh_token });
    assert.equal(second.statusCode, 200, second.body);
    const sibling = second.json<{ access_token: string }>().access_token;
    assert.equal((await verifier.verify(user.tokens.access_token)).id, user.id);

    const revoked = await t.app.inject({
      method: 'POST',
      url: '/oauth/revoke',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      payload: `token=${user.tokens.access_token}`,
    });
    assert.equal(revoked.statusCode, 200, revoked.body);
    await waitFor(
      'the verifier to refuse the revoked token',
      async () => (await refusal(verifier, user.tokens.access_token)) === 'token_revoked',
      2000,
    );
    assert.equal((await verifier.verify(sibling)).id, user.id, 'the other access token of the session still works');
  });

  it('a logout refuses the session’s tokens, with the server’s 401 body', async () => {
    const user = await signUp(t.app);
    assert.equal((await post(t.app, '/auth/logout', undefined, user.tokens.access_token)).statusCode, 204);
    await waitFor(
      'the verifier to refuse the logged-out token',
      async () => (await refusal(verifier, user.tokens.access_token)) === 'token_revoked',
      2000,
    );
    const error = await verifier.verify(user.tokens.access_token).catch((caught: unknown) => caught);
    assert.ok(error instanceof VerifyError);
    assert.deepEqual([error.status, error.body], [401, { detail: 'Token has been revoked', code: 'token_revoked' }]);
  });
});

/** A stand-in feed: each connection gets `script(response)`; it records the requests it saw. */
async function fakeFeed(script: (response: ServerResponse, url: URL) => void): Promise<{ url: string; requests: URL[]; server: Server }> {
  const requests: URL[] = [];
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    requests.push(url);
    script(response, url);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/auth/revocations`, requests, server };
}

function stop(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

describe('gatepass/verify against a hostile or silent feed', () => {
  const secret = randomBytes(32).toString('hex');
  // Silent: the warnings of reconnections are expected here.
  const credentials = { clientId: 'svc_test', clientSecret: 'x'.repeat(43), log: { warn: () => {}, info: () => {} } };

  it('skips entries it cannot read, applies the good ones around them, and resumes from the last cursor', async () => {
    const revokedSid = randomUUID();
    const feed = await fakeFeed((response, url) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      if (url.searchParams.has('after')) {
        response.write('event: heartbeat\ndata: {}\n\n');
        return;
      }
      const until = new Date(Date.now() + 60_000).toISOString();
      for (const data of [
        '{not json',
        JSON.stringify({ kind: 'everything', until }),
        JSON.stringify({ kind: 'user', sub: 'admin', before: until, until }),
        JSON.stringify({ kind: 'session', sid: 'x'.repeat(500), until }),
        JSON.stringify({ kind: 'session', sid: randomUUID(), until: 'never' }),
        JSON.stringify({ kind: 'session', sid: revokedSid, until }),
      ])
        response.write(`id: 7\nevent: revocation\ndata: ${data}\n\n`);
      response.write('event: heartbeat\ndata: {}\n\n');
      // Then the connection drops: the verifier must come back with ?after=7.
      setTimeout(() => response.destroy(), 50);
    });
    const verifier = createVerifier({ secret, revocations: { url: feed.url, ...credentials }, leewaySeconds: 30 });
    try {
      await verifier.ready();
      assert.equal(await refusal(verifier, hs256({ alg: 'HS256', typ: 'JWT' }, claims(5, { sid: revokedSid }), secret)), 'token_revoked');
      assert.equal(await refusal(verifier, hs256({ alg: 'HS256', typ: 'JWT' }, claims(5), secret)), undefined, 'other tokens pass');
      await waitFor('a reconnection from the cursor', async () => feed.requests.some((url) => url.searchParams.get('after') === '7'), 3000);
      assert.equal(feed.requests[0]?.searchParams.has('after'), false, 'the first connection starts from the beginning');
    } finally {
      await verifier.close();
      await stop(feed.server);
    }
  });

  it('refuses every token with 503 service_unavailable once the feed is silent past the bound, and accepts again when it speaks', async () => {
    let speaking = true;
    const open = new Set<ServerResponse>();
    const feed = await fakeFeed((response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      open.add(response);
      if (speaking) response.write('event: heartbeat\ndata: {}\n\n');
    });
    const beat = setInterval(() => {
      if (speaking) for (const response of open) response.write('event: heartbeat\ndata: {}\n\n');
    }, 200);
    const verifier = createVerifier({ secret, revocations: { url: feed.url, ...credentials, maxSilenceSeconds: 1 } });
    const token = hs256({ alg: 'HS256', typ: 'JWT' }, claims(9), secret);
    try {
      await verifier.ready();
      assert.equal(await refusal(verifier, token), undefined);
      speaking = false;
      await waitFor('the verifier to fail closed', async () => (await refusal(verifier, token)) === 'service_unavailable', 3000);
      const error = await verifier.verify(token).catch((caught: unknown) => caught);
      assert.ok(error instanceof VerifyError);
      assert.deepEqual(
        [error.status, error.body],
        [503, { detail: 'Revocation state unavailable; try again shortly', code: 'service_unavailable' }],
      );
      speaking = true;
      await waitFor('the verifier to accept again', async () => (await refusal(verifier, token)) === undefined, 3000);
    } finally {
      clearInterval(beat);
      await verifier.close();
      await stop(feed.server);
    }
  });

  it('with whenSilent: accept, a silent feed is logged once and tokens are still verified', async () => {
    const feed = await fakeFeed((response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write('event: heartbeat\ndata: {}\n\n');
    });
    const warnings: string[] = [];
    const log = { warn: (message: string) => warnings.push(message), info: () => {} };
    const verifier = createVerifier({
      secret,
      revocations: { url: feed.url, ...credentials, maxSilenceSeconds: 1, whenSilent: 'accept', log },
    });
    try {
      await verifier.ready();
      await new Promise((resolve) => setTimeout(resolve, 1300));
      for (let i = 0; i < 3; i++) assert.equal(await refusal(verifier, hs256({ alg: 'HS256', typ: 'JWT' }, claims(3), secret)), undefined);
      assert.equal(warnings.filter((warning) => warning.includes('accepting tokens')).length, 1, warnings.join('\n'));
      assert.equal(await refusal(verifier, hs256({ alg: 'HS256', typ: 'JWT' }, claims(3), 'another secret'.repeat(3))), 'invalid_token');
    } finally {
      await verifier.close();
      await stop(feed.server);
    }
  });

  it('a feed that refuses the credential never makes the verifier current: every token gets 503', async () => {
    const feed = await fakeFeed((response) => {
      response.writeHead(401, { 'content-type': 'application/json' });
      response.end('{"detail":"Invalid service credentials","code":"invalid_client"}');
    });
    const verifier = createVerifier({ secret, revocations: { url: feed.url, ...credentials } });
    try {
      assert.equal(await refusal(verifier, hs256({ alg: 'HS256', typ: 'JWT' }, claims(4), secret)), 'service_unavailable');
      await waitFor('a retry', async () => feed.requests.length >= 2, 3000);
    } finally {
      await verifier.close();
      await stop(feed.server);
    }
  });
});
