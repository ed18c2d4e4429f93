import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { LightMyRequestResponse } from 'fastify';
import { ConfigError, loadSettings } from '../../src/config/settings.js';
import { buildApp, type GatepassApp } from '../../src/http/app.js';
import { openDatabase } from '../../src/store/database.js';
import { createTestApp, type Backend, type TestApp } from '../helpers/app.js';
import { assertError, claimsOf, get, login, post, register, send, signUp, type Method, type Tokens } from '../helpers/client.js';

/**
 * Roles and the admin API, the audit trail, password reset through the outbox, and /metrics
 * (API.md "Roles and admin", the audit events, /auth/password/forgot|reset, /metrics). Real HTTP
 * handling over `app.inject`, a real database; the admin comes from ADMIN_EMAIL/ADMIN_PASSWORD.
 */

const ADMIN_EMAIL = 'root@example.com';
const ADMIN_PASSWORD = 'Granite-Heron-Lattice-4821-quay';
const ADMIN_ENV = { ADMIN_EMAIL, ADMIN_PASSWORD } as const;

const USER_KEYS = ['created_at', 'email', 'full_name', 'id', 'is_active', 'role'];
const PAGE_KEYS = ['items', 'limit', 'offset', 'total'];
const AUDIT_KEYS = ['actor_id', 'created_at', 'details', 'event', 'id', 'ip', 'user_agent', 'user_id'];
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** Every event of API.md's list, plus user_activated (the counterpart of user_deactivated). */
const AUDIT_EVENT_NAMES = [
  'register',
  'login_success',
  'login_failure',
  'login_locked',
  'refresh',
  'refresh_reuse_detected',
  'logout',
  'logout_all',
  'session_revoked',
  'password_changed',
  'password_reset_requested',
  'password_reset',
  'role_changed',
  'user_deactivated',
  'user_activated',
  'user_deleted',
];

const REVOKED = 'Token has been revoked';
const INVALID_REFRESH = 'Invalid refresh token';
const INCORRECT_LOGIN = 'Incorrect email or password';
const INVALID_RESET = 'Invalid or expired reset token';
const RESET_TTL_MS = 15 * 60 * 1000;
/** How long a test waits for the mail written in the background after /auth/password/forgot. */
const MAIL_WAIT_MS = 5000;

type Credentials = { email: string; password: string };
type Role = 'student' | 'teacher' | 'admin';

interface UserBody {
  id: number;
  email: string;
  full_name: string | null;
  role: string;
  is_active: boolean;
  created_at: string;
}

interface UserPage {
  items: UserBody[];
  total: number;
  limit: number;
  offset: number;
}

interface AuditItem {
  id: number;
  created_at: string;
  event: string;
  user_id: number | null;
  actor_id: number | null;
  ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown>;
}

interface AuditPage {
  items: AuditItem[];
  next_before: number | null;
}

interface ValidationItem {
  loc: (string | number)[];
  msg: string;
  type: string;
}

// ---------------------------------------------------------------------------------------------
// Requests

/** One request with the headers a real client would send: User-Agent, Bearer token, client address. */
function call(
  app: GatepassApp,
  method: Method,
  url: string,
  options: { body?: unknown; token?: string; userAgent?: string; remoteAddress?: string; authorization?: string } = {},
): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = {};
  if (options.userAgent !== undefined) headers['user-agent'] = options.userAgent;
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.authorization !== undefined) headers.authorization = options.authorization;
  return app.inject({
    method,
    url,
    headers,
    ...(options.body !== undefined && { payload: options.body as object }),
    ...(options.remoteAddress !== undefined && { remoteAddress: options.remoteAddress }),
  });
}

async function loginAs(app: GatepassApp, credentials: Credentials, userAgent: string): Promise<Tokens> {
  const response = await call(app, 'POST', '/auth/login', { body: { email: credentials.email, password: credentials.password }, userAgent });
  assert.equal(response.statusCode, 200, response.body);
  return response.json<Tokens>();
}

async function loginAdmin(app: GatepassApp): Promise<{ id: number; tokens: Tokens }> {
  const tokens = await login(app, { email: ADMIN_EMAIL, password: ADMIN_PASSWORD });
  assert.equal(claimsOf(tokens.access_token).role, 'admin', JSON.stringify(claimsOf(tokens.access_token)));
  return { id: Number(claimsOf(tokens.access_token).sub), tokens };
}

function refresh(app: GatepassApp, refreshToken: string, userAgent?: string): Promise<LightMyRequestResponse> {
  return call(app, 'POST', '/auth/refresh', { body: { refresh_token: refreshToken }, ...(userAgent !== undefined && { userAgent }) });
}

async function refreshed(app: GatepassApp, refreshToken: string, userAgent?: string): Promise<Tokens> {
  const response = await refresh(app, refreshToken, userAgent);
  assert.equal(response.statusCode, 200, response.body);
  return response.json<Tokens>();
}

function patchUser(app: GatepassApp, id: number | string, body: unknown, token: string, userAgent?: string): Promise<LightMyRequestResponse> {
  return call(app, 'PATCH', `/admin/users/${id}`, { body, token, ...(userAgent !== undefined && { userAgent }) });
}

async function setRole(app: GatepassApp, adminToken: string, id: number, role: Role): Promise<UserBody> {
  const response = await patchUser(app, id, { role }, adminToken);
  assert.equal(response.statusCode, 200, response.body);
  const user = response.json<UserBody>();
  assert.equal(user.role, role, response.body);
  return user;
}

/** Registers a user, makes them a teacher, and logs them in again (their first token says student). */
async function signUpTeacher(app: GatepassApp, adminToken: string): Promise<{ email: string; password: string; id: number; tokens: Tokens }> {
  const user = await register(app);
  await setRole(app, adminToken, user.id, 'teacher');
  const tokens = await login(app, user);
  assert.equal(claimsOf(tokens.access_token).role, 'teacher');
  return { ...user, tokens };
}

async function listUsers(app: GatepassApp, token: string, query = ''): Promise<UserPage> {
  const response = await get(app, `/admin/users${query}`, token);
  assert.equal(response.statusCode, 200, response.body);
  const body = response.json<UserPage>();
  assert.deepEqual(Object.keys(body).sort(), PAGE_KEYS, response.body);
  return body;
}

async function auditPage(app: GatepassApp, token: string, query: Record<string, string | number>): Promise<{ raw: string; body: AuditPage }> {
  const search = new URLSearchParams(Object.entries(query).map(([key, value]): [string, string] => [key, String(value)])).toString();
  const response = await get(app, `/admin/audit${search === '' ? '' : `?${search}`}`, token);
  assert.equal(response.statusCode, 200, response.body);
  const body = response.json<AuditPage>();
  assert.deepEqual(Object.keys(body).sort(), ['items', 'next_before'], response.body);
  for (const item of body.items) assert.deepEqual(Object.keys(item).sort(), AUDIT_KEYS, JSON.stringify(item));
  return { raw: response.body, body };
}

/** Events of one user (and one name), newest first. */
async function eventsOf(app: GatepassApp, token: string, userId: number, event?: string): Promise<AuditItem[]> {
  const { body } = await auditPage(app, token, { user_id: userId, limit: 200, ...(event !== undefined && { event }) });
  return body.items;
}

/** Walks the whole trail with the `before` cursor; returns every page's raw body and the events. */
async function allAuditPages(app: GatepassApp, token: string, limit: number, filter: Record<string, string | number> = {}): Promise<{ raws: string[]; items: AuditItem[] }> {
  const raws: string[] = [];
  const items: AuditItem[] = [];
  let cursor: number | null = null;
  for (let page = 0; page < 10_000; page += 1) {
    const { raw, body } = await auditPage(app, token, { ...filter, limit, ...(cursor !== null && { before: cursor }) });
    raws.push(raw);
    items.push(...body.items);
    assert.ok(body.items.length <= limit, raw);
    if (body.items.length === limit) assert.equal(body.next_before, body.items.at(-1)?.id, `a full page must point past its last event: ${raw}`);
    else assert.equal(body.next_before, null, `a short page is the last one: ${raw}`);
    if (body.next_before === null) return { raws, items };
    cursor = body.next_before;
  }
  assert.fail('the audit cursor never ended');
}

// ---------------------------------------------------------------------------------------------
// Assertions

function assertForbidden(response: LightMyRequestResponse): void {
  assertError(response, 403, 'Not enough permissions', 'forbidden');
}

function assertNotAuthenticated(response: LightMyRequestResponse): void {
  assertError(response, 401, 'Not authenticated', 'not_authenticated');
  assert.equal(response.headers['www-authenticate'], 'Bearer');
}

function assertTokenRejected(response: LightMyRequestResponse, detail: string, code: string): void {
  assertError(response, 401, detail, code);
  assert.equal(response.headers['www-authenticate'], 'Bearer error="invalid_token"');
}

function assertRevoked(response: LightMyRequestResponse): void {
  assertTokenRejected(response, REVOKED, 'token_revoked');
}

