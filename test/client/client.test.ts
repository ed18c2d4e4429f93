import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import {
  GatepassApiError,
  GatepassClient,
  GatepassNetworkError,
  isMfaChallenge,
  type AuthEvent,
  type FetchFunction,
  type GatepassClientOptions,
  type LoginResult,
  type User,
} from '../../src/client/index.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { claimsOf, newCredentials } from '../helpers/client.js';
import { REPO_ROOT, freePort, waitFor } from '../helpers/instances.js';

const ACCESS_SECONDS = 60;
/** The server accepts a token this long past its `exp` (API.md: small leeway, 30 s). */
const LEEWAY_SECONDS = 30;
const DAY_MS = 86_400_000;

/** login()'s answer for an account without a second factor: the user, never an MfaChallenge. */
function userOf(result: LoginResult): User {
  assert.ok(!isMfaChallenge(result), 'no second factor was asked for');
  return result;
}

interface Call {
  method: string;
  path: string;
  authorization: string | null;
  status?: number;
  code?: string;
}

/** Node's fetch, recording every request the client makes and the answer it got. */
function recordingFetch(rewrite?: (path: string, headers: Headers) => void): {
  fetch: FetchFunction;
  calls: Call[];
  count(path: string): number;
} {
  const calls: Call[] = [];
  return {
    calls,
    count: (pathname) => calls.filter((call) => call.path === pathname).length,
    fetch: async (input, init) => {
      const headers = new Headers(init.headers);
      const { pathname } = new URL(input);
      rewrite?.(pathname, headers);
      const call: Call = { method: init.method ?? 'GET', path: pathname, authorization: headers.get('authorization') };
      calls.push(call);
      const response = await fetch(input, { ...init, headers });
      call.status = response.status;
      if (!response.ok) {
        const body: unknown = await response
          .clone()
          .json()
          .catch(() => undefined);
        if (typeof body === 'object' && body !== null && 'code' in body && typeof body.code === 'string') call.code = body.code;
      }
      return response;
    },
  };
}

