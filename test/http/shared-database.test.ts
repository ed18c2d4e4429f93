import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { buildApp, type GatepassApp } from '../../src/http/app.js';
import { REVOCATION_POLL_MS } from '../../src/sessions/revocation-bus.js';
import { createTestApp, describePostgres, type Backend, type TestApp } from '../helpers/app.js';
import { get, login, post, signUp } from '../helpers/client.js';
import { waitFor } from '../helpers/instances.js';

/**
 * Without Redis, processes that share the database learn of each other's revocations by reading
 * the revocations table (sessions/revocation-bus.ts, DatabaseRevocationFeed): two apps on one
 * database, each with its own in-memory revocation list, as two server processes would be.
 */
function defineSharedDatabaseSuite(backend: Backend): void {
  let a: TestApp;
  let b: GatepassApp;
  const codeOf = async (app: GatepassApp, token: string) => (await get(app, '/users/me', token)).json<{ code?: string }>().code;

  before(async () => {
    a = await createTestApp(backend);
    b = await buildApp(a.settings, { cwd: a.cwd });
  });
  after(async () => {
    await b.close();
    await a.close();
  });

  it('a logout on one instance is refused by the other within about a second', async () => {
    const user = await signUp(a.app);
    assert.equal((await get(b, '/users/me', user.tokens.access_token)).statusCode, 200, 'a token of A works on B');
    assert.equal((await post(a.app, '/auth/logout', {}, user.tokens.access_token)).statusCode, 204);
    await waitFor(
      'B to refuse the logged-out token',
      async () => (await codeOf(b, user.tokens.access_token)) === 'token_revoked',
      REVOCATION_POLL_MS * 3,
    );
    const other = await login(a.app, user);
    assert.equal((await get(b, '/users/me', other.access_token)).statusCode, 200, 'a session that was not logged out still works');
  });

  it('a burst of revocations larger than one read window reaches the other instance whole', async () => {
    const user = await signUp(a.app);
    const sessions: string[] = [];
    for (let i = 0; i < 100; i++) sessions.push((await login(a.app, user)).access_token);
    for (const token of sessions) assert.equal((await post(a.app, '/auth/logout', {}, token)).statusCode, 204);
    await waitFor(
      'B to refuse all 100 logged-out tokens',
      async () => (await Promise.all(sessions.map((token) => codeOf(b, token)))).every((code) => code === 'token_revoked'),
      REVOCATION_POLL_MS * 3,
    );
  });

  it('fails closed while the revocations cannot be read, and resumes by itself', async () => {
    const user = await signUp(a.app);
    const db = a.app.gatepass.database.db;
    await sql`alter table revocations rename to revocations_away`.execute(db);
    try {
      await waitFor(
        'B to answer 503 while it cannot read revocations',
        async () => {
          const response = await get(b, '/users/me', user.tokens.access_token);
          return response.statusCode === 503 && response.json<{ code?: string }>().code === 'service_unavailable';
        },
        REVOCATION_POLL_MS * 3,
      );
    } finally {
      await sql`alter table revocations_away rename to revocations`.execute(db);
    }
    await waitFor(
      'B to serve again',
      async () => (await get(b, '/users/me', user.tokens.access_token)).statusCode === 200,
      REVOCATION_POLL_MS * 3,
    );
  });
}

describe('two instances sharing a SQLite database, no Redis', () => defineSharedDatabaseSuite('sqlite'));
describePostgres('two instances sharing a database, no Redis', () => defineSharedDatabaseSuite('postgres'));
