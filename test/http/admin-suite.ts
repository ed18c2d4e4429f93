import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError, loadSettings } from '../../src/config/settings.js';
import { buildApp, type GatepassApp } from '../../src/http/app.js';
import {
  ADMIN_EMAIL,
  ADMIN_ENV,
  ADMIN_PASSWORD,
  listUsers,
  loginAdmin,
  PAGE_KEYS,
  patchUser,
  type Role,
  setRole,
  signUpTeacher,
  type UserPage,
} from '../helpers/admin.js';
import { type Backend, createTestApp, sameDatabaseEnv, type TestApp } from '../helpers/app.js';
import { eventsOf } from '../helpers/audit.js';
import {
  assertError,
  claimsOf,
  get,
  ISO_UTC,
  login,
  type Method,
  post,
  refresh,
  register,
  send,
  signUp,
  type Tokens,
  USER_KEYS,
  type UserBody,
} from '../helpers/client.js';
import {
  assertForbidden,
  assertNotAuthenticated,
  assertRevoked,
  assertTokenRejected,
  assertValidation,
  assertWorks,
} from '../helpers/responses.js';

/**
 * Roles and the admin API (API.md "Roles and admin"): the bootstrap admin from ADMIN_EMAIL/ADMIN_PASSWORD,
 * the permissions of each role and ROLE_PERMISSIONS, and /admin/users. Real HTTP handling over
 * `app.inject`, a real database.
 */

const INVALID_REFRESH = 'Invalid refresh token';
const INCORRECT_LOGIN = 'Incorrect email or password';