describe('gatepass/client against a real server (body mode, Node fetch)', () => {
  let t: TestApp;
  let baseUrl: string;
  /** The server's clock; tests only move it forward. */
  let serverClock = Date.now();
  const clients: GatepassClient[] = [];

  before(async () => {
    t = await createTestApp('sqlite', { ACCESS_TOKEN_EXPIRE_MINUTES: String(ACCESS_SECONDS / 60) }, { now: () => serverClock });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    baseUrl = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  });
  afterEach(() => {
    for (const client of clients.splice(0)) client.dispose();
  });
  after(() => t.close());

  function newClient(options: GatepassClientOptions = {}): { client: GatepassClient; events: AuthEvent[] } {
    const client = new GatepassClient({ baseUrl, ...options });
    clients.push(client);
    const events: AuthEvent[] = [];
    client.subscribe((event) => events.push(event));
    return { client, events };
  }

  async function signedIn(options: GatepassClientOptions = {}) {
    const credentials = newCredentials();
    const recorder = recordingFetch();
    const { client, events } = newClient({ fetch: recorder.fetch, ...options });
    await client.register(credentials);
    const user = userOf(await client.login(credentials));
    return { client, events, recorder, credentials, user };
  }

  /** Moves the server past the access token's expiry and leeway: it answers 401 token_expired. */
  function expireAccessTokensOnServer(): void {
    serverClock += (ACCESS_SECONDS + LEEWAY_SECONDS + 5) * 1000;
  }

  async function statusOf(token: string): Promise<{ status: number; code?: string }> {
    const response = await fetch(`${baseUrl}/users/me`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await response.json()) as { code?: string };
    return { status: response.status, ...(body.code !== undefined && { code: body.code }) };
  }

  it('registers, logs in, reads /users/me and logs out, with events and state', async () => {
    const credentials = newCredentials();
    const recorder = recordingFetch();
    const { client, events } = newClient({ fetch: recorder.fetch });
    assert.equal(client.mode, 'body');

    const created = await client.register({ ...credentials, full_name: 'Ada Client' });
    assert.equal(created.email, credentials.email);
    assert.equal(created.role, 'student');
    assert.equal(client.isSignedIn, false);

    const user = userOf(await client.login(credentials));
    assert.equal(user.id, created.id);
    assert.equal(user.full_name, 'Ada Client');
    assert.equal(client.isSignedIn, true);
    const token = client.accessToken;
    assert.ok(token !== null);
    assert.equal(claimsOf(token).sub, String(created.id));
    const expiresAt = client.expiresAt;
    assert.ok(expiresAt !== null && Math.abs(expiresAt - (Date.now() + ACCESS_SECONDS * 1000)) < 5000, `expiresAt ${expiresAt}`);
    assert.deepEqual(
      events.map((event) => event.type),
      ['signed_in'],
    );
    assert.equal(events[0]?.type === 'signed_in' && events[0].via, 'login');

    assert.equal((await client.me()).email, credentials.email);
    const login = recorder.calls.find((call) => call.path === '/auth/login');
    assert.equal(login?.authorization, null, 'login sends no token');
    assert.equal(
      recorder.calls.filter((call) => call.path === '/users/me').every((call) => call.authorization === `Bearer ${token}`),
      true,
    );

    await client.logout();
    assert.equal(client.isSignedIn, false);
    assert.equal(client.accessToken, null);
    assert.deepEqual(events.at(-1), { type: 'signed_out', reason: 'logout' });
    assert.equal(recorder.calls.at(-1)?.path, '/auth/logout');
    assert.equal(recorder.calls.at(-1)?.status, 204);
    // The server ended the session: the old token is refused, and the client sends none any more.
    assert.deepEqual(await statusOf(token), { status: 401, code: 'token_revoked' });
    await assert.rejects(
      client.me(),
      (error: unknown) => error instanceof GatepassApiError && error.status === 401 && error.code === 'not_authenticated',
    );
  });

  it('a wrong password is a typed error carrying status 401, code invalid_credentials and the detail', async () => {
    const credentials = newCredentials();
    const { client, events } = newClient();
    await client.register(credentials);
    await assert.rejects(client.login({ email: credentials.email, password: `${credentials.password}x` }), (error: unknown) => {
      assert.ok(error instanceof GatepassApiError, String(error));
      assert.equal(error.status, 401);
      assert.equal(error.code, 'invalid_credentials');
      assert.equal(error.detail, 'Incorrect email or password');
      assert.equal(error.message, 'Incorrect email or password');
      return true;
    });
    assert.equal(client.isSignedIn, false);
    assert.deepEqual(events, []);
  });

  it('other refusals are typed too: 409 on a taken email, 422 with the issues of a short password', async () => {
    const credentials = newCredentials();
    const { client } = newClient();
    await client.register(credentials);
    await assert.rejects(client.register(credentials), (error: unknown) => {
      assert.ok(error instanceof GatepassApiError);
      assert.deepEqual([error.status, error.code, error.detail], [409, 'email_taken', 'Email already registered']);
      return true;
    });
    await assert.rejects(client.register({ email: newCredentials().email, password: 'short' }), (error: unknown) => {
      assert.ok(error instanceof GatepassApiError);
      assert.deepEqual([error.status, error.code], [422, 'validation_error']);
      assert.deepEqual(
        error.issues.map((issue) => issue.loc),
        [['body', 'password']],
      );
      assert.match(error.message, /^password: String should have at least 8 characters$/);
      return true;
    });
  });

  it('refreshes proactively before a request once the token is within the margin of expiry (injected clock)', async () => {
    let clientClock = Date.now();
    const { client, events, recorder } = await signedIn({ now: () => clientClock, autoRefresh: false });
    const first = client.accessToken;
    await client.me();
    clientClock += (ACCESS_SECONDS - 31) * 1000; // 31 s left: outside the 30 s margin
    await client.me();
    assert.equal(recorder.count('/auth/refresh'), 0);

    clientClock += 2000; // 29 s left: inside the margin
    const beforeRefresh = recorder.calls.length;
    await client.me();
    assert.equal(recorder.count('/auth/refresh'), 1);
    const [refresh, me] = recorder.calls.slice(beforeRefresh);
    assert.equal(refresh?.path, '/auth/refresh', 'the refresh goes first');
    assert.equal(refresh.status, 200);
    assert.notEqual(client.accessToken, first);
    assert.equal(me?.authorization, `Bearer ${client.accessToken}`, 'the request carries the new token');
    assert.equal(me.status, 200);
    assert.deepEqual(
      events.map((event) => event.type),
      ['signed_in', 'refreshed'],
    );
    // The refreshed token is good for a full lifetime again.
    await client.me();
    assert.equal(recorder.count('/auth/refresh'), 1);
  });

  it('refreshes on its own timer before expiry, with no request made', async () => {
    // A margin of 59 s on a 60 s token: the timer fires about a second after each refresh.
    const { client, events, recorder } = await signedIn({ refreshMarginSeconds: ACCESS_SECONDS - 1 });
    const first = client.accessToken;
    const callsAfterLogin = recorder.calls.length;
    await waitFor('two timer refreshes', async () => events.filter((event) => event.type === 'refreshed').length >= 2, 8000, 50);
    client.dispose();
    assert.deepEqual(
      recorder.calls.slice(callsAfterLogin).map((call) => `${call.path} ${call.status}`),
      ['/auth/refresh 200', '/auth/refresh 200'],
    );
    assert.deepEqual(
      events.map((event) => event.type),
      ['signed_in', 'refreshed', 'refreshed'],
    );
    assert.notEqual(client.accessToken, first);
    assert.equal((await statusOf(client.accessToken ?? '')).status, 200);
  });

  it('refreshes once and retries once when the server answers 401 token_expired', async () => {
    const { client, events, recorder } = await signedIn();
    const stale = client.accessToken;
    expireAccessTokensOnServer();
    const callsBefore = recorder.calls.length;
    const response = await client.fetch('/users/me');
    assert.equal(response.status, 200);
    assert.deepEqual(
      recorder.calls.slice(callsBefore).map((call) => [call.path, call.status, call.code]),
      [
        ['/users/me', 401, 'token_expired'],
        ['/auth/refresh', 200, undefined],
        ['/users/me', 200, undefined],
      ],
    );
    assert.notEqual(client.accessToken, stale);
    assert.equal(events.at(-1)?.type, 'refreshed');
  });

  it('retries only once: when the retry is refused too, that answer is returned', async () => {
    let stale = '';
    // The transport keeps presenting the expired token on /users/me, whatever the client attaches.
    const recorder = recordingFetch((pathname, headers) => {
      if (pathname === '/users/me' && stale !== '') headers.set('authorization', `Bearer ${stale}`);
    });
    const credentials = newCredentials();
    const { client } = newClient({ fetch: recorder.fetch });
    await client.register(credentials);
    await client.login(credentials);
    stale = client.accessToken ?? '';
    expireAccessTokensOnServer();
    const callsBefore = recorder.calls.length;
    const response = await client.fetch('/users/me');
    assert.equal(response.status, 401);
    assert.equal(((await response.json()) as { code: string }).code, 'token_expired');
    assert.deepEqual(
      recorder.calls.slice(callsBefore).map((call) => call.path),
      ['/users/me', '/auth/refresh', '/users/me'],
    );
    assert.equal(client.isSignedIn, true, 'the refresh itself succeeded');
  });

  it('single flight: 50 concurrent requests with a token the server finds expired make exactly one refresh', async () => {
    const { client, recorder } = await signedIn();
    expireAccessTokensOnServer();
    const callsBefore = recorder.calls.length;
    const responses = await Promise.all(Array.from({ length: 50 }, () => client.fetch('/users/me')));
    assert.deepEqual(
      responses.map((response) => response.status),
      Array.from({ length: 50 }, () => 200),
    );
    const calls = recorder.calls.slice(callsBefore);
    assert.equal(calls.filter((call) => call.path === '/auth/refresh').length, 1);
    assert.equal(calls.filter((call) => call.path === '/users/me' && call.status === 200).length, 50);
    assert.ok(calls.filter((call) => call.path === '/users/me' && call.status === 401).every((call) => call.code === 'token_expired'));
  });

  it('single flight: 50 concurrent requests with a token the client finds expired wait for one refresh', async () => {
    let clientClock = Date.now();
    const { client, recorder } = await signedIn({ now: () => clientClock, autoRefresh: false });
    clientClock += (ACCESS_SECONDS + 1) * 1000;
    const callsBefore = recorder.calls.length;
    const responses = await Promise.all(Array.from({ length: 50 }, () => client.fetch('/users/me')));
    assert.equal(responses.filter((response) => response.status === 200).length, 50);
    const calls = recorder.calls.slice(callsBefore);
    assert.equal(calls[0]?.path, '/auth/refresh');
    assert.equal(calls.filter((call) => call.path === '/auth/refresh').length, 1);
    assert.equal(calls.filter((call) => call.path === '/users/me').length, 50, 'no request went out with the old token');
    assert.ok(calls.slice(1).every((call) => call.authorization === `Bearer ${client.accessToken}`));
  });

  it("an unreachable server is a GatepassNetworkError; the caller's abort stays an AbortError", async () => {
    const nowhere = new GatepassClient({ baseUrl: `http://127.0.0.1:${await freePort()}` });
    clients.push(nowhere);
    await assert.rejects(
      nowhere.login(newCredentials()),
      (error: unknown) =>
        error instanceof GatepassNetworkError && /ECONNREFUSED|fetch failed/.test(`${error.message} ${String(error.cause)}`),
    );
    const { client } = await signedIn();
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(client.fetch('/users/me', { signal: controller.signal }), { name: 'AbortError' });
  });

  it('fetch sends the token only to its server, never to another origin', async () => {
    const { client, recorder } = await signedIn();
    const callsBefore = recorder.calls.length;
    await assert.rejects(client.fetch('https://elsewhere.example/users/me'), TypeError);
    await assert.rejects(client.fetch('//elsewhere.example/users/me'), TypeError);
    assert.equal(recorder.calls.length, callsBefore);
    assert.equal((await client.fetch(new URL('/users/me', baseUrl))).status, 200);
  });

  it('sessions lists the current one; revoking another ends it there, revoking the current one signs out', async () => {
    const first = await signedIn();
    const second = newClient();
    await second.client.login(first.credentials);
    const sessions = await first.client.sessions();
    assert.equal(sessions.length, 2);
    assert.equal(sessions.filter((session) => session.current).length, 1);
    const mine = sessions.find((session) => session.current);
    const other = sessions.find((session) => !session.current);
    assert.ok(mine !== undefined && other !== undefined);
    assert.equal(claimsOf(first.client.accessToken ?? '').sid, mine.id);

    await first.client.revokeSession(other.id);
    // The other client's token is refused; its one refresh is refused too: it is signed out.
    const response = await second.client.fetch('/users/me');
    assert.equal(response.status, 401);
    assert.equal(second.client.isSignedIn, false);
    const ended = second.events.at(-1);
    assert.equal(ended?.type === 'signed_out' && ended.reason, 'session_ended');

    await first.client.revokeSession(mine.id);
    assert.equal(first.client.isSignedIn, false);
    assert.deepEqual(first.events.at(-1), { type: 'signed_out', reason: 'logout' });
  });

  it('logoutAll ends every session of the user', async () => {
    const first = await signedIn();
    const second = newClient();
    await second.client.login(first.credentials);
    const secondToken = second.client.accessToken ?? '';
    await first.client.logoutAll();
    assert.deepEqual(first.events.at(-1), { type: 'signed_out', reason: 'logout_all' });
    assert.equal(first.client.isSignedIn, false);
    assert.deepEqual(await statusOf(secondToken), { status: 401, code: 'token_revoked' });
  });

  // Moves the server clock by days: keep it last in this suite.
  it('signs out with reason session_ended when the server refuses the refresh (refresh token expired)', async () => {
    const { client, events, recorder } = await signedIn();
    serverClock += 8 * DAY_MS;
    const response = await client.fetch('/users/me');
    assert.equal(response.status, 401);
    assert.equal(client.isSignedIn, false);
    const last = events.at(-1);
    assert.ok(last?.type === 'signed_out', JSON.stringify(events));
    assert.equal(last.reason, 'session_ended');
    assert.equal(last.error?.status, 401);
    assert.equal(last.error.code, 'token_expired');
    assert.equal(recorder.count('/auth/refresh'), 1);
  });
});

