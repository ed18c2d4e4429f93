import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDatabase } from '../../src/store/database.js';
import { ADMIN_ENV, ADMIN_PASSWORD, loginAdmin, patchUser } from '../helpers/admin.js';
import { type Backend, createTestApp, type TestApp } from '../helpers/app.js';
import { allAuditPages, assertEvent, type AuditItem, auditPage, eventsOf } from '../helpers/audit.js';
import {
  assertError,
  call,
  claimsOf,
  forgot,
  get,
  loginAs,
  refresh,
  refreshed,
  register,
  resetPassword,
  type Tokens,
  type UserBody,
} from '../helpers/client.js';
import { waitForValue } from '../helpers/instances.js';
import { MAIL_WAIT_MS, nextResetToken } from '../helpers/outbox.js';
import { assertNoSecrets, assertRevoked, assertTokenRejected, assertValidation } from '../helpers/responses.js';

/**
 * The audit trail (API.md, the audit events and GET /admin/audit): each event with its time, user,
 * actor, ip and user agent; filters and the `before` cursor; the user's export; no secret in any page;
 * and what account deletion clears.
 */

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

const INCORRECT_LOGIN = 'Incorrect email or password';
const PID = process.pid;

export function defineAuditSuite(backend: Backend): void {
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
    const latest = async (event: string, userId = subject.id): Promise<AuditItem | undefined> =>
      (await eventsOf(t.app, adminToken, userId, event))[0];

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
      const response = await call(t.app, 'POST', '/auth/register', {
        body: { email: subject.email, password: subject.password },
        userAgent: AGENT,
      });
      assert.equal(response.statusCode, 201, response.body);
      subject.id = response.json<UserBody>().id;
      const event = assertEvent(await latest('register'), { event: 'register', userId: subject.id, userAgent: AGENT, since: started });
      assert.equal(event.details.role, 'student', JSON.stringify(event));
    });

    it('login_failure for a wrong password and for an unknown email (no user id)', async () => {
      const wrong = 'Marble-Falcon-Drift-6605';
      secrets.push(wrong);
      assertError(
        await call(t.app, 'POST', '/auth/login', { body: { email: subject.email, password: wrong }, userAgent: AGENT }),
        401,
        INCORRECT_LOGIN,
        'invalid_credentials',
      );
      const unknown = `nobody.${PID}@example.com`;
      assertError(
        await call(t.app, 'POST', '/auth/login', { body: { email: unknown, password: wrong }, userAgent: OTHER_AGENT }),
        401,
        INCORRECT_LOGIN,
        'invalid_credentials',
      );
      const failure = assertEvent(await latest('login_failure'), {
        event: 'login_failure',
        userId: subject.id,
        userAgent: AGENT,
        since: started,
      });
      assert.equal(failure.details.reason, 'wrong_password', JSON.stringify(failure));
      const { body } = await auditPage(t.app, adminToken, { event: 'login_failure', limit: 1 });
      const anonymous = assertEvent(body.items[0], { event: 'login_failure', userId: null, userAgent: OTHER_AGENT, since: started });
      assert.equal(anonymous.details.reason, 'unknown_email', JSON.stringify(anonymous));
      assert.ok(!JSON.stringify(anonymous).includes(unknown), 'the unknown email is recorded');
    });

    it('login_success, refresh, refresh_reuse_detected', async () => {
      const first = keep(await loginAs(t.app, subject, AGENT));
      const sid = claimsOf(first.access_token).sid;
      const success = assertEvent(await latest('login_success'), {
        event: 'login_success',
        userId: subject.id,
        userAgent: AGENT,
        since: started,
      });
      assert.equal(success.details.session_id, sid, JSON.stringify(success));

      keep(await refreshed(t.app, first.refresh_token, AGENT));
      const rotated = assertEvent(await latest('refresh'), { event: 'refresh', userId: subject.id, userAgent: AGENT, since: started });
      assert.equal(rotated.details.session_id, sid, JSON.stringify(rotated));

      const reuse = await refresh(t.app, first.refresh_token, AGENT);
      assertTokenRejected(reuse, 'Refresh token reuse detected. The session has been revoked; please log in again.', 'token_reused');
      const detected = assertEvent(await latest('refresh_reuse_detected'), {
        event: 'refresh_reuse_detected',
        userId: subject.id,
        userAgent: AGENT,
        since: started,
      });
      assert.equal(detected.details.session_id, sid, JSON.stringify(detected));
    });

    it('session_revoked (the user ends one of their sessions) and logout', async () => {
      current = keep(await loginAs(t.app, subject, AGENT));
      const ended = keep(await loginAs(t.app, subject, AGENT));
      const endedSid = String(claimsOf(ended.access_token).sid);
      const response = await call(t.app, 'DELETE', `/auth/sessions/${endedSid}`, { token: current.access_token, userAgent: AGENT });
      assert.equal(response.statusCode, 204, response.body);
      const revoked = assertEvent(await latest('session_revoked'), {
        event: 'session_revoked',
        userId: subject.id,
        userAgent: AGENT,
        since: started,
      });
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
      const response = await call(t.app, 'POST', `/admin/users/${subject.id}/revoke-sessions`, {
        token: adminToken,
        userAgent: ADMIN_AGENT,
      });
      assert.equal(response.statusCode, 204, response.body);
      assertRevoked(await get(t.app, '/users/me', current.access_token));
      assertEvent(await latest('session_revoked'), {
        event: 'session_revoked',
        userId: subject.id,
        actorId: admin.id,
        userAgent: ADMIN_AGENT,
        since: started,
      });
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
      const requested = assertEvent(await latest('password_reset_requested'), {
        event: 'password_reset_requested',
        userId: subject.id,
        userAgent: AGENT,
        since: started,
      });
      assert.equal(requested.details.known, true, JSON.stringify(requested));

      const unknown = `nobody.else.${PID}@example.com`;
      assert.equal((await forgot(t.app, unknown, { userAgent: OTHER_AGENT })).statusCode, 202);
      const anonymous = await waitForValue(
        'the password_reset_requested event of an unknown email',
        async () => {
          const { body } = await auditPage(t.app, adminToken, { event: 'password_reset_requested', limit: 1 });
          const item = body.items[0];
          return item !== undefined && item.user_id === null ? item : undefined;
        },
        MAIL_WAIT_MS,
      );
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
      const changed = assertEvent(await latest('role_changed'), {
        event: 'role_changed',
        userId: subject.id,
        actorId: admin.id,
        userAgent: ADMIN_AGENT,
        since: started,
      });
      assert.deepEqual(changed.details, { from: 'student', to: 'teacher' });
    });

    it('user_deactivated and user_activated by an admin (actor), and user_deactivated by the user (no actor)', async () => {
      assert.equal((await patchUser(t.app, subject.id, { is_active: false }, adminToken, ADMIN_AGENT)).statusCode, 200);
      assertEvent(await latest('user_deactivated'), {
        event: 'user_deactivated',
        userId: subject.id,
        actorId: admin.id,
        userAgent: ADMIN_AGENT,
        since: started,
      });
      assert.equal((await patchUser(t.app, subject.id, { is_active: true }, adminToken, ADMIN_AGENT)).statusCode, 200);
      assertEvent(await latest('user_activated'), {
        event: 'user_activated',
        userId: subject.id,
        actorId: admin.id,
        userAgent: ADMIN_AGENT,
        since: started,
      });

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
        assertError(
          await call(t.app, 'POST', '/auth/login', { body: { email: victim.email, password: wrong }, userAgent: OTHER_AGENT }),
          401,
          INCORRECT_LOGIN,
          'invalid_credentials',
        );
      }
      const locked = await call(t.app, 'POST', '/auth/login', {
        body: { email: victim.email, password: victim.password },
        userAgent: OTHER_AGENT,
      });
      assert.equal(locked.statusCode, 429, locked.body);
      assert.equal(locked.json<{ code: string }>().code, 'account_locked');
      assert.match(
        locked.json<{ detail: string }>().detail,
        /^Account temporarily locked after repeated failed logins; try again in (59|60) seconds$/,
      );
      assert.match(String(locked.headers['retry-after']), /^(59|60)$/);
      assertEvent(await latest('login_locked', victim.id), {
        event: 'login_locked',
        userId: victim.id,
        userAgent: OTHER_AGENT,
        since: started,
      });
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
      assert.deepEqual(
        ids,
        [...ids].sort((a, b) => b - a),
        'newest first',
      );
      assertValidation(await get(t.app, '/admin/audit?event=bogus', adminToken), { loc: ['query', 'event'] });
      assertValidation(await get(t.app, '/admin/audit?limit=0', adminToken), { loc: ['query', 'limit'] });
      assertValidation(await get(t.app, '/admin/audit?limit=201', adminToken), { loc: ['query', 'limit'] });
      assertValidation(await get(t.app, '/admin/audit?user_id=abc', adminToken), { loc: ['query', 'user_id'] });
    });

    it('the before cursor walks the whole trail, newest first, with no overlap and no gap', async () => {
      const { items: everything } = await allAuditPages(t.app, adminToken, 200);
      const ids = everything.map((item) => item.id);
      assert.ok(ids.length >= 30, `only ${ids.length} events`);
      assert.deepEqual(
        ids,
        [...ids].sort((a, b) => b - a),
      );
      assert.equal(new Set(ids).size, ids.length);
      for (const limit of [1, 3, 7]) {
        const paged = await allAuditPages(t.app, adminToken, limit);
        assert.deepEqual(
          paged.items.map((item) => item.id),
          ids,
          `pages of ${limit}`,
        );
      }
      const mine = (await eventsOf(t.app, adminToken, subject.id)).map((item) => item.id);
      const mineInPages = await allAuditPages(t.app, adminToken, 4, { user_id: subject.id });
      assert.deepEqual(
        mineInPages.items.map((item) => item.id),
        mine,
      );
      // Page by page from a given cursor: the page after `before=X` starts right below X.
      const first = await auditPage(t.app, adminToken, { limit: 5 });
      const next = await auditPage(t.app, adminToken, { limit: 5, before: first.body.next_before ?? 0 });
      assert.deepEqual(
        [...first.body.items, ...next.body.items].map((item) => item.id),
        ids.slice(0, 10),
      );
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
      const expected = adminView.map((item) =>
        item.actor_id === null || item.actor_id === subject.id ? item : { ...item, ip: null, user_agent: null },
      );
      assert.deepEqual(exported, expected);
      assert.ok(
        exported.some(
          (item) => item.event === 'role_changed' && item.actor_id === admin.id && item.ip === null && item.user_agent === null,
        ),
      );
      assert.ok(
        adminView.some((item) => item.event === 'role_changed' && item.user_agent === ADMIN_AGENT),
        'the admin view keeps the admin user agent',
      );
      assert.ok(!response.body.includes(ADMIN_AGENT), "the admin's user agent is not in the export");
      assert.ok(
        exported.some((item) => item.user_agent === AGENT && item.ip === '127.0.0.1'),
        "the user's own events keep their ip and user agent",
      );
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
      const response = await call(t.app, 'DELETE', '/users/me', {
        body: { password: subject.password },
        token: current.access_token,
        userAgent: AGENT,
      });
      assert.equal(response.statusCode, 204, response.body);
      const after = await eventsOf(t.app, adminToken, subject.id);
      assert.equal(after.length, before.length + 1);
      assertEvent(after[0], { event: 'user_deleted', userId: subject.id, userAgent: null, ip: null, since: started });
      assert.deepEqual(
        after.slice(1).map((item) => [item.id, item.event]),
        before.map((item) => [item.id, item.event]),
      );
      for (const item of after) {
        assert.equal(item.ip, null, JSON.stringify(item));
        assert.equal(item.user_agent, null, JSON.stringify(item));
        assert.deepEqual(item.details, {}, JSON.stringify(item));
      }
      // Other users' events keep their client: the admin's login, and the locked-out user's events.
      const adminLogins = await eventsOf(t.app, adminToken, admin.id, 'login_success');
      assert.ok(
        adminLogins.length > 0 && adminLogins.every((item) => item.ip === '127.0.0.1' && item.details.session_id !== undefined),
        JSON.stringify(adminLogins),
      );
      assertEvent(await latest('login_locked', victimId), {
        event: 'login_locked',
        userId: victimId,
        userAgent: OTHER_AGENT,
        since: started,
      });
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
}