/** FastAPI's 422, with one item at `loc` (of `type`, when given) and every item inside `loc`. */
function assertValidation(response: LightMyRequestResponse, loc: (string | number)[], type?: string): void {
  assert.equal(response.statusCode, 422, response.body);
  const body = response.json<{ detail: ValidationItem[]; code: string }>();
  assert.deepEqual(Object.keys(body).sort(), ['code', 'detail'], response.body);
  assert.equal(body.code, 'validation_error');
  assert.ok(Array.isArray(body.detail) && body.detail.length > 0, response.body);
  for (const item of body.detail) {
    assert.deepEqual(Object.keys(item).sort(), ['loc', 'msg', 'type'], response.body);
    assert.deepEqual(item.loc.slice(0, loc.length), loc, response.body);
  }
  const match = body.detail.find((item) => JSON.stringify(item.loc) === JSON.stringify(loc));
  assert.ok(match !== undefined, `no item at ${JSON.stringify(loc)}: ${response.body}`);
  if (type !== undefined) assert.equal(match.type, type, response.body);
}

async function assertWorks(app: GatepassApp, accessToken: string, what: string): Promise<UserBody> {
  const response = await get(app, '/users/me', accessToken);
  assert.equal(response.statusCode, 200, `${what}: ${response.statusCode} ${response.body}`);
  return response.json<UserBody>();
}

function assertUserObject(user: unknown, raw: string): void {
  assert.ok(typeof user === 'object' && user !== null, raw);
  assert.deepEqual(Object.keys(user).sort(), USER_KEYS, raw);
}

function assertNoSecrets(text: string, secrets: string[], where: string): void {
  assert.ok(!text.includes('$argon2'), `${where} contains a password hash`);
  assert.ok(!text.includes('eyJ'), `${where} contains something shaped like a JWT`);
  for (const secret of secrets) assert.ok(!text.includes(secret), `${where} contains a secret the test used (${secret.slice(0, 6)}…)`);
}

/** An audit event as API.md asks: time, user id, ip, user agent (and who acted, and small details). */
function assertEvent(
  item: AuditItem | undefined,
  expected: { event: string; userId: number | null; actorId?: number | null; userAgent: string | null; ip?: string | null; since: number },
): AuditItem {
  assert.ok(item !== undefined, `no ${expected.event} event`);
  const raw = JSON.stringify(item);
  assert.deepEqual(Object.keys(item).sort(), AUDIT_KEYS, raw);
  assert.equal(item.event, expected.event, raw);
  assert.equal(item.user_id, expected.userId, raw);
  assert.equal(item.actor_id, expected.actorId ?? null, raw);
  assert.equal(item.ip, expected.ip === undefined ? '127.0.0.1' : expected.ip, raw);
  assert.equal(item.user_agent, expected.userAgent, raw);
  assert.match(item.created_at, ISO_UTC, raw);
  const at = Date.parse(item.created_at);
  assert.ok(at >= expected.since - 1000 && at <= Date.now() + 1000, `event time ${item.created_at} is outside the test's run: ${raw}`);
  assert.ok(typeof item.details === 'object' && item.details !== null && !Array.isArray(item.details), raw);
  return item;
}

// ---------------------------------------------------------------------------------------------
// Outbox

interface OutboxMessage {
  file: string;
  to: string | undefined;
  tokens: string[];
}

function outboxMessages(directory: string): OutboxMessage[] {
  let files: string[];
  try {
    files = readdirSync(directory);
  } catch {
    return [];
  }
  return files.sort().map((file) => {
    const text = readFileSync(path.join(directory, file), 'utf8');
    return {
      file,
      to: /^To: (.*)$/m.exec(text)?.[1]?.trim(),
      tokens: [...text.matchAll(/^token=(\S+)$/gm)].map((match) => match[1] ?? ''),
    };
  });
}

/** Polls (bounded) until `probe` returns something. */
async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = MAIL_WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(20);
  }
}

/** Waits for the mail to `email` that is not among the `seen` tokens, and returns its token. */
async function nextResetToken(directory: string, email: string, seen: Set<string>): Promise<string> {
  const token = await waitFor(`a reset mail to ${email} in ${directory}`, () => {
    const fresh = outboxMessages(directory)
      .filter((message) => message.to === email)
      .flatMap((message) => message.tokens)
      .filter((candidate) => !seen.has(candidate));
    return fresh.length === 0 ? undefined : fresh;
  });
  assert.equal(token.length, 1, `expected one new reset mail to ${email}, found ${token.length}`);
  const value = token[0] ?? '';
  assert.match(value, /^[A-Za-z0-9_-]{32,}$/, 'a reset token should be long and URL-safe');
  seen.add(value);
  return value;
}

function forgot(app: GatepassApp, email: string, options: { userAgent?: string; remoteAddress?: string } = {}): Promise<LightMyRequestResponse> {
  return call(app, 'POST', '/auth/password/forgot', { body: { email }, ...options });
}

function resetPassword(app: GatepassApp, token: string, newPassword: string, userAgent?: string): Promise<LightMyRequestResponse> {
  return call(app, 'POST', '/auth/password/reset', { body: { token, new_password: newPassword }, ...(userAgent !== undefined && { userAgent }) });
}

// ---------------------------------------------------------------------------------------------
// Metrics

/** The value of one sample line (`name{labels} value`) of a Prometheus text body, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1).trim());
}

function requireSample(text: string, series: string): number {
  const value = sample(text, series);
  assert.ok(value !== undefined && !Number.isNaN(value), `no sample ${series} in:\n${text}`);
  return value;
}

/** Settings for a second app on the same database as `t`, from the same kind of environment. */
function sameDatabaseEnv(t: TestApp, extra: Record<string, string>): Record<string, string> {
  return {
    NODE_ENV: 'test',
    JWT_SECRET: t.settings.jwt.accessSecret,
    JWT_REFRESH_SECRET: t.settings.jwt.refreshSecret,
    DATABASE_URL: t.databaseUrl,
    LOGIN_RATE_LIMIT_PER_MINUTE: '0',
    ACCOUNT_LOCKOUT_THRESHOLD: '0',
    ...extra,
  };
}

const PID = process.pid;

