import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { assertError, newCredentials, type Tokens } from '../helpers/client.js';

/**
 * TRUST_PROXY (issue 12, property 5): the client address that rate limits count and that sessions and
 * the audit trail record is the right-most X-Forwarded-For entry that no trusted proxy wrote — what
 * the last trusted proxy saw — never a value the client put in the header itself.
 * Addresses: 203.0.113.0/24 are real clients, 198.51.100.0/24 forged or untrusted ones (RFC 5737).
 */

const ADMIN = { email: 'admin@example.com', password: 'Adm1n-Proxy-Pass-Word' };

interface Hop {
  /** The TCP peer of gatepass (the proxy nearest to it, or a client connecting directly). */
  peer?: string;
  forwardedFor?: string;
}

function call(t: TestApp, method: 'GET' | 'POST', url: string, hop: Hop, body?: object, token?: string): Promise<LightMyRequestResponse> {
  return t.app.inject({
    method,
    url,
    remoteAddress: hop.peer ?? '127.0.0.1',
    headers: {
      ...(hop.forwardedFor !== undefined && { 'x-forwarded-for': hop.forwardedFor }),
      ...(token !== undefined && { authorization: `Bearer ${token}` }),
    },
    ...(body !== undefined && { payload: body }),
  });
}

async function registerVia(t: TestApp, hop: Hop): Promise<{ email: string; password: string; id: number }> {
  const credentials = newCredentials();
  const response = await call(t, 'POST', '/auth/register', hop, credentials);
  assert.equal(response.statusCode, 201, response.body);
  return { ...credentials, id: response.json<{ id: number }>().id };
}

async function loginVia(t: TestApp, hop: Hop, credentials: { email: string; password: string }): Promise<Tokens> {
  const response = await call(t, 'POST', '/auth/login', hop, { email: credentials.email, password: credentials.password });
  assert.equal(response.statusCode, 200, response.body);
  return response.json<Tokens>();
}

/** The `ip` the server recorded for the session of `tokens` (GET /auth/sessions). */
async function sessionIp(t: TestApp, tokens: Tokens): Promise<string | null> {
  const response = await call(t, 'GET', '/auth/sessions', {}, undefined, tokens.access_token);
  assert.equal(response.statusCode, 200, response.body);
  const current = response.json<{ ip: string | null; current: boolean }[]>().find((session) => session.current);
  assert.ok(current !== undefined, response.body);
  return current.ip;
}

describe('TRUST_PROXY=1: one proxy in front, which appends the address it saw', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp('sqlite', {
      TRUST_PROXY: '1',
      LOGIN_RATE_LIMIT_PER_MINUTE: '3',
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
    });
  });
  after(() => t.close());

  it('sessions and the audit trail record the right-most hop, not the left-most value the client forged', async () => {
    const user = await registerVia(t, { forwardedFor: '203.0.113.10' });
    const tokens = await loginVia(t, { forwardedFor: '198.51.100.66, 203.0.113.10' }, user);
    assert.equal(await sessionIp(t, tokens), '203.0.113.10');

    const admin = await loginVia(t, { forwardedFor: '203.0.113.11' }, ADMIN);
    const audit = await call(t, 'GET', `/admin/audit?user_id=${user.id}&limit=50`, {}, undefined, admin.access_token);
    assert.equal(audit.statusCode, 200, audit.body);
    const events = audit.json<{ items: { event: string; ip: string | null }[] }>().items;
    for (const { ip } of events) assert.equal(ip, '203.0.113.10');
    // The registration's verification mail is sent, and audited, in the background: its place among these varies.
    assert.deepEqual(
      events.filter(({ event }) => event !== 'email_verification_sent').map(({ event, ip }) => ({ event, ip })),
      [
        { event: 'login_success', ip: '203.0.113.10' },
        { event: 'register', ip: '203.0.113.10' },
      ],
    );
  });

  it('a client that forges a new left-most value on each attempt still spends its own rate limit', async () => {
    const attempt = (forwardedFor: string) =>
      call(t, 'POST', '/auth/login', { forwardedFor }, { email: 'nobody@example.com', password: 'whatever-password' });
    for (let i = 0; i < 3; i += 1) assert.equal((await attempt(`198.51.100.${i + 1}, 203.0.113.20`)).statusCode, 401);
    assertError(await attempt('198.51.100.99, 203.0.113.20'), 429, 'Too many requests; try again in 60 seconds', 'rate_limited');
    // Nor can a client spend another's budget by naming it: the limited address on the left is ignored.
    assert.equal((await attempt('203.0.113.20, 203.0.113.21')).statusCode, 401);
  });

  it('without X-Forwarded-For, the client is the TCP peer', async () => {
    const user = await registerVia(t, { peer: '203.0.113.40' });
    assert.equal(await sessionIp(t, await loginVia(t, { peer: '203.0.113.40' }, user)), '203.0.113.40');
  });
});

describe('TRUST_PROXY as addresses and CIDRs: only hops from those proxies are believed', () => {
  let t: TestApp;
  let user: { email: string; password: string };
  before(async () => {
    t = await createTestApp('sqlite', { TRUST_PROXY: '10.0.0.0/8, 192.0.2.7' });
    user = await registerVia(t, {});
  });
  after(() => t.close());

  const cases: { name: string; hop: Hop; client: string }[] = [
    {
      name: 'a listed proxy: the address it appended',
      hop: { peer: '192.0.2.7', forwardedFor: '198.51.100.1, 203.0.113.30' },
      client: '203.0.113.30',
    },
    {
      name: 'two proxies of the CIDR in a row: the address the outer one saw',
      hop: { peer: '10.0.0.5', forwardedFor: '198.51.100.2, 203.0.113.31, 10.9.8.7' },
      client: '203.0.113.31',
    },
    {
      name: 'an untrusted peer: its own address, whatever the header says',
      hop: { peer: '198.51.100.200', forwardedFor: '203.0.113.32' },
      client: '198.51.100.200',
    },
    {
      name: 'an untrusted hop behind a trusted proxy: the right-most untrusted one',
      hop: { peer: '10.0.0.5', forwardedFor: '203.0.113.33, 198.51.100.7' },
      client: '198.51.100.7',
    },
  ];
  for (const { name, hop, client } of cases) {
    it(name, async () => {
      assert.equal(await sessionIp(t, await loginVia(t, hop, user)), client);
    });
  }
});
