import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyRequest } from 'fastify';
import { FieldError, GatepassError } from '../../src/errors.js';
import { installErrorHandling } from '../../src/http/errors.js';
import { ADMIN_ENV, loginAdmin, signUpTeacher } from '../helpers/admin.js';
import { type Backend, createTestApp, type TestApp } from '../helpers/app.js';
import { type AuditItem, auditPage } from '../helpers/audit.js';
import { assertError, call, get, ISO_UTC, type Method, send, signUp } from '../helpers/client.js';
import { assertForbidden, assertNotAuthenticated, assertValidation } from '../helpers/responses.js';

/**
 * Service credentials (API.md "Services and token endpoints"): the admin API, the audit trail, and
 * `authenticate` with real HTTP Basic headers, on a real database. The routes that require a service
 * are others'; here the hook runs in a small app of the test's own, with gatepass's error handling.
 */

interface Created {
  name: string;
  client_id: string;
  client_secret: string;
  created_at: string;
}

interface Listed {
  name: string;
  client_id: string;
  created_at: string;
  last_used_at: string | null;
}

const CLIENT_ID = /^svc_[A-Za-z0-9_-]{22}$/;
const SECRET = /^[A-Za-z0-9_-]{43}$/;
const CREATED_KEYS = ['client_id', 'client_secret', 'created_at', 'name'];
const LISTED_KEYS = ['client_id', 'created_at', 'last_used_at', 'name'];
const BASIC_CHALLENGE = 'Basic realm="gatepass", charset="UTF-8"';

