import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadSettings } from '../../src/config/settings.js';
import { buildApp, type GatepassApp } from '../../src/http/app.js';
import { ADMIN_ENV, loginAdmin, type Role, setRole } from '../helpers/admin.js';
import { type Backend, createTestApp, sameDatabaseEnv, type TestApp } from '../helpers/app.js';
import { claimsOf, get, login, refreshed, signUp, type UserBody } from '../helpers/client.js';
import { assertForbidden, assertRevoked, assertWorks } from '../helpers/responses.js';

/**
 * A role change takes effect on the next request (API.md lists it among revocations): the tokens
 * minted before it are refused, a refresh carries the new role, also on a clock that never moves and
 * on a second app on the same database.
 */

export function defineRoleChangeSuite(backend: Backend): void {
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
      assert.equal(
        again.statusCode,
        401,
        `a token revoked by the promotion was accepted again after the demotion: ${again.statusCode} ${again.body}`,
      );
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
}