export function defineAdminSuite(backend: Backend): void {
  describe(`bootstrap admin from ADMIN_EMAIL/ADMIN_PASSWORD (${backend})`, () => {
    let t: TestApp;
    const restarted: GatepassApp[] = [];
    before(async () => {
      t = await createTestApp(backend, ADMIN_ENV);
    });
    after(async () => {
      for (const app of restarted) await app.close();
      await t.close();
    });

    it('the account exists at start: active, role admin, the only user, registered once by the bootstrap', async () => {
      const admin = await loginAdmin(t.app);
      const me = await assertWorks(t.app, admin.tokens.access_token, 'the bootstrap admin');
      assert.equal(me.email, ADMIN_EMAIL);
      assert.equal(me.role, 'admin');
      assert.equal(me.is_active, true);
      assert.equal(me.id, admin.id);
      const page = await listUsers(t.app, admin.tokens.access_token);
      assert.equal(page.total, 1, JSON.stringify(page));
      assert.deepEqual(page.items, [me]);
      const registered = await eventsOf(t.app, admin.tokens.access_token, admin.id, 'register');
      assert.equal(registered.length, 1, JSON.stringify(registered));
      assert.equal(registered[0]?.actor_id, null);
      assert.equal(registered[0]?.details.role, 'admin', JSON.stringify(registered));
    });

    it('a second app on the same database creates no duplicate and changes nothing (password, role), also with the email in upper case', async () => {
      const root = await loginAdmin(t.app);
      const deputy = await register(t.app);
      await setRole(t.app, root.tokens.access_token, deputy.id, 'admin');
      const deputyTokens = await login(t.app, deputy);
      // The admin changes their password and is then demoted by the other admin.
      const rootPassword = 'Quarry-Bellwether-Nimbus-3907';
      const change = await post(t.app, '/auth/password/change', { current_password: ADMIN_PASSWORD, new_password: rootPassword }, root.tokens.access_token);
      assert.equal(change.statusCode, 204, change.body);
      await setRole(t.app, deputyTokens.access_token, root.id, 'teacher');
      const rootBefore = (await listUsers(t.app, deputyTokens.access_token, `?email=${encodeURIComponent(ADMIN_EMAIL)}`)).items;
      const totalBefore = (await listUsers(t.app, deputyTokens.access_token)).total;
      assert.equal(rootBefore.length, 1);

      for (const adminEmail of [ADMIN_EMAIL, 'ROOT@Example.COM']) {
        const settings = loadSettings(sameDatabaseEnv(t, { ADMIN_EMAIL: adminEmail, ADMIN_PASSWORD }), { cwd: t.cwd });
        const app = await buildApp(settings, { cwd: t.cwd });
        restarted.push(app);

        const deputyHere = await login(app, deputy);
        assert.equal((await listUsers(app, deputyHere.access_token)).total, totalBefore, `ADMIN_EMAIL=${adminEmail}: a user was added at start`);
        const found = await listUsers(app, deputyHere.access_token, '?email=root%40example');
        assert.deepEqual(found.items, rootBefore, `ADMIN_EMAIL=${adminEmail}: the existing admin account was changed at start`);
        assert.equal(found.items[0]?.role, 'teacher');
        assertError(await post(app, '/auth/login', { email: ADMIN_EMAIL, password: ADMIN_PASSWORD }), 401, INCORRECT_LOGIN, 'invalid_credentials');
        const rootHere = await login(app, { email: ADMIN_EMAIL, password: rootPassword });
        assert.equal(claimsOf(rootHere.access_token).role, 'teacher');
        assert.equal((await eventsOf(app, deputyHere.access_token, root.id, 'register')).length, 1);
      }
    });
  });

  describe(`permissions by role, defaults (${backend})`, () => {
    let t: TestApp;
    const tokens: Partial<Record<Role, string>> = {};
    let targetId: number;
    before(async () => {
      t = await createTestApp(backend, ADMIN_ENV);
      const admin = await loginAdmin(t.app);
      tokens.admin = admin.tokens.access_token;
      tokens.student = (await signUp(t.app)).tokens.access_token;
      tokens.teacher = (await signUpTeacher(t.app, admin.tokens.access_token)).tokens.access_token;
      targetId = (await register(t.app)).id;
    });
    after(() => t.close());

    const routes: { name: string; method: Method; url: () => string; body?: unknown; allowed: Role[]; ok: number }[] = [
      { name: 'GET /admin/users', method: 'GET', url: () => '/admin/users', allowed: ['teacher', 'admin'], ok: 200 },
      { name: 'GET /admin/users/{id}', method: 'GET', url: () => `/admin/users/${targetId}`, allowed: ['teacher', 'admin'], ok: 200 },
      { name: 'PATCH /admin/users/{id}', method: 'PATCH', url: () => `/admin/users/${targetId}`, body: { is_active: true }, allowed: ['admin'], ok: 200 },
      { name: 'POST /admin/users/{id}/revoke-sessions', method: 'POST', url: () => `/admin/users/${targetId}/revoke-sessions`, allowed: ['admin'], ok: 204 },
      { name: 'GET /admin/audit', method: 'GET', url: () => '/admin/audit', allowed: ['admin'], ok: 200 },
      { name: 'GET /tasks', method: 'GET', url: () => '/tasks', allowed: ['student', 'teacher', 'admin'], ok: 200 },
      { name: 'POST /tasks', method: 'POST', url: () => '/tasks', body: { title: 'matrix' }, allowed: ['student', 'teacher', 'admin'], ok: 201 },
    ];

    for (const role of ['student', 'teacher', 'admin'] as const) {
      it(`${role}: ${routes.map((route) => `${route.name} ${route.allowed.includes(role) ? 'allowed' : '403'}`).join(', ')}`, async () => {
        const token = tokens[role];
        assert.ok(token !== undefined);
        assert.equal(claimsOf(token).role, role);
        for (const route of routes) {
          const response = await send(t.app, route.method, route.url(), route.body, token);
          if (route.allowed.includes(role)) assert.equal(response.statusCode, route.ok, `${role} ${route.name}: ${response.body}`);
          else assertForbidden(response);
        }
      });
    }

    it('no token: 401 Not authenticated on every admin and task route', async () => {
      for (const route of routes) assertNotAuthenticated(await send(t.app, route.method, route.url(), route.body));
    });

    it('a garbage token: 401 Could not validate credentials on every admin route', async () => {
      for (const route of routes) assertTokenRejected(await send(t.app, route.method, route.url(), route.body, 'not.a.jwt'), 'Could not validate credentials', 'invalid_token');
    });

    it('a student cannot promote themselves (403 before any body check), and stays a student', async () => {
      const student = await signUp(t.app);
      assertForbidden(await patchUser(t.app, student.id, { role: 'admin' }, student.tokens.access_token));
      assertForbidden(await patchUser(t.app, student.id, { role: 'superuser' }, student.tokens.access_token));
      const teacher = tokens.teacher;
      assert.ok(teacher !== undefined);
      assertForbidden(await patchUser(t.app, student.id, { role: 'admin' }, teacher));
      assert.equal((await assertWorks(t.app, student.tokens.access_token, 'the student')).role, 'student');
      const fresh = await login(t.app, student);
      assert.equal(claimsOf(fresh.access_token).role, 'student');
    });
  });

  describe(`ROLE_PERMISSIONS (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend, {
        ...ADMIN_ENV,
        ROLE_PERMISSIONS: '{"student":["tasks:read"],"teacher":["tasks:read","tasks:write","users:read","audit:read"]}',
      });
    });
    after(() => t.close());

    it('a student limited to tasks:read can GET /tasks but POST /tasks answers 403', async () => {
      const student = await signUp(t.app);
      const list = await get(t.app, '/tasks', student.tokens.access_token);
      assert.equal(list.statusCode, 200, list.body);
      assert.deepEqual(list.json(), []);
      assertForbidden(await post(t.app, '/tasks', { title: 'not allowed' }, student.tokens.access_token));
    });

    it('a teacher given audit:read reads /admin/audit but still cannot PATCH; the admin keeps the defaults', async () => {
      const admin = await loginAdmin(t.app);
      const teacher = await signUpTeacher(t.app, admin.tokens.access_token);
      assert.equal((await get(t.app, '/admin/audit', teacher.tokens.access_token)).statusCode, 200);
      assertForbidden(await patchUser(t.app, teacher.id, { role: 'admin' }, teacher.tokens.access_token));
      const created = await post(t.app, '/tasks', { title: 'admin task' }, admin.tokens.access_token);
      assert.equal(created.statusCode, 201, created.body);
      assert.equal((await get(t.app, '/admin/audit', admin.tokens.access_token)).statusCode, 200);
    });

    it('an unknown role, an unknown permission, a non-object or non-JSON value make loadSettings throw ConfigError', () => {
      const cwd = mkdtempSync(path.join(tmpdir(), 'gatepass-roles-'));
      try {
        const base = { NODE_ENV: 'test', JWT_SECRET: 'a'.repeat(64), JWT_REFRESH_SECRET: 'b'.repeat(64), DATABASE_URL: 'sqlite:./data/x.db' };
        assert.doesNotThrow(() => loadSettings({ ...base, ROLE_PERMISSIONS: '{"student":["tasks:read"]}' }, { cwd }));
        for (const [value, mention] of [
          ['{"superuser":["tasks:read"]}', /superuser/],
          ['{"student":["tasks:delete"]}', /student/],
          ['{"student":"tasks:read"}', /student/],
          ['student=tasks:read', /JSON/],
          ['["tasks:read"]', /JSON/],
        ] as const) {
          assert.throws(
            () => loadSettings({ ...base, ROLE_PERMISSIONS: value }, { cwd }),
            (error: unknown) => error instanceof ConfigError && error.problems.some((problem) => mention.test(problem)),
            `ROLE_PERMISSIONS=${value}`,
          );
        }
        assert.throws(() => loadSettings({ ...base, METRICS: 'sometimes' }, { cwd }), ConfigError);
        assert.throws(() => loadSettings({ ...base, ADMIN_EMAIL: ADMIN_EMAIL }, { cwd }), ConfigError);
      } finally {
        rmSync(cwd, { recursive: true, force: true });
      }
    });
  });

  describe(`admin users API (${backend})`, () => {
    let t: TestApp;
    let admin: { id: number; tokens: Tokens };
    let token: string;
    const pinned = { email: `zephyr.quill.${PID}@example.com`, password: 'Velvet-Compass-Harbor-5521' };
    before(async () => {
      t = await createTestApp(backend, ADMIN_ENV);
      admin = await loginAdmin(t.app);
      token = admin.tokens.access_token;
    });
    after(() => t.close());

    it('GET /admin/users: {items,total,limit,offset}, oldest first, exactly the user keys, no hash; pagination; filters', async () => {
      const alice = await register(t.app, pinned);
      const bob = await register(t.app);
      const carol = await register(t.app);
      const response = await get(t.app, '/admin/users', token);
      assert.equal(response.statusCode, 200, response.body);
      assert.ok(!response.body.includes('$argon2') && !/password|hash/i.test(response.body), response.body);
      const all = response.json<UserPage>();
      assert.deepEqual(Object.keys(all).sort(), PAGE_KEYS);
      assert.equal(all.total, 4);
      assert.equal(all.limit, 50);
      assert.equal(all.offset, 0);
      assert.deepEqual(all.items.map((user) => user.id), [admin.id, alice.id, bob.id, carol.id]);
      for (const user of all.items) {
        assertUserObject(user, response.body);
        assert.match(user.created_at, ISO_UTC);
      }
      assert.equal(all.items[1]?.email, pinned.email);
      assert.equal(all.items[1]?.role, 'student');

      const second = await listUsers(t.app, token, '?limit=1&offset=1');
      assert.deepEqual(second, { items: [all.items[1]], total: 4, limit: 1, offset: 1 });
      const beyond = await listUsers(t.app, token, '?limit=2&offset=4');
      assert.deepEqual(beyond, { items: [], total: 4, limit: 2, offset: 4 });

      // Case-insensitive substring; LIKE wildcards are literal.
      const byEmail = await listUsers(t.app, token, `?email=${encodeURIComponent(`ZEPHYR.QUILL.${PID}`)}`);
      assert.deepEqual(byEmail.items.map((user) => user.id), [alice.id]);
      assert.equal(byEmail.total, 1);
      assert.equal((await listUsers(t.app, token, '?email=zephyr_quill')).total, 0);
      assert.equal((await listUsers(t.app, token, '?email=%25')).total, 0);
      assert.equal((await listUsers(t.app, token, '?email=EXAMPLE.COM')).total, 4);

      await setRole(t.app, token, bob.id, 'teacher');
      const teachers = await listUsers(t.app, token, '?role=teacher');
      assert.deepEqual(teachers.items.map((user) => user.id), [bob.id]);
      assert.equal(teachers.total, 1);
      assert.deepEqual((await listUsers(t.app, token, '?role=student')).items.map((user) => user.id), [alice.id, carol.id]);
      assert.deepEqual((await listUsers(t.app, token, '?role=admin')).items.map((user) => user.id), [admin.id]);
      const combined = await listUsers(t.app, token, '?role=student&email=ZEPHYR&limit=5');
      assert.deepEqual(combined.items.map((user) => user.id), [alice.id]);
    });

    it('GET /admin/users: role=bogus, limit=0, limit=101, offset=-1 answer 422 at the query field', async () => {
      assertValidation(await get(t.app, '/admin/users?role=bogus', token), ['query', 'role']);
      assertValidation(await get(t.app, '/admin/users?limit=0', token), ['query', 'limit'], 'greater_than_equal');
      assertValidation(await get(t.app, '/admin/users?limit=101', token), ['query', 'limit'], 'less_than_equal');
      assertValidation(await get(t.app, '/admin/users?offset=-1', token), ['query', 'offset'], 'greater_than_equal');
    });

    it('GET /admin/users/{id}: the user; unknown id 404 User not found; abc and 0 answer 422', async () => {
      const user = await register(t.app);
      const response = await get(t.app, `/admin/users/${user.id}`, token);
      assert.equal(response.statusCode, 200, response.body);
      const body = response.json<UserBody>();
      assertUserObject(body, response.body);
      assert.equal(body.id, user.id);
      assert.equal(body.email, user.email);
      assert.equal(body.role, 'student');
      assert.equal(body.is_active, true);
      assert.deepEqual((await listUsers(t.app, token, `?email=${encodeURIComponent(user.email)}`)).items, [body]);
      assertError(await get(t.app, '/admin/users/999999', token), 404, 'User not found', 'not_found');
      assertValidation(await get(t.app, '/admin/users/abc', token), ['path', 'id']);
      assertValidation(await get(t.app, '/admin/users/0', token), ['path', 'id']);
    });

    it('PATCH role: teacher → 200 with role teacher; superuser → 422 and nothing changes; unknown id → 404', async () => {
      const user = await register(t.app);
      const response = await patchUser(t.app, user.id, { role: 'teacher' }, token);
      assert.equal(response.statusCode, 200, response.body);
      const body = response.json<UserBody>();
      assertUserObject(body, response.body);
      assert.equal(body.role, 'teacher');
      assert.equal(body.id, user.id);
      assert.equal(body.is_active, true);
      assert.equal((await get(t.app, `/admin/users/${user.id}`, token)).json<UserBody>().role, 'teacher');

      assertValidation(await patchUser(t.app, user.id, { role: 'superuser' }, token), ['body', 'role']);
      assertValidation(await patchUser(t.app, user.id, { is_active: 'nope' }, token), ['body', 'is_active']);
      assert.equal((await get(t.app, `/admin/users/${user.id}`, token)).json<UserBody>().role, 'teacher');
      assertError(await patchUser(t.app, 999999, { role: 'teacher' }, token), 404, 'User not found', 'not_found');
      assertValidation(await patchUser(t.app, 'abc', { role: 'teacher' }, token), ['path', 'id']);
    });

    it('PATCH is_active false: the token is refused at once, refresh fails, login → 403 Account is disabled; true: login works again', async () => {
      const user = await signUp(t.app);
      await assertWorks(t.app, user.tokens.access_token, 'before deactivation');
      const off = await patchUser(t.app, user.id, { is_active: false }, token);
      assert.equal(off.statusCode, 200, off.body);
      assert.equal(off.json<UserBody>().is_active, false);
      assertRevoked(await get(t.app, '/users/me', user.tokens.access_token));
      assertRevoked(await get(t.app, '/tasks', user.tokens.access_token));
      assertTokenRejected(await refresh(t.app, user.tokens.refresh_token), INVALID_REFRESH, 'invalid_token');
      assertError(await post(t.app, '/auth/login', { email: user.email, password: user.password }), 403, 'Account is disabled', 'account_disabled');
      // A wrong password still says only "incorrect": disabled is revealed after a correct one alone.
      assertError(await post(t.app, '/auth/login', { email: user.email, password: `${user.password}x` }), 401, INCORRECT_LOGIN, 'invalid_credentials');
      assert.equal((await listUsers(t.app, token, `?email=${encodeURIComponent(user.email)}`)).items[0]?.is_active, false);

      const on = await patchUser(t.app, user.id, { is_active: true }, token);
      assert.equal(on.statusCode, 200, on.body);
      assert.equal(on.json<UserBody>().is_active, true);
      const fresh = await login(t.app, user);
      await assertWorks(t.app, fresh.access_token, 'a login after re-activation');
      assertRevoked(await get(t.app, '/users/me', user.tokens.access_token));
    });

    it('POST revoke-sessions: 204; every access and refresh token of that user stops working; others unaffected; unknown id → 404', async () => {
      const user = await signUp(t.app);
      const other = await login(t.app, user);
      const bystander = await signUp(t.app);
      const response = await post(t.app, `/admin/users/${user.id}/revoke-sessions`, undefined, token);
      assert.equal(response.statusCode, 204, response.body);
      assert.equal(response.body, '');
      for (const tokens of [user.tokens, other]) {
        assertRevoked(await get(t.app, '/users/me', tokens.access_token));
        assertRevoked(await get(t.app, '/tasks', tokens.access_token));
        assertTokenRejected(await refresh(t.app, tokens.refresh_token), INVALID_REFRESH, 'invalid_token');
      }
      await assertWorks(t.app, bystander.tokens.access_token, 'another user');
      await assertWorks(t.app, token, 'the admin');
      const fresh = await login(t.app, user);
      await assertWorks(t.app, fresh.access_token, 'a login after revoke-sessions');
      assertError(await post(t.app, '/admin/users/999999/revoke-sessions', undefined, token), 404, 'User not found', 'not_found');
    });
  });

  describe(`role changes take effect on the next request (${backend})`, () => {
    let t: TestApp;
    let adminToken: string;
    let restarted: GatepassApp | undefined;
    before(async () => {
      t = await createTestApp(backend, ADMIN_ENV);
      adminToken = (await loginAdmin(t.app)).tokens.access_token;
    });
    after(async () => {
      await restarted?.close();
      await t.close();
    });

    it('promotion: the old student token → 401 token_revoked; a refresh carries role teacher and reaches /admin/users; demotion back likewise', async () => {
      const user = await signUp(t.app);
      const otherDevice = await login(t.app, user);
      assertForbidden(await get(t.app, '/admin/users', user.tokens.access_token));

      await setRole(t.app, adminToken, user.id, 'teacher');
      for (const tokens of [user.tokens, otherDevice]) {
        assertRevoked(await get(t.app, '/admin/users', tokens.access_token));
        assertRevoked(await get(t.app, '/users/me', tokens.access_token));
      }
      const teacher = await refreshed(t.app, user.tokens.refresh_token);
      assert.equal(claimsOf(teacher.access_token).role, 'teacher');
      assert.equal((await get(t.app, '/admin/users', teacher.access_token)).statusCode, 200);
      assert.equal((await assertWorks(t.app, teacher.access_token, 'the teacher')).role, 'teacher');
      const teacherOther = await refreshed(t.app, otherDevice.refresh_token);
      assert.equal(claimsOf(teacherOther.access_token).role, 'teacher');
      assert.equal((await get(t.app, '/admin/users', teacherOther.access_token)).statusCode, 200);
      // A fresh login right after the change carries the new role and is accepted.
      const loggedIn = await login(t.app, user);
      assert.equal(claimsOf(loggedIn.access_token).role, 'teacher');
      await assertWorks(t.app, loggedIn.access_token, 'a login right after the promotion');

      await setRole(t.app, adminToken, user.id, 'student');
      assertRevoked(await get(t.app, '/admin/users', teacher.access_token));
      assertRevoked(await get(t.app, '/users/me', loggedIn.access_token));
      const student = await refreshed(t.app, teacher.refresh_token);
      assert.equal(claimsOf(student.access_token).role, 'student');
      assertForbidden(await get(t.app, '/admin/users', student.access_token));
      assert.equal((await get(t.app, '/tasks', student.access_token)).statusCode, 200);
    });

    it('a token refused after a role change stays refused when the role is changed back', async () => {
      const user = await signUp(t.app);
      const studentToken = user.tokens.access_token;
      await setRole(t.app, adminToken, user.id, 'teacher');
      assertRevoked(await get(t.app, '/users/me', studentToken));
      const teacher = await refreshed(t.app, user.tokens.refresh_token);
      await setRole(t.app, adminToken, user.id, 'student');
      assertRevoked(await get(t.app, '/users/me', teacher.access_token));
      // The pre-promotion token carries "student" again, but it was revoked: API.md lists a role change among revocations.
      const again = await get(t.app, '/users/me', studentToken);
      assert.equal(again.statusCode, 401, `a token revoked by the promotion was accepted again after the demotion: ${again.statusCode} ${again.body}`);
      assertRevoked(again);
    });

    it('six promotions and demotions in a row, each followed at once by a refresh and a request: no window', async () => {
      const user = await signUp(t.app);
      let tokens = user.tokens;
      for (let round = 1; round <= 6; round += 1) {
        const role: Role = round % 2 === 1 ? 'teacher' : 'student';
        const previous = tokens;
        await setRole(t.app, adminToken, user.id, role);
        const stale = await get(t.app, '/users/me', previous.access_token);
        assert.equal(stale.statusCode, 401, `round ${round}: the token from before the change to ${role} was accepted: ${stale.body}`);
        assertRevoked(stale);
        tokens = await refreshed(t.app, previous.refresh_token);
        assert.equal(claimsOf(tokens.access_token).role, role, `round ${round}`);
        const me = await get(t.app, '/users/me', tokens.access_token);
        assert.equal(me.statusCode, 200, `round ${round}: the token refreshed right after the change to ${role} was refused: ${me.body}`);
        assert.equal(me.json<UserBody>().role, role);
        const adminList = await get(t.app, '/admin/users', tokens.access_token);
        if (role === 'teacher') assert.equal(adminList.statusCode, 200, `round ${round}: ${adminList.body}`);
        else assertForbidden(adminList);
      }
    });

    it('on a clock that never moves, every change still refuses the tokens minted before it and accepts those minted after it', async (context) => {
      // Everything below happens in one millisecond, as a fast client and admin can make it happen.
      const frozen = Date.now();
      const still = await createTestApp(backend, ADMIN_ENV, { now: () => frozen });
      context.after(() => still.close());
      const stillAdmin = (await loginAdmin(still.app)).tokens.access_token;
      const user = await signUp(still.app);
      const minted = [user.tokens];
      for (const role of ['teacher', 'student', 'teacher'] as const) {
        await setRole(still.app, stillAdmin, user.id, role);
        for (const [index, earlier] of minted.entries()) {
          const stale = await get(still.app, '/users/me', earlier.access_token);
          assert.equal(stale.statusCode, 401, `after the change to ${role}, token ${index} (minted before it) was accepted: ${stale.body}`);
          assertRevoked(stale);
        }
        const fresh = await refreshed(still.app, minted[minted.length - 1]?.refresh_token ?? '');
        assert.equal(claimsOf(fresh.access_token).role, role);
        assert.equal((await assertWorks(still.app, fresh.access_token, `the token refreshed after the change to ${role}`)).role, role);
        minted.push(fresh);
      }
    });

    it('a second app on the same database refuses the token made stale by a promotion on the first', async () => {
      const user = await signUp(t.app);
      await setRole(t.app, adminToken, user.id, 'teacher');
      restarted = await buildApp(loadSettings(sameDatabaseEnv(t, ADMIN_ENV), { cwd: t.cwd }), { cwd: t.cwd });
      assertRevoked(await get(restarted, '/users/me', user.tokens.access_token));
      const teacher = await refreshed(restarted, user.tokens.refresh_token);
      assert.equal(claimsOf(teacher.access_token).role, 'teacher');
      assert.equal((await get(restarted, '/admin/users', teacher.access_token)).statusCode, 200);
    });
  });

  describe(`audit trail (${backend})`, () => {
    let t: TestApp;
    let admin: { id: number; tokens: Tokens };
    let adminToken: string;
    let started: number;
    let outbox: string;
    const ADMIN_AGENT = `admin-console/1.0 (${PID})`;
    const AGENT = `audit-subject-agent/2.0 (${PID})`;
    const OTHER_AGENT = `someone-else/3.0 (${PID})`;
    /** Every password and token the describe uses; none may ever show up in the trail. */
    const secrets: string[] = [ADMIN_PASSWORD];
    const subject = { email: `audit.subject.${PID}@example.com`, password: 'Marble-Falcon-Drift-6604', id: 0 };
    let current: Tokens;
    const seenResetTokens = new Set<string>();
    let victimId = 0;

    const keep = (tokens: Tokens): Tokens => {
      secrets.push(tokens.access_token, tokens.refresh_token);
      return tokens;
    };
    const latest = async (event: string, userId = subject.id): Promise<AuditItem | undefined> => (await eventsOf(t.app, adminToken, userId, event))[0];

    before(async () => {
      started = Date.now();
      t = await createTestApp(backend, { ...ADMIN_ENV, ACCOUNT_LOCKOUT_THRESHOLD: '2', REFRESH_REUSE_GRACE_SECONDS: '0' });
      outbox = path.join(t.cwd, 'data', 'outbox');
      admin = await loginAdmin(t.app);
      adminToken = keep(admin.tokens).access_token;
    });
    after(() => t.close());

    it('register', async () => {
      secrets.push(subject.password);
      const response = await call(t.app, 'POST', '/auth/register', { body: { email: subject.email, password: subject.password }, userAgent: AGENT });
      assert.equal(response.statusCode, 201, response.body);
      subject.id = response.json<UserBody>().id;
      const event = assertEvent(await latest('register'), { event: 'register', userId: subject.id, userAgent: AGENT, since: started });
      assert.equal(event.details.role, 'student', JSON.stringify(event));
    });

    it('login_failure for a wrong password and for an unknown email (no user id)', async () => {
      const wrong = 'Marble-Falcon-Drift-6605';
      secrets.push(wrong);
      assertError(await call(t.app, 'POST', '/auth/login', { body: { email: subject.email, password: wrong }, userAgent: AGENT }), 401, INCORRECT_LOGIN, 'invalid_credentials');
      const unknown = `nobody.${PID}@example.com`;
      assertError(await call(t.app, 'POST', '/auth/login', { body: { email: unknown, password: wrong }, userAgent: OTHER_AGENT }), 401, INCORRECT_LOGIN, 'invalid_credentials');
      const failure = assertEvent(await latest('login_failure'), { event: 'login_failure', userId: subject.id, userAgent: AGENT, since: started });
      assert.equal(failure.details.reason, 'wrong_password', JSON.stringify(failure));
      const { body } = await auditPage(t.app, adminToken, { event: 'login_failure', limit: 1 });
      const anonymous = assertEvent(body.items[0], { event: 'login_failure', userId: null, userAgent: OTHER_AGENT, since: started });
      assert.equal(anonymous.details.reason, 'unknown_email', JSON.stringify(anonymous));
      assert.ok(!JSON.stringify(anonymous).includes(unknown), 'the unknown email is recorded');
    });

    it('login_success, refresh, refresh_reuse_detected', async () => {
      const first = keep(await loginAs(t.app, subject, AGENT));
      const sid = claimsOf(first.access_token).sid;
      const success = assertEvent(await latest('login_success'), { event: 'login_success', userId: subject.id, userAgent: AGENT, since: started });
      assert.equal(success.details.session_id, sid, JSON.stringify(success));

      keep(await refreshed(t.app, first.refresh_token, AGENT));
      const rotated = assertEvent(await latest('refresh'), { event: 'refresh', userId: subject.id, userAgent: AGENT, since: started });
      assert.equal(rotated.details.session_id, sid, JSON.stringify(rotated));

      const reuse = await refresh(t.app, first.refresh_token, AGENT);
      assertTokenRejected(reuse, 'Refresh token reuse detected. The session has been revoked; please log in again.', 'token_reused');
      const detected = assertEvent(await latest('refresh_reuse_detected'), { event: 'refresh_reuse_detected', userId: subject.id, userAgent: AGENT, since: started });
      assert.equal(detected.details.session_id, sid, JSON.stringify(detected));
    });

    it('session_revoked (the user ends one of their sessions) and logout', async () => {
      current = keep(await loginAs(t.app, subject, AGENT));
      const ended = keep(await loginAs(t.app, subject, AGENT));
      const endedSid = String(claimsOf(ended.access_token).sid);
      const response = await call(t.app, 'DELETE', `/auth/sessions/${endedSid}`, { token: current.access_token, userAgent: AGENT });
      assert.equal(response.statusCode, 204, response.body);
      const revoked = assertEvent(await latest('session_revoked'), { event: 'session_revoked', userId: subject.id, userAgent: AGENT, since: started });
      assert.equal(revoked.details.session_id, endedSid, JSON.stringify(revoked));

      const leaving = keep(await loginAs(t.app, subject, AGENT));
      assert.equal((await call(t.app, 'POST', '/auth/logout', { token: leaving.access_token, userAgent: AGENT })).statusCode, 204);
      const logout = assertEvent(await latest('logout'), { event: 'logout', userId: subject.id, userAgent: AGENT, since: started });
      assert.equal(logout.details.session_id, claimsOf(leaving.access_token).sid, JSON.stringify(logout));
    });

    it('password_changed', async () => {
      const newPassword = 'Marble-Falcon-Drift-7710';
      secrets.push(newPassword);
      const response = await call(t.app, 'POST', '/auth/password/change', {
        body: { current_password: subject.password, new_password: newPassword },
        token: current.access_token,
        userAgent: AGENT,
      });
      assert.equal(response.statusCode, 204, response.body);
      subject.password = newPassword;
      assertEvent(await latest('password_changed'), { event: 'password_changed', userId: subject.id, userAgent: AGENT, since: started });
    });

    it('session_revoked by an admin (revoke-sessions) names the admin as actor', async () => {
      const response = await call(t.app, 'POST', `/admin/users/${subject.id}/revoke-sessions`, { token: adminToken, userAgent: ADMIN_AGENT });
      assert.equal(response.statusCode, 204, response.body);
      assertRevoked(await get(t.app, '/users/me', current.access_token));
      assertEvent(await latest('session_revoked'), { event: 'session_revoked', userId: subject.id, actorId: admin.id, userAgent: ADMIN_AGENT, since: started });
    });

    it('logout_all', async () => {
      current = keep(await loginAs(t.app, subject, AGENT));
      assert.equal((await call(t.app, 'POST', '/auth/logout-all', { token: current.access_token, userAgent: AGENT })).statusCode, 204);
      assertEvent(await latest('logout_all'), { event: 'logout_all', userId: subject.id, userAgent: AGENT, since: started });
    });

    it('password_reset_requested (known and unknown email) and password_reset', async () => {
      assert.equal((await forgot(t.app, subject.email, { userAgent: AGENT })).statusCode, 202);
      const token = await nextResetToken(outbox, subject.email, seenResetTokens);
      secrets.push(token);
      const requested = assertEvent(await latest('password_reset_requested'), { event: 'password_reset_requested', userId: subject.id, userAgent: AGENT, since: started });
      assert.equal(requested.details.known, true, JSON.stringify(requested));

      const unknown = `nobody.else.${PID}@example.com`;
      assert.equal((await forgot(t.app, unknown, { userAgent: OTHER_AGENT })).statusCode, 202);
      const anonymous = await waitFor('the password_reset_requested event of an unknown email', async () => {
        const { body } = await auditPage(t.app, adminToken, { event: 'password_reset_requested', limit: 1 });
        const item = body.items[0];
        return item !== undefined && item.user_id === null ? item : undefined;
      });
      assertEvent(anonymous, { event: 'password_reset_requested', userId: null, userAgent: OTHER_AGENT, since: started });
      assert.ok(!JSON.stringify(anonymous).includes(unknown), 'the unknown email is recorded');

      const newPassword = 'Marble-Falcon-Drift-8821';
      secrets.push(newPassword);
      assert.equal((await resetPassword(t.app, token, newPassword, AGENT)).statusCode, 204);
      subject.password = newPassword;
      assertEvent(await latest('password_reset'), { event: 'password_reset', userId: subject.id, userAgent: AGENT, since: started });
    });

    it('role_changed with details {from, to} and the admin as actor', async () => {
      const response = await patchUser(t.app, subject.id, { role: 'teacher' }, adminToken, ADMIN_AGENT);
      assert.equal(response.statusCode, 200, response.body);
      const changed = assertEvent(await latest('role_changed'), { event: 'role_changed', userId: subject.id, actorId: admin.id, userAgent: ADMIN_AGENT, since: started });
      assert.deepEqual(changed.details, { from: 'student', to: 'teacher' });
    });

    it('user_deactivated and user_activated by an admin (actor), and user_deactivated by the user (no actor)', async () => {
      assert.equal((await patchUser(t.app, subject.id, { is_active: false }, adminToken, ADMIN_AGENT)).statusCode, 200);
      assertEvent(await latest('user_deactivated'), { event: 'user_deactivated', userId: subject.id, actorId: admin.id, userAgent: ADMIN_AGENT, since: started });
      assert.equal((await patchUser(t.app, subject.id, { is_active: true }, adminToken, ADMIN_AGENT)).statusCode, 200);
      assertEvent(await latest('user_activated'), { event: 'user_activated', userId: subject.id, actorId: admin.id, userAgent: ADMIN_AGENT, since: started });

      current = keep(await loginAs(t.app, subject, AGENT));
      const response = await call(t.app, 'PUT', '/users/me/deactivate', { token: current.access_token, userAgent: AGENT });
      assert.equal(response.statusCode, 200, response.body);
      assert.deepEqual(response.json(), { message: 'Account deactivated successfully' });
      assertEvent(await latest('user_deactivated'), { event: 'user_deactivated', userId: subject.id, userAgent: AGENT, since: started });
      assert.equal((await patchUser(t.app, subject.id, { is_active: true }, adminToken, ADMIN_AGENT)).statusCode, 200);
    });

    it('login_locked (ACCOUNT_LOCKOUT_THRESHOLD=2): two wrong passwords lock, the next attempt is 429 and recorded', async () => {
      const victim = await register(t.app);
      victimId = victim.id;
      secrets.push(victim.password);
      for (let attempt = 1; attempt <= 2; attempt += 1) {
        const wrong = `${victim.password}-wrong-${attempt}`;
        secrets.push(wrong);
        assertError(await call(t.app, 'POST', '/auth/login', { body: { email: victim.email, password: wrong }, userAgent: OTHER_AGENT }), 401, INCORRECT_LOGIN, 'invalid_credentials');
      }
      const locked = await call(t.app, 'POST', '/auth/login', { body: { email: victim.email, password: victim.password }, userAgent: OTHER_AGENT });
      assert.equal(locked.statusCode, 429, locked.body);
      assert.equal(locked.json<{ code: string }>().code, 'account_locked');
      assert.match(locked.json<{ detail: string }>().detail, /^Account temporarily locked after repeated failed logins; try again in (59|60) seconds$/);
      assert.match(String(locked.headers['retry-after']), /^(59|60)$/);
      assertEvent(await latest('login_locked', victim.id), { event: 'login_locked', userId: victim.id, userAgent: OTHER_AGENT, since: started });
      assert.equal((await eventsOf(t.app, adminToken, victim.id, 'login_failure')).length, 2);
    });

    it('every event name is recorded, and ?event= and ?user_id= filter exactly; bad filters answer 422', async () => {
      for (const name of AUDIT_EVENT_NAMES.filter((name) => name !== 'user_deleted')) {
        const { body } = await auditPage(t.app, adminToken, { event: name, limit: 200 });
        assert.ok(body.items.length > 0, `no ${name} event was recorded`);
        for (const item of body.items) assert.equal(item.event, name);
      }
      const mine = await eventsOf(t.app, adminToken, subject.id);
      assert.ok(mine.length >= 15, JSON.stringify(mine));
      for (const item of mine) assert.equal(item.user_id, subject.id);
      const ids = mine.map((item) => item.id);
      assert.deepEqual(ids, [...ids].sort((a, b) => b - a), 'newest first');
      assertValidation(await get(t.app, '/admin/audit?event=bogus', adminToken), ['query', 'event']);
      assertValidation(await get(t.app, '/admin/audit?limit=0', adminToken), ['query', 'limit']);
      assertValidation(await get(t.app, '/admin/audit?limit=201', adminToken), ['query', 'limit']);
      assertValidation(await get(t.app, '/admin/audit?user_id=abc', adminToken), ['query', 'user_id']);
    });

    it('the before cursor walks the whole trail, newest first, with no overlap and no gap', async () => {
      const { items: everything } = await allAuditPages(t.app, adminToken, 200);
      const ids = everything.map((item) => item.id);
      assert.ok(ids.length >= 30, `only ${ids.length} events`);
      assert.deepEqual(ids, [...ids].sort((a, b) => b - a));
      assert.equal(new Set(ids).size, ids.length);
      for (const limit of [1, 3, 7]) {
        const paged = await allAuditPages(t.app, adminToken, limit);
        assert.deepEqual(paged.items.map((item) => item.id), ids, `pages of ${limit}`);
      }
      const mine = (await eventsOf(t.app, adminToken, subject.id)).map((item) => item.id);
      const mineInPages = await allAuditPages(t.app, adminToken, 4, { user_id: subject.id });
      assert.deepEqual(mineInPages.items.map((item) => item.id), mine);
      // Page by page from a given cursor: the page after `before=X` starts right below X.
      const first = await auditPage(t.app, adminToken, { limit: 5 });
      const next = await auditPage(t.app, adminToken, { limit: 5, before: first.body.next_before ?? 0 });
      assert.deepEqual([...first.body.items, ...next.body.items].map((item) => item.id), ids.slice(0, 10));
    });

    it("GET /users/me/export includes the audit events of the user, and only theirs, without another actor's ip and user agent", async () => {
      current = keep(await loginAs(t.app, subject, AGENT));
      const response = await get(t.app, '/users/me/export', current.access_token);
      assert.equal(response.statusCode, 200, response.body);
      const exported = response.json<{ audit_events: AuditItem[] }>().audit_events;
      assert.ok(Array.isArray(exported), response.body);
      // The admin's view keeps who did what from where; the user's own copy keeps the events and
      // their times, but where an admin acted, the admin's ip and user agent are not the user's data.
      const adminView = (await eventsOf(t.app, adminToken, subject.id)).reverse();
      const expected = adminView.map((item) => (item.actor_id === null || item.actor_id === subject.id ? item : { ...item, ip: null, user_agent: null }));
      assert.deepEqual(exported, expected);
      assert.ok(exported.some((item) => item.event === 'role_changed' && item.actor_id === admin.id && item.ip === null && item.user_agent === null));
      assert.ok(adminView.some((item) => item.event === 'role_changed' && item.user_agent === ADMIN_AGENT), 'the admin view keeps the admin user agent');
      assert.ok(!response.body.includes(ADMIN_AGENT), "the admin's user agent is not in the export");
      assert.ok(exported.some((item) => item.user_agent === AGENT && item.ip === '127.0.0.1'), "the user's own events keep their ip and user agent");
      assertNoSecrets(response.body, secrets, 'the export');
    });

    it('no password, token or hash in any audit page or in the audit table', async () => {
      const { raws } = await allAuditPages(t.app, adminToken, 9);
      assertNoSecrets(raws.join('\n'), secrets, 'the /admin/audit pages');
      const handle = openDatabase(t.databaseUrl, t.cwd);
      try {
        const rows = await handle.db.selectFrom('audit_events').selectAll().execute();
        assert.ok(rows.length >= 30, `only ${rows.length} rows`);
        assertNoSecrets(JSON.stringify(rows), secrets, 'the audit_events table');
      } finally {
        await handle.close();
      }
    });

    it('user_deleted: afterwards every event of the user has ip, user agent and details cleared; other users keep theirs', async () => {
      const before = await eventsOf(t.app, adminToken, subject.id);
      const response = await call(t.app, 'DELETE', '/users/me', { body: { password: subject.password }, token: current.access_token, userAgent: AGENT });
      assert.equal(response.statusCode, 204, response.body);
      const after = await eventsOf(t.app, adminToken, subject.id);
      assert.equal(after.length, before.length + 1);
      assertEvent(after[0], { event: 'user_deleted', userId: subject.id, userAgent: null, ip: null, since: started });
      assert.deepEqual(after.slice(1).map((item) => [item.id, item.event]), before.map((item) => [item.id, item.event]));
      for (const item of after) {
        assert.equal(item.ip, null, JSON.stringify(item));
        assert.equal(item.user_agent, null, JSON.stringify(item));
        assert.deepEqual(item.details, {}, JSON.stringify(item));
      }
      // Other users' events keep their client: the admin's login, and the locked-out user's events.
      const adminLogins = await eventsOf(t.app, adminToken, admin.id, 'login_success');
      assert.ok(adminLogins.length > 0 && adminLogins.every((item) => item.ip === '127.0.0.1' && item.details.session_id !== undefined), JSON.stringify(adminLogins));
      assertEvent(await latest('login_locked', victimId), { event: 'login_locked', userId: victimId, userAgent: OTHER_AGENT, since: started });
      const handle = openDatabase(t.databaseUrl, t.cwd);
      try {
        const raw = JSON.stringify(await handle.db.selectFrom('audit_events').selectAll().execute());
        assert.ok(!raw.includes(AGENT), "the deleted user's user agent is still in the audit table");
        assert.ok(!raw.includes(subject.email), "the deleted user's email is in the audit table");
      } finally {
        await handle.close();
      }
    });
  });

  describe(`password reset through the outbox (${backend})`, () => {
    let t: TestApp;
    let outbox: string;
    let adminToken: string;
    const seen = new Set<string>();
    const newPassword = 'Cobalt-Meadow-Ferry-4410';
    before(async () => {
      t = await createTestApp(backend, ADMIN_ENV);
      outbox = path.join(t.cwd, 'data', 'outbox');
      adminToken = (await loginAdmin(t.app)).tokens.access_token;
    });
    after(() => t.close());

    const requestsRecorded = (count: number) =>
      waitFor(`${count} password_reset_requested events`, async () => {
        const { body } = await auditPage(t.app, adminToken, { event: 'password_reset_requested', limit: 200 });
        return body.items.length >= count ? body.items : undefined;
      });

    it('forgot: 202 with the same body for a known and an unknown email; exactly one mail, to the known one, with a token line', async () => {
      const user = await register(t.app);
      const unknown = `no.such.user.${PID}@example.com`;
      const forUnknown = await forgot(t.app, unknown);
      const forKnown = await forgot(t.app, user.email);
      assert.equal(forUnknown.statusCode, 202, forUnknown.body);
      assert.equal(forKnown.statusCode, 202, forKnown.body);
      assert.equal(forKnown.body, forUnknown.body);
      assert.equal(typeof forKnown.json<{ message: unknown }>().message, 'string', forKnown.body);
      assert.ok(!forKnown.body.includes(user.email));

      await nextResetToken(outbox, user.email, seen);
      await requestsRecorded(2);
      const messages = outboxMessages(outbox);
      assert.equal(messages.length, 1, JSON.stringify(messages.map((message) => message.to)));
      assert.equal(messages[0]?.to, user.email);
      assert.equal(messages[0]?.tokens.length, 1);
    });

    it('reset: 204; every old session ends; the old password fails and the new one works; the same token again → 400', async () => {
      const user = await signUp(t.app);
      const other = await login(t.app, user);
      const rotated = await refreshed(t.app, other.refresh_token);
      assert.equal((await forgot(t.app, user.email)).statusCode, 202);
      const token = await nextResetToken(outbox, user.email, seen);

      const response = await resetPassword(t.app, token, newPassword);
      assert.equal(response.statusCode, 204, response.body);
      assert.equal(response.body, '');
      for (const tokens of [user.tokens, rotated]) {
        assertRevoked(await get(t.app, '/users/me', tokens.access_token));
        assertRevoked(await get(t.app, '/tasks', tokens.access_token));
        assertTokenRejected(await refresh(t.app, tokens.refresh_token), INVALID_REFRESH, 'invalid_token');
      }
      assertRevoked(await get(t.app, '/users/me', other.access_token));
      assertError(await post(t.app, '/auth/login', { email: user.email, password: user.password }), 401, INCORRECT_LOGIN, 'invalid_credentials');
      const fresh = await login(t.app, { email: user.email, password: newPassword });
      await assertWorks(t.app, fresh.access_token, 'a login with the new password');

      const replay = await resetPassword(t.app, token, 'Another-Fresh-Secret-9932');
      assertError(replay, 400, INVALID_RESET, 'invalid_reset_token');
      assertError(await post(t.app, '/auth/login', { email: user.email, password: 'Another-Fresh-Secret-9932' }), 401, INCORRECT_LOGIN, 'invalid_credentials');
      await login(t.app, { email: user.email, password: newPassword });
    });

    it('a garbage token → 400 with the same body', async () => {
      for (const garbage of ['garbage', 'A'.repeat(43), 'token=abc', '0'.repeat(64)]) {
        assertError(await resetPassword(t.app, garbage, newPassword), 400, INVALID_RESET, 'invalid_reset_token');
      }
    });

    it('a weak new_password → 422 and the token is not spent: a correct retry works', async () => {
      const user = await register(t.app);
      assert.equal((await forgot(t.app, user.email)).statusCode, 202);
      const token = await nextResetToken(outbox, user.email, seen);
      assertValidation(await resetPassword(t.app, token, 'Zq7!vR2'), ['body', 'new_password'], 'string_too_short');
      assertValidation(await resetPassword(t.app, token, 'password123'), ['body', 'new_password']);
      await login(t.app, user);
      const retry = await resetPassword(t.app, token, newPassword);
      assert.equal(retry.statusCode, 204, retry.body);
      await login(t.app, { email: user.email, password: newPassword });
    });

    it('using the newest reset token also spends the older ones', async () => {
      const user = await register(t.app);
      assert.equal((await forgot(t.app, user.email)).statusCode, 202);
      const older = await nextResetToken(outbox, user.email, seen);
      assert.equal((await forgot(t.app, user.email)).statusCode, 202);
      const newer = await nextResetToken(outbox, user.email, seen);
      assert.notEqual(older, newer);
      assert.equal((await resetPassword(t.app, newer, newPassword)).statusCode, 204);
      assertError(await resetPassword(t.app, older, 'Older-Token-Password-7781'), 400, INVALID_RESET, 'invalid_reset_token');
      await login(t.app, { email: user.email, password: newPassword });
    });

    it('a deactivated account gets no mail, and a token from before the deactivation → 400', async () => {
      const user = await signUp(t.app);
      assert.equal((await forgot(t.app, user.email)).statusCode, 202);
      const token = await nextResetToken(outbox, user.email, seen);
      assert.equal((await send(t.app, 'PUT', '/users/me/deactivate', undefined, user.tokens.access_token)).statusCode, 200);
      const recorded = (await auditPage(t.app, adminToken, { event: 'password_reset_requested', limit: 200 })).body.items.length;
      assert.equal((await forgot(t.app, user.email)).statusCode, 202);
      await requestsRecorded(recorded + 1);
      const mails = outboxMessages(outbox).filter((message) => message.to === user.email);
      assert.equal(mails.length, 1, 'a deactivated account was sent a reset mail');
      assertError(await resetPassword(t.app, token, newPassword), 400, INVALID_RESET, 'invalid_reset_token');
      assertError(await post(t.app, '/auth/login', { email: user.email, password: user.password }), 403, 'Account is disabled', 'account_disabled');
    });

    it('the database stores only a hash of each reset token', async () => {
      assert.ok(seen.size >= 6, `only ${seen.size} tokens seen`);
      const handle = openDatabase(t.databaseUrl, t.cwd);
      try {
        const rows = await handle.db.selectFrom('password_reset_tokens').selectAll().execute();
        assert.equal(rows.length, seen.size);
        const raw = JSON.stringify(rows);
        for (const token of seen) assert.ok(!raw.includes(token), 'a reset token is stored in clear');
      } finally {
        await handle.close();
      }
    });
  });

  describe(`password reset tokens expire after 15 minutes (${backend})`, () => {
    let t: TestApp;
    let clock = Date.now();
    const outbox = mkdtempSync(path.join(tmpdir(), 'gatepass-outbox-'));
    const seen = new Set<string>();
    before(async () => {
      t = await createTestApp(backend, { OUTBOX_DIR: outbox }, { now: () => clock });
    });
    after(async () => {
      await t.close();
      rmSync(outbox, { recursive: true, force: true });
    });

    it('OUTBOX_DIR receives the mail; a token used 15 min − 1 s after the request works, one used 15 min + 1 s after → 400', async () => {
      const user = await register(t.app);
      assert.equal((await forgot(t.app, user.email)).statusCode, 202);
      const early = await nextResetToken(outbox, user.email, seen);
      assert.ok(!existsSync(path.join(t.cwd, 'data', 'outbox')), 'mail went to the default outbox despite OUTBOX_DIR');
      clock += RESET_TTL_MS - 1000;
      const firstPassword = 'Saffron-Tunnel-Ledger-3318';
      assert.equal((await resetPassword(t.app, early, firstPassword)).statusCode, 204);

      assert.equal((await forgot(t.app, user.email)).statusCode, 202);
      const late = await nextResetToken(outbox, user.email, seen);
      clock += RESET_TTL_MS + 1000;
      assertError(await resetPassword(t.app, late, 'Saffron-Tunnel-Ledger-4429'), 400, INVALID_RESET, 'invalid_reset_token');
      await login(t.app, { email: user.email, password: firstPassword });
    });
  });

  describe(`password forgot is rate-limited per client (${backend})`, () => {
    let t: TestApp;
    let clock = Date.now();
    before(async () => {
      t = await createTestApp(backend, { LOGIN_RATE_LIMIT_PER_MINUTE: '3' }, { now: () => clock });
    });
    after(() => t.close());

    it('the fourth request in a minute → 429 with Retry-After; another client is not affected; the next minute works', async () => {
      for (let attempt = 1; attempt <= 3; attempt += 1) {
        assert.equal((await forgot(t.app, `limited.${attempt}.${PID}@example.com`)).statusCode, 202, `attempt ${attempt}`);
      }
      const limited = await forgot(t.app, `limited.4.${PID}@example.com`);
      assertError(limited, 429, 'Too many requests; try again in 60 seconds', 'rate_limited');
      assert.equal(limited.headers['retry-after'], '60');
      assert.equal((await forgot(t.app, `limited.5.${PID}@example.com`, { remoteAddress: '198.51.100.20' })).statusCode, 202);
      clock += 60_000;
      assert.equal((await forgot(t.app, `limited.6.${PID}@example.com`)).statusCode, 202);
    });
  });

  describe(`GET /metrics, protected by default (${backend})`, () => {
    let t: TestApp;
    let adminToken: string;
    let studentToken: string;
    let teacherToken: string;
    before(async () => {
      t = await createTestApp(backend, { ...ADMIN_ENV, ACCOUNT_LOCKOUT_THRESHOLD: '2', REFRESH_REUSE_GRACE_SECONDS: '0', LOGIN_RATE_LIMIT_PER_MINUTE: '20' });
      adminToken = (await loginAdmin(t.app)).tokens.access_token; // login 1, session 1
      studentToken = (await signUp(t.app)).tokens.access_token; // login 2, session 2
      teacherToken = (await signUpTeacher(t.app, adminToken)).tokens.access_token; // login 3, session 3
    });
    after(() => t.close());

    const scrape = (options: { token?: string; authorization?: string } = {}) => call(t.app, 'GET', '/metrics', options);

    it('no auth → 401 Not authenticated; a garbage token → 401 invalid_token; a student or teacher → 403', async () => {
      assertNotAuthenticated(await scrape());
      assertTokenRejected(await scrape({ token: 'scrape-secret-123' }), 'Could not validate credentials', 'invalid_token');
      assertForbidden(await scrape({ token: studentToken }));
      assertForbidden(await scrape({ token: teacherToken }));
    });

    it("an admin's token → 200 Prometheus text with the event counters, rate limits, verification times, active sessions and process metrics", async () => {
      const user = await signUp(t.app); // login 4, session 4
      const second = await login(t.app, user); // login 5, session 5
      await refreshed(t.app, second.refresh_token); // refresh 1
      assert.equal((await refresh(t.app, second.refresh_token)).statusCode, 401); // refresh_reuse_detected 1; session 5 revoked
      assert.equal((await post(t.app, '/auth/login', { email: user.email, password: `${user.password}x` })).statusCode, 401); // login_failure 1
      assert.equal((await post(t.app, '/auth/login', { email: `ghost.${PID}@example.com`, password: user.password })).statusCode, 401); // login_failure 2
      const victim = await register(t.app);
      for (let attempt = 1; attempt <= 2; attempt += 1) {
        assert.equal((await post(t.app, '/auth/login', { email: victim.email, password: `${victim.password}x` })).statusCode, 401); // login_failure 3, 4
      }
      assert.equal((await post(t.app, '/auth/login', victim)).statusCode, 429); // login_locked 1
      for (let attempt = 1; attempt <= 21; attempt += 1) {
        const response = await forgot(t.app, `flood.${attempt}.${PID}@example.com`, { remoteAddress: '203.0.113.9' });
        assert.equal(response.statusCode, attempt <= 20 ? 202 : 429, `forgot ${attempt}`);
      }

      const response = await scrape({ token: adminToken });
      assert.equal(response.statusCode, 200, response.body);
      assert.match(String(response.headers['content-type']), /^text\/plain/);
      const text = response.body;
      assert.match(text, /^# TYPE gatepass_events_total counter$/m);
      assert.equal(requireSample(text, 'gatepass_events_total{event="login_success"}'), 5);
      assert.equal(requireSample(text, 'gatepass_events_total{event="login_failure"}'), 4);
      assert.equal(requireSample(text, 'gatepass_events_total{event="refresh"}'), 1);
      assert.equal(requireSample(text, 'gatepass_events_total{event="refresh_reuse_detected"}'), 1);
      assert.equal(requireSample(text, 'gatepass_events_total{event="login_locked"}'), 1);
      assert.equal(requireSample(text, 'gatepass_rate_limited_total{bucket="password-forgot"}'), 1);
      assert.ok(requireSample(text, 'gatepass_token_verification_seconds_bucket{le="+Inf"}') > 0, text);
      assert.ok(requireSample(text, 'gatepass_token_verification_seconds_count') > 0, text);
      assert.equal(requireSample(text, 'gatepass_active_sessions'), 4);
      assert.ok(requireSample(text, 'gatepass_process_cpu_user_seconds_total') > 0, text);
      assertNoSecrets(text, [ADMIN_PASSWORD, user.password, victim.password, adminToken], '/metrics');

      // The counters agree with the audit trail.
      const failures = (await auditPage(t.app, adminToken, { event: 'login_failure', limit: 200 })).body.items.length;
      assert.equal(failures, 4);
    });
  });

  describe(`GET /metrics with METRICS_TOKEN (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend, { METRICS_TOKEN: 'scrape-secret-123' });
    });
    after(() => t.close());

    it('Bearer METRICS_TOKEN → 200; a wrong token → 401 Could not validate credentials; none → 401; a student → 403', async () => {
      const ok = await call(t.app, 'GET', '/metrics', { authorization: 'Bearer scrape-secret-123' });
      assert.equal(ok.statusCode, 200, ok.body);
      assert.match(String(ok.headers['content-type']), /^text\/plain/);
      assert.match(ok.body, /^gatepass_active_sessions 0$/m);
      assert.ok(!ok.body.includes('scrape-secret-123'));
      assertTokenRejected(await call(t.app, 'GET', '/metrics', { authorization: 'Bearer scrape-secret-124' }), 'Could not validate credentials', 'invalid_token');
      assertTokenRejected(await call(t.app, 'GET', '/metrics', { authorization: 'Bearer scrape-secret-12' }), 'Could not validate credentials', 'invalid_token');
      assertNotAuthenticated(await call(t.app, 'GET', '/metrics', { authorization: 'Basic scrape-secret-123' }));
      assertNotAuthenticated(await call(t.app, 'GET', '/metrics'));
      const student = await signUp(t.app);
      assertForbidden(await call(t.app, 'GET', '/metrics', { token: student.tokens.access_token }));
    });
  });

  describe(`GET /metrics with METRICS=public and METRICS=off (${backend})`, () => {
    let open: TestApp;
    let off: TestApp;
    before(async () => {
      open = await createTestApp(backend, { METRICS: 'public' });
      off = await createTestApp(backend, { METRICS: 'off' });
    });
    after(async () => {
      await open.close();
      await off.close();
    });

    it('public: 200 without any credentials', async () => {
      const response = await get(open.app, '/metrics');
      assert.equal(response.statusCode, 200, response.body);
      assert.match(String(response.headers['content-type']), /^text\/plain/);
      assert.match(response.body, /^# TYPE gatepass_events_total counter$/m);
    });

    it('off: 404 Not Found, with or without credentials', async () => {
      assertError(await get(off.app, '/metrics'), 404, 'Not Found', 'not_found');
      const user = await signUp(off.app);
      assertError(await get(off.app, '/metrics', user.tokens.access_token), 404, 'Not Found', 'not_found');
    });
  });
}