function basic(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${clientId}:${secret}`, 'utf8').toString('base64')}`;
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function defineServiceCredentialsSuite(backend: Backend): void {
  describe(`service credentials (${backend})`, () => {
    let t: TestApp;
    let admin: { id: number; token: string };
    let studentToken: string;
    let teacherToken: string;
    let clock = Date.now();
    let started: number;
    /** Every secret this suite was given: none may appear in a list or the audit trail. */
    const secrets: string[] = [];

    before(async () => {
      started = Date.now();
      // Time moves only when a test moves it (or with the real clock, whichever is later), so the
      // last-use resolution can be checked without waiting a minute.
      clock = Date.now();
      t = await createTestApp(backend, ADMIN_ENV, { now: () => Math.max(clock, Date.now()) });
      const signedIn = await loginAdmin(t.app);
      admin = { id: signedIn.id, token: signedIn.tokens.access_token };
      studentToken = (await signUp(t.app)).tokens.access_token;
      teacherToken = (await signUpTeacher(t.app, admin.token)).tokens.access_token;
    });
    after(() => t.close());

    async function create(name: string): Promise<{ raw: string; body: Created }> {
      const response = await call(t.app, 'POST', '/admin/services', { body: { name }, token: admin.token, userAgent: 'admin-console' });
      assert.equal(response.statusCode, 201, response.body);
      const body = response.json<Created>();
      secrets.push(body.client_secret);
      return { raw: response.body, body };
    }

    async function list(): Promise<{ raw: string; items: Listed[] }> {
      const response = await get(t.app, '/admin/services', admin.token);
      assert.equal(response.statusCode, 200, response.body);
      const body = response.json<{ items: Listed[] }>();
      assert.deepEqual(Object.keys(body), ['items'], response.body);
      for (const item of body.items) assert.deepEqual(Object.keys(item).sort(), LISTED_KEYS, response.body);
      return { raw: response.body, items: body.items };
    }

    function authenticate(authorization: string | undefined) {
      return t.app.gatepass.serviceCredentials.authenticate(authorization);
    }

    async function auditEvents(event: string): Promise<{ raw: string; items: AuditItem[] }> {
      const { raw, body } = await auditPage(t.app, admin.token, { event, limit: 200 });
      return { raw, items: body.items };
    }

    it('an admin creates a credential: 201 with a URL-safe client id and a 43-character secret, shown once', async () => {
      const { raw, body } = await create('projects-service');
      assert.deepEqual(Object.keys(body).sort(), CREATED_KEYS, raw);
      assert.equal(body.name, 'projects-service');
      assert.match(body.client_id, CLIENT_ID);
      assert.match(body.client_secret, SECRET);
      assert.match(body.created_at, ISO_UTC);
      const other = (await create('billing.v2_worker')).body;
      assert.notEqual(other.client_id, body.client_id);
      assert.notEqual(other.client_secret, body.client_secret);

      const { raw: listed, items } = await list();
      assert.deepEqual(
        items.map((item) => [item.name, item.client_id, item.created_at, item.last_used_at]),
        [
          ['projects-service', body.client_id, body.created_at, null],
          ['billing.v2_worker', other.client_id, other.created_at, null],
        ],
      );
      for (const secret of [body.client_secret, other.client_secret]) {
        assert.ok(!listed.includes(secret), 'the list shows a secret');
        assert.ok(!listed.includes(sha256Hex(secret)), "the list shows a secret's hash");
      }
    });

    it('stores only the SHA-256 of the secret, with the admin as creator', async () => {
      const { body } = await create('stored-hashed');
      const row = await t.app.gatepass.database.db
        .selectFrom('service_credentials')
        .selectAll()
        .where('name', '=', 'stored-hashed')
        .executeTakeFirstOrThrow();
      assert.equal(row.client_id, body.client_id);
      assert.equal(row.secret_hash, sha256Hex(body.client_secret));
      assert.equal(row.created_by, admin.id);
      assert.equal(row.created_at, Date.parse(body.created_at));
      assert.ok(!Object.values(row).includes(body.client_secret), JSON.stringify(row));
    });

    it('authenticate accepts the right Basic credential and refuses everything else, without throwing', async () => {
      const { body } = await create('auth-check');
      const found = await authenticate(basic(body.client_id, body.client_secret));
      assert.ok(found !== undefined);
      assert.deepEqual({ name: found.name, clientId: found.clientId }, { name: 'auth-check', clientId: body.client_id });
      assert.equal(typeof found.id, 'number');
      // RFC 7617: the scheme is case-insensitive. RFC 6749 §2.3.1: id and secret are form-urlencoded.
      assert.equal((await authenticate(`basic ${basic(body.client_id, body.client_secret).slice(6)}`))?.clientId, body.client_id);
      const encodedId = `%${body.client_id.charCodeAt(0).toString(16)}${body.client_id.slice(1)}`;
      assert.equal((await authenticate(basic(encodedId, body.client_secret)))?.clientId, body.client_id);

      const wrongSecret = randomBytes(32).toString('base64url');
      const refused: [string, string | undefined][] = [
        ['no header', undefined],
        ['empty header', ''],
        ['a Bearer token', `Bearer ${body.client_secret}`],
        ['the wrong secret', basic(body.client_id, wrongSecret)],
        [
          'the secret with one character changed',
          basic(body.client_id, `${body.client_secret.slice(0, -1)}${body.client_secret.endsWith('A') ? 'B' : 'A'}`),
        ],
        ['an empty secret', basic(body.client_id, '')],
        ['the secret as the id', basic(body.client_secret, body.client_id)],
        ['an unknown client id', basic(`svc_${randomBytes(16).toString('base64url')}`, body.client_secret)],
        ['an empty client id', basic('', body.client_secret)],
        ['malformed base64', 'Basic !!!not-base64!!!'],
        ['base64 with a stray character', `Basic ${Buffer.from(`${body.client_id}:${body.client_secret}`).toString('base64')}*`],
        ['no colon', `Basic ${Buffer.from(`${body.client_id}${body.client_secret}`).toString('base64')}`],
        ['no credentials after the scheme', 'Basic '],
        ['a malformed percent-escape', basic(`${body.client_id}%zz`, body.client_secret)],
        ['a lone surrogate escape', basic(body.client_id, `${body.client_secret}%ED%A0%80`)],
        [
          'bytes that are not UTF-8',
          `Basic ${Buffer.concat([Buffer.from(`${body.client_id}:`), Buffer.from([0xff, 0xfe])]).toString('base64')}`,
        ],
        ['a huge header', `Basic ${'A'.repeat(100_000)}`],
        ['a huge secret', basic(body.client_id, body.client_secret + 'x'.repeat(600))],
        ['a huge client id', basic(body.client_id + 'x'.repeat(600), body.client_secret)],
      ];
      for (const [what, header] of refused) assert.equal(await authenticate(header), undefined, what);
      // Still valid after all those attempts: failures lock nothing out.
      assert.equal((await authenticate(basic(body.client_id, body.client_secret)))?.name, 'auth-check');
    });

    it('a use is recorded as last_used_at, at most once a minute', async () => {
      const { body } = await create('last-use');
      const lastUsed = async () => (await list()).items.find((item) => item.name === 'last-use')?.last_used_at;
      assert.equal(await lastUsed(), null);
      clock = Math.max(clock, Date.now());
      assert.ok((await authenticate(basic(body.client_id, body.client_secret))) !== undefined);
      const first = await lastUsed();
      assert.ok(first !== null && first !== undefined);
      assert.match(first, ISO_UTC);
      clock += 30_000;
      assert.ok((await authenticate(basic(body.client_id, body.client_secret))) !== undefined);
      assert.equal(await lastUsed(), first, 'a second use within the minute writes nothing');
      clock += 31_000;
      assert.ok((await authenticate(basic(body.client_id, body.client_secret))) !== undefined);
      const later = await lastUsed();
      assert.ok(later !== null && later !== undefined && Date.parse(later) > Date.parse(first), `${first} → ${later}`);
    });

    it('a duplicate name answers 409 service_exists and changes nothing', async () => {
      const { body } = await create('unique-name');
      const again = await call(t.app, 'POST', '/admin/services', { body: { name: 'unique-name' }, token: admin.token });
      assertError(again, 409, 'A service credential named "unique-name" already exists', 'service_exists');
      const { items } = await list();
      assert.deepEqual(
        items.filter((item) => item.name === 'unique-name').map((item) => item.client_id),
        [body.client_id],
      );
      assert.ok((await authenticate(basic(body.client_id, body.client_secret))) !== undefined);
      // Concurrent creations of one name: exactly one wins.
      const racing = await Promise.all(
        [1, 2, 3, 4].map(() => call(t.app, 'POST', '/admin/services', { body: { name: 'raced-name' }, token: admin.token })),
      );
      assert.deepEqual(racing.map((response) => response.statusCode).sort(), [201, 409, 409, 409], racing.map((r) => r.body).join('\n'));
    });

    it('bad names answer 422 on the name field, over HTTP and from the service alike', async () => {
      const before = (await list()).items.length;
      for (const name of ['', 'x'.repeat(65), 'has space', 'slash/name', '../etc', 'ünicode', 'semi;colon', 'new\nline', 'tab\t']) {
        assertValidation(await call(t.app, 'POST', '/admin/services', { body: { name }, token: admin.token }), { loc: ['body', 'name'] });
        await assert.rejects(
          t.app.gatepass.serviceCredentials.create(name),
          (error) => error instanceof FieldError && error.loc.join('.') === 'body.name',
          JSON.stringify(name),
        );
      }
      for (const body of [{}, { name: 5 }, { name: null }])
        assertValidation(await call(t.app, 'POST', '/admin/services', { body, token: admin.token }), { loc: ['body', 'name'] });
      assert.equal((await list()).items.length, before);
      // The longest name allowed, and every allowed character.
      assert.equal((await create('x'.repeat(64))).body.name, 'x'.repeat(64));
      assert.equal((await create('Az09._-')).body.name, 'Az09._-');
    });

    it('DELETE revokes: 204, the credential stops authenticating at once, and a second DELETE answers 404', async () => {
      const { body } = await create('short-lived');
      const header = basic(body.client_id, body.client_secret);
      assert.ok((await authenticate(header)) !== undefined);
      const deleted = await send(t.app, 'DELETE', '/admin/services/short-lived', undefined, admin.token);
      assert.equal(deleted.statusCode, 204, deleted.body);
      assert.equal(deleted.body, '');
      assert.equal(await authenticate(header), undefined);
      assert.ok(!(await list()).items.some((item) => item.name === 'short-lived'));
      assertError(
        await send(t.app, 'DELETE', '/admin/services/short-lived', undefined, admin.token),
        404,
        'Service credential not found',
        'not_found',
      );
      assertError(
        await send(t.app, 'DELETE', '/admin/services/never-existed', undefined, admin.token),
        404,
        'Service credential not found',
        'not_found',
      );
      assertValidation(await send(t.app, 'DELETE', '/admin/services/bad%20name', undefined, admin.token), { loc: ['path', 'name'] });
      // The name is free again, with a new id and secret; the old secret stays refused.
      const reborn = (await create('short-lived')).body;
      assert.notEqual(reborn.client_id, body.client_id);
      assert.equal(await authenticate(header), undefined);
      assert.equal(await authenticate(basic(reborn.client_id, body.client_secret)), undefined);
      assert.ok((await authenticate(basic(reborn.client_id, reborn.client_secret))) !== undefined);
      assert.equal(await t.app.gatepass.serviceCredentials.revoke('short-lived'), true);
      assert.equal(await t.app.gatepass.serviceCredentials.revoke('short-lived'), false);
    });

    it('a revocation on one instance is honoured by another at once (nothing is cached)', async () => {
      const { body } = await create('two-instances');
      const header = basic(body.client_id, body.client_secret);
      // Warm up: a cache, if there were one, would now hold the credential.
      for (let i = 0; i < 3; i += 1) assert.ok((await authenticate(header)) !== undefined);
      await t.app.gatepass.serviceCredentials.revoke('two-instances');
      assert.equal(await authenticate(header), undefined);
    });

    const routes: { name: string; method: Method; url: string; body?: unknown }[] = [
      { name: 'POST /admin/services', method: 'POST', url: '/admin/services', body: { name: 'not-allowed' } },
      { name: 'GET /admin/services', method: 'GET', url: '/admin/services' },
      { name: 'DELETE /admin/services/{name}', method: 'DELETE', url: '/admin/services/projects-service' },
    ];

    it('students and teachers get 403 on every service route, and no token gets 401; nothing changes', async () => {
      const before = await list();
      for (const token of [studentToken, teacherToken]) {
        for (const route of routes) assertForbidden(await send(t.app, route.method, route.url, route.body, token));
      }
      for (const route of routes) assertNotAuthenticated(await send(t.app, route.method, route.url, route.body));
      assert.deepEqual((await list()).items, before.items);
    });

    it('creations and revocations are audited with the admin as actor, the name and client id, never the secret', async () => {
      const { body } = await create('audited');
      assert.equal(
        await t.app.gatepass.serviceCredentials.revoke('audited', {
          adminId: admin.id,
          client: { ip: '127.0.0.1', userAgent: 'admin-console' },
        }),
        true,
      );
      const createdEvents = await auditEvents('service_created');
      const revokedEvents = await auditEvents('service_revoked');
      for (const [events, event] of [
        [createdEvents, 'service_created'],
        [revokedEvents, 'service_revoked'],
      ] as const) {
        const item = events.items.find((candidate) => candidate.details.name === 'audited');
        assert.ok(item !== undefined, `no ${event} event: ${events.raw}`);
        assert.equal(item.event, event);
        assert.equal(item.user_id, null);
        assert.equal(item.actor_id, admin.id);
        assert.equal(item.ip, '127.0.0.1');
        assert.equal(item.user_agent, 'admin-console');
        assert.deepEqual(item.details, { name: 'audited', client_id: body.client_id });
        assert.ok(Date.parse(item.created_at) >= started - 1000);
      }
      // A revocation over HTTP is recorded too, and one from the service without an actor has none.
      await create('audited-http');
      assert.equal((await send(t.app, 'DELETE', '/admin/services/audited-http', undefined, admin.token)).statusCode, 204);
      assert.ok(
        (await auditEvents('service_revoked')).items.some((item) => item.details.name === 'audited-http' && item.actor_id === admin.id),
      );
      await t.app.gatepass.serviceCredentials.create('audited-operator');
      const operator = (await auditEvents('service_created')).items.find((item) => item.details.name === 'audited-operator');
      assert.equal(operator?.actor_id, null);
      // Nowhere in the trail, nor in the list, is a secret (or its hash) of any credential this suite made.
      const rows = await t.app.gatepass.database.db.selectFrom('audit_events').selectAll().execute();
      const trail = JSON.stringify(rows);
      const { raw: listed } = await list();
      assert.ok(secrets.length >= 10);
      for (const secret of secrets) {
        for (const [where, text] of [
          ['the audit trail', trail],
          ['the list', listed],
        ] as const) {
          assert.ok(!text.includes(secret), `${where} holds a secret`);
          assert.ok(!text.includes(sha256Hex(secret)), `${where} holds a secret's hash`);
        }
      }
      // A refused creation (a taken name, a bad one) records nothing.
      const count = (await auditEvents('service_created')).items.length;
      await call(t.app, 'POST', '/admin/services', { body: { name: 'bad name' }, token: admin.token });
      await call(t.app, 'POST', '/admin/services', { body: { name: 'audited-operator' }, token: admin.token });
      assert.equal((await auditEvents('service_created')).items.length, count);
    });

    it('requireService: a route behind it sees the service; a bad or revoked credential answers 401 invalid_client with a Basic challenge', async () => {
      const { body } = await create('hooked');
      const app = Fastify();
      installErrorHandling(app);
      app.decorateRequest('service', null);
      app.get('/feed', { onRequest: t.app.gatepass.guards.requireService }, async (request) => ({
        service: request.service?.name ?? null,
      }));
      await app.ready();
      try {
        const header = basic(body.client_id, body.client_secret);
        const ok = await app.inject({ method: 'GET', url: '/feed', headers: { authorization: header } });
        assert.equal(ok.statusCode, 200, ok.body);
        assert.deepEqual(ok.json(), { service: 'hooked' });
        for (const authorization of [undefined, basic(body.client_id, 'wrong'), 'Basic !!', `Bearer ${admin.token}`]) {
          const refused = await app.inject({ method: 'GET', url: '/feed', headers: authorization === undefined ? {} : { authorization } });
          assert.equal(refused.statusCode, 401, refused.body);
          assert.deepEqual(refused.json(), { detail: 'Invalid service credentials', code: 'invalid_client' });
          assert.equal(refused.headers['www-authenticate'], BASIC_CHALLENGE);
        }
        await t.app.gatepass.serviceCredentials.revoke('hooked');
        const revoked = await app.inject({ method: 'GET', url: '/feed', headers: { authorization: header } });
        assert.equal(revoked.statusCode, 401, revoked.body);
        assert.equal(revoked.json<{ code: string }>().code, 'invalid_client');
      } finally {
        await app.close();
      }
      await assert.rejects(
        t.app.gatepass.guards.requireService({ headers: {} } as FastifyRequest, undefined as never),
        (error) => error instanceof GatepassError && error.code === 'invalid_client',
      );
    });

    it('the OpenAPI document shows the secret in the creation answer only', async () => {
      const response = await get(t.app, '/openapi.json');
      assert.equal(response.statusCode, 200);
      const paths = response.json<{ paths: Record<string, Record<string, { tags: string[]; responses: Record<string, unknown> }>> }>()
        .paths;
      const collection = paths['/admin/services'];
      assert.ok(collection?.post !== undefined && collection.get !== undefined, JSON.stringify(Object.keys(paths)));
      assert.ok(paths['/admin/services/{name}']?.delete !== undefined);
      assert.deepEqual(collection.post.tags, ['admin']);
      assert.ok(JSON.stringify(collection.post.responses['201']).includes('client_secret'));
      assert.ok(!JSON.stringify(collection.get.responses).includes('client_secret'));
    });
  });
}