describe('gatepass/client packaging', () => {
  it('imports nothing but its own modules (it is bundled for browsers)', () => {
    const dir = path.join(REPO_ROOT, 'src', 'client');
    for (const file of readdirSync(dir).filter((name) => name.endsWith('.ts'))) {
      const source = readFileSync(path.join(dir, file), 'utf8');
      const specifiers = [...source.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)].map((match) => match[1]);
      for (const specifier of specifiers) assert.match(String(specifier), /^\.\/[\w-]+\.js$/, `${file} imports ${specifier}`);
      assert.doesNotMatch(source, /\b(localStorage|sessionStorage|document\.cookie)\b/, `${file} must keep tokens in memory only`);
    }
  });

  it("'gatepass/client' resolves to the build, with its types", async () => {
    const built = path.join(REPO_ROOT, 'dist', 'client', 'index.js');
    assert.ok(existsSync(built), 'dist/client/index.js is missing: run `npm run build`');
    assert.ok(existsSync(path.join(REPO_ROOT, 'dist', 'client', 'index.d.ts')));
    const specifier = 'gatepass/client';
    const module = (await import(specifier)) as Record<string, unknown>;
    assert.equal(typeof module.GatepassClient, 'function');
    assert.equal(typeof module.createClient, 'function');
    assert.equal(typeof module.GatepassApiError, 'function');
    assert.equal(import.meta.resolve(specifier), new URL(`file://${built}`).href);
  });
});