function assertUserObject(user: unknown, raw: string): void {
  assert.ok(typeof user === 'object' && user !== null, raw);
  assert.deepEqual(Object.keys(user).sort(), USER_KEYS, raw);
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
      assert.equal(registered[0].details.role, 'admin', JSON.stringify(registered));
    });

    it('a second app on the same database creates no duplicate and changes nothing (password, role), also with the email in upper case', async () => {
      const root = await loginAdmin(t.app);
      const deputy = await register(t.app);
      await setRole(t.app, root.tokens.access_token, deputy.id, 'admin');
      const deputyTokens = await login(t.app, deputy);
      // The admin changes their password and is then demoted by the other admin.
      const rootPassword = 'Quarry-Bellwether-Nimbus-3907';
      const change = await post(
        t.app,
        '/auth/password/change',
        { current_password: ADMIN_PASSWORD, new_password: rootPassword },
        root.tokens.access_token,
      );
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
        assert.equal(
          (await listUsers(app, deputyHere.access_token)).total,
          totalBefore,
          `ADMIN_EMAIL=${adminEmail}: a user was added at start`,
        );
        const found = await listUsers(app, deputyHere.access_token, '?email=root%40example');
        assert.deepEqual(found.items, rootBefore, `ADMIN_EMAIL=${adminEmail}: the existing admin account was changed at start`);
        assert.equal(found.items[0]?.role, 'teacher');
        assertError(
          await post(app, '/auth/login', { email: ADMIN_EMAIL, password: ADMIN_PASSWORD }),
          401,
          INCORRECT_LOGIN,
          'invalid_credentials',
        );
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
      {
        name: 'PATCH /admin/users/{id}',
        method: 'PATCH',
        url: () => `/admin/users/${targetId}`,
        body: { is_active: true },
        allowed: ['admin'],
        ok: 200,
      },
      {
        name: 'POST /admin/users/{id}/revoke-sessions',
        method: 'POST',
        url: () => `/admin/users/${targetId}/revoke-sessions`,
        allowed: ['admin'],
        ok: 204,
      },
      { name: 'GET /admin/audit', method: 'GET', url: () => '/admin/audit', allowed: ['admin'], ok: 200 },
      { name: 'GET /tasks', method: 'GET', url: () => '/tasks', allowed: ['student', 'teacher', 'admin'], ok: 200 },
      {
        name: 'POST /tasks',
        method: 'POST',
        url: () => '/tasks',
        body: { title: 'matrix' },
        allowed: ['student', 'teacher', 'admin'],
        ok: 201,
      },
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
      for (const route of routes)
        assertTokenRejected(
          await send(t.app, route.method, route.url(), route.body, 'not.a.jwt'),
          'Could not validate credentials',
          'invalid_token',
        );
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
        const base = {
          NODE_ENV: 'test',
          JWT_SECRET: 'a'.repeat(64),
          JWT_REFRESH_SECRET: 'b'.repeat(64),
          DATABASE_URL: 'sqlite:./data/x.db',
        };
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
      assert.deepEqual(
        all.items.map((user) => user.id),
        [admin.id, alice.id, bob.id, carol.id],
      );
      for (const user of all.items) {
        assertUserObject(user, response.body);
        assert.match(user.created_at, ISO_UTC);
      }
      assert.equal(all.items[1]?.email, pinned.email);
      assert.equal(all.items[1].role, 'student');

      const second = await listUsers(t.app, token, '?limit=1&offset=1');
      assert.deepEqual(second, { items: [all.items[1]], total: 4, limit: 1, offset: 1 });
      const beyond = await listUsers(t.app, token, '?limit=2&offset=4');
      assert.deepEqual(beyond, { items: [], total: 4, limit: 2, offset: 4 });

      // Case-insensitive substring; LIKE wildcards are literal.
      const byEmail = await listUsers(t.app, token, `?email=${encodeURIComponent(`ZEPHYR.QUILL.${PID}`)}`);
      assert.deepEqual(
        byEmail.items.map((user) => user.id),
        [alice.id],
      );
      assert.equal(byEmail.total, 1);
      assert.equal((await listUsers(t.app, token, '?email=zephyr_quill')).total, 0);
      assert.equal((await listUsers(t.app, token, '?email=%25')).total, 0);
      assert.equal((await listUsers(t.app, token, '?email=EXAMPLE.COM')).total, 4);

      await setRole(t.app, token, bob.id, 'teacher');
      const teachers = await listUsers(t.app, token, '?role=teacher');
      assert.deepEqual(
        teachers.items.map((user) => user.id),
        [bob.id],
      );
      assert.equal(teachers.total, 1);
      assert.deepEqual(
        (await listUsers(t.app, token, '?role=student')).items.map((user) => user.id),
        [alice.id, carol.id],
      );
      assert.deepEqual(
        (await listUsers(t.app, token, '?role=admin')).items.map((user) => user.id),
        [admin.id],
      );
      const combined = await listUsers(t.app, token, '?role=student&email=ZEPHYR&limit=5');
      assert.deepEqual(
        combined.items.map((user) => user.id),
        [alice.id],
      );
    });

    it('GET /admin/users: role=bogus, limit=0, limit=101, offset=-1 answer 422 at the query field', async () => {
      assertValidation(await get(t.app, '/admin/users?role=bogus', token), { loc: ['query', 'role'] });
      assertValidation(await get(t.app, '/admin/users?limit=0', token), { loc: ['query', 'limit'], type: 'greater_than_equal' });
      assertValidation(await get(t.app, '/admin/users?limit=101', token), { loc: ['query', 'limit'], type: 'less_than_equal' });
      assertValidation(await get(t.app, '/admin/users?offset=-1', token), { loc: ['query', 'offset'], type: 'greater_than_equal' });
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
      assertValidation(await get(t.app, '/admin/users/abc', token), { loc: ['path', 'id'] });
      assertValidation(await get(t.app, '/admin/users/0', token), { loc: ['path', 'id'] });
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

      assertValidation(await patchUser(t.app, user.id, { role: 'superuser' }, token), { loc: ['body', 'role'] });
      assertValidation(await patchUser(t.app, user.id, { is_active: 'nope' }, token), { loc: ['body', 'is_active'] });
      assert.equal((await get(t.app, `/admin/users/${user.id}`, token)).json<UserBody>().role, 'teacher');
      assertError(await patchUser(t.app, 999999, { role: 'teacher' }, token), 404, 'User not found', 'not_found');
      assertValidation(await patchUser(t.app, 'abc', { role: 'teacher' }, token), { loc: ['path', 'id'] });
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
      assertError(
        await post(t.app, '/auth/login', { email: user.email, password: user.password }),
        403,
        'Account is disabled',
        'account_disabled',
      );
      // A wrong password still says only "incorrect": disabled is revealed after a correct one alone.
      assertError(
        await post(t.app, '/auth/login', { email: user.email, password: `${user.password}x` }),
        401,
        INCORRECT_LOGIN,
        'invalid_credentials',
      );
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
}
