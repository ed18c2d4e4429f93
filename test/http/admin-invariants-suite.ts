import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import type { GatepassApp } from '../../src/http/app.js';
import { ADMIN_EMAIL, ADMIN_ENV, ADMIN_PASSWORD, patchUser } from '../helpers/admin.js';
import { createTestApp, type Backend, type TestApp } from '../helpers/app.js';
import { assertError, claimsOf, get, login, register, send, signUp, type Tokens } from '../helpers/client.js';
import { assertForbidden } from '../helpers/responses.js';

/**
 * Issue 12, property 8 (admin invariants), over real HTTP handling: no action leaves zero active
 * admins, even when two admins act at once, and nobody grants or takes away more than they hold.
 */

const LAST_ADMIN = 'This is the last active admin: make another account admin first';
/** How many times each race is run. */
const ROUNDS = 4;

interface UserBody {
  id: number;
  email: string;
  role: string;
  is_active: boolean;
}

type Account = { id: number; email: string; password: string; token: string };

function assertLastAdmin(response: LightMyRequestResponse): void {
  assertError(response, 409, LAST_ADMIN, 'last_admin');
}

async function loginAccount(app: GatepassApp, credentials: { email: string; password: string }): Promise<Account> {
  const tokens: Tokens = await login(app, credentials);
  return { ...credentials, id: Number(claimsOf(tokens.access_token).sub), token: tokens.access_token };
}

/** The active admins, as the database has them now (read with `token`, which needs users:read). */
async function activeAdmins(app: GatepassApp, token: string): Promise<number[]> {
  const response = await get(app, '/admin/users?role=admin&limit=100', token);
  assert.equal(response.statusCode, 200, response.body);
  return response
    .json<{ items: UserBody[] }>()
    .items.filter((user) => user.is_active)
    .map((user) => user.id);
}

/** A new account made admin by `adminToken`, logged in after the promotion. */
async function newAdmin(app: GatepassApp, adminToken: string): Promise<Account> {
  const user = await register(app);
  const promoted = await patchUser(app, user.id, { role: 'admin' }, adminToken);
  assert.equal(promoted.statusCode, 200, promoted.body);
  return loginAccount(app, user);
}

export function defineAdminInvariantsSuite(backend: Backend): void {
  describe(`the last active admin stays (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend, ADMIN_ENV);
    });
    after(() => t.close());

    it('the only admin cannot demote or deactivate themselves (PATCH), deactivate (PUT /users/me/deactivate) or delete themselves (DELETE /users/me): 409 last_admin, nothing changes', async () => {
      const root = await loginAccount(t.app, { email: ADMIN_EMAIL, password: ADMIN_PASSWORD });
      for (const role of ['teacher', 'student']) assertLastAdmin(await patchUser(t.app, root.id, { role }, root.token));
      assertLastAdmin(await patchUser(t.app, root.id, { is_active: false }, root.token));
      assertLastAdmin(await send(t.app, 'PUT', '/users/me/deactivate', undefined, root.token));
      assertLastAdmin(await send(t.app, 'DELETE', '/users/me', { password: ADMIN_PASSWORD }, root.token));
      // Nothing happened: the same token still works, the account is an active admin.
      const me = await get(t.app, '/users/me', root.token);
      assert.equal(me.statusCode, 200, me.body);
      assert.deepEqual({ role: me.json<UserBody>().role, is_active: me.json<UserBody>().is_active }, { role: 'admin', is_active: true });
      assert.deepEqual(await activeAdmins(t.app, root.token), [root.id]);
      // A no-op PATCH (the role it already has, active already) is no removal.
      assert.equal((await patchUser(t.app, root.id, { role: 'admin', is_active: true }, root.token)).statusCode, 200);
    });

    it('a deactivated admin does not count; with a second active admin the first may step down, and then the second is the last', async () => {
      const root = await loginAccount(t.app, { email: ADMIN_EMAIL, password: ADMIN_PASSWORD });
      const dormant = await newAdmin(t.app, root.token);
      assert.equal((await patchUser(t.app, dormant.id, { is_active: false }, root.token)).statusCode, 200);
      assertLastAdmin(await patchUser(t.app, root.id, { role: 'teacher' }, root.token));

      const deputy = await newAdmin(t.app, root.token);
      const stepDown = await patchUser(t.app, root.id, { role: 'teacher' }, root.token);
      assert.equal(stepDown.statusCode, 200, stepDown.body);
      assert.deepEqual(await activeAdmins(t.app, deputy.token), [deputy.id]);
      assertLastAdmin(await patchUser(t.app, deputy.id, { role: 'student' }, deputy.token));
      assertLastAdmin(await send(t.app, 'PUT', '/users/me/deactivate', undefined, deputy.token));
      assertLastAdmin(await send(t.app, 'DELETE', '/users/me', { password: deputy.password }, deputy.token));
      // The dormant admin, re-activated, is an active admin again: now the deputy may delete their account.
      assert.equal((await patchUser(t.app, dormant.id, { is_active: true }, deputy.token)).statusCode, 200);
      assert.equal((await send(t.app, 'DELETE', '/users/me', { password: deputy.password }, deputy.token)).statusCode, 204);
      const dormantAgain = await loginAccount(t.app, dormant);
      assert.deepEqual(await activeAdmins(t.app, dormantAgain.token), [dormant.id]);
      // Restore the bootstrap admin for the next tests.
      assert.equal((await patchUser(t.app, root.id, { role: 'admin' }, dormantAgain.token)).statusCode, 200);
    });
  });

  describe(`two admins removing each other at once leave exactly one (${backend})`, () => {
    let t: TestApp;
    /** The admin who survived the last round (starts as the bootstrap admin, the only one). */
    let survivor: Account;
    before(async () => {
      t = await createTestApp(backend, ADMIN_ENV);
      survivor = await loginAccount(t.app, { email: ADMIN_EMAIL, password: ADMIN_PASSWORD });
    });
    after(() => t.close());

    /**
     * Makes a second admin, fires `race` for the pair at once, and checks that exactly one request
     * succeeded and exactly one active admin is left: the one the successful request kept.
     */
    async function raceRound(
      what: string,
      race: (a: Account, b: Account) => [Promise<LightMyRequestResponse>, Promise<LightMyRequestResponse>],
      /** The admin that stays when the first (index 0) request is the one that succeeds. */
      keptByFirst: (a: Account, b: Account) => Account,
    ): Promise<void> {
      const a = survivor;
      const b = await newAdmin(t.app, a.token);
      assert.deepEqual((await activeAdmins(t.app, a.token)).sort(), [a.id, b.id].sort());
      const responses = await Promise.all(race(a, b));
      const statuses = responses.map((response) => response.statusCode);
      const winners = statuses.flatMap((status, index) => (status === 200 || status === 204 ? [index] : []));
      assert.equal(
        winners.length,
        1,
        `${what}: exactly one of the two succeeds: ${responses.map((r) => `${r.statusCode} ${r.body}`).join(' | ')}`,
      );
      const loser = responses[1 - (winners[0] ?? 0)];
      assert.ok(loser !== undefined);
      // The loser decided on the winner's result: refused as the last admin (409), or, having lost its
      // role or account first, refused as such (401 revoked token, 403 no longer allowed).
      assert.ok([401, 403, 409].includes(loser.statusCode), `${what}: the other is refused: ${loser.statusCode} ${loser.body}`);
      const kept = winners[0] === 0 ? keptByFirst(a, b) : keptByFirst(a, b) === a ? b : a;
      const fresh = await loginAccount(t.app, kept);
      assert.deepEqual(await activeAdmins(t.app, fresh.token), [kept.id], `${what}: exactly one active admin is left`);
      survivor = fresh;
    }

    it(`PATCH role: each demotes the other (${ROUNDS} rounds)`, async () => {
      for (let round = 0; round < ROUNDS; round++) {
        await raceRound(
          `round ${round}`,
          (a, b) => [patchUser(t.app, b.id, { role: 'student' }, a.token), patchUser(t.app, a.id, { role: 'teacher' }, b.token)],
          (a) => a,
        );
      }
    });

    it(`PATCH is_active: each deactivates the other (${ROUNDS} rounds)`, async () => {
      for (let round = 0; round < ROUNDS; round++) {
        await raceRound(
          `round ${round}`,
          (a, b) => [patchUser(t.app, b.id, { is_active: false }, a.token), patchUser(t.app, a.id, { is_active: false }, b.token)],
          (a) => a,
        );
      }
    });

    it(`each demotes themselves, or deactivates or deletes their own account, at once (${ROUNDS} rounds)`, async () => {
      for (let round = 0; round < ROUNDS; round++) {
        await raceRound(
          `round ${round}`,
          (a, b) =>
            round % 2 === 0
              ? [
                  send(t.app, 'PUT', '/users/me/deactivate', undefined, a.token),
                  send(t.app, 'DELETE', '/users/me', { password: b.password }, b.token),
                ]
              : [patchUser(t.app, a.id, { role: 'student' }, a.token), send(t.app, 'PUT', '/users/me/deactivate', undefined, b.token)],
          (_a, b) => b,
        );
      }
    });
  });

  describe(`nobody grants more than they hold (${backend})`, () => {
    let t: TestApp;
    let root: Account;
    let teacher: Account;
    before(async () => {
      // Teachers may write users here, but hold no audit:read: less than an admin.
      t = await createTestApp(backend, {
        ...ADMIN_ENV,
        ROLE_PERMISSIONS: '{"teacher":["tasks:read","tasks:write","users:read","users:write"]}',
      });
      root = await loginAccount(t.app, { email: ADMIN_EMAIL, password: ADMIN_PASSWORD });
      const user = await register(t.app);
      assert.equal((await patchUser(t.app, user.id, { role: 'teacher' }, root.token)).statusCode, 200);
      teacher = await loginAccount(t.app, user);
      assert.equal(claimsOf(teacher.token).role, 'teacher');
    });
    after(() => t.close());

    it('a teacher with users:write cannot make themselves or anyone else admin: 403, nothing changes', async () => {
      const student = await signUp(t.app);
      assertForbidden(await patchUser(t.app, teacher.id, { role: 'admin' }, teacher.token));
      assertForbidden(await patchUser(t.app, student.id, { role: 'admin' }, teacher.token));
      assertForbidden(await patchUser(t.app, student.id, { role: 'admin', is_active: true }, teacher.token));
      for (const id of [teacher.id, student.id]) {
        const user = (await get(t.app, `/admin/users/${id}`, root.token)).json<UserBody>();
        assert.notEqual(user.role, 'admin', JSON.stringify(user));
      }
      assert.deepEqual(await activeAdmins(t.app, root.token), [root.id]);
      // The teacher's own token was never revoked by a role change.
      assert.equal((await get(t.app, '/users/me', teacher.token)).statusCode, 200);
    });

    it('nor demote, deactivate or re-activate an admin: 403', async () => {
      const deputy = await newAdmin(t.app, root.token);
      assertForbidden(await patchUser(t.app, deputy.id, { role: 'student' }, teacher.token));
      assertForbidden(await patchUser(t.app, deputy.id, { is_active: false }, teacher.token));
      assert.equal((await patchUser(t.app, deputy.id, { is_active: false }, root.token)).statusCode, 200);
      assertForbidden(await patchUser(t.app, deputy.id, { is_active: true }, teacher.token));
      const after = (await get(t.app, `/admin/users/${deputy.id}`, root.token)).json<UserBody>();
      assert.deepEqual({ role: after.role, is_active: after.is_active }, { role: 'admin', is_active: false });
    });

    it("nor end an admin's sessions: 403, and the admin stays signed in", async () => {
      const deputy = await newAdmin(t.app, root.token);
      assertForbidden(await send(t.app, 'POST', `/admin/users/${deputy.id}/revoke-sessions`, undefined, teacher.token));
      assert.equal((await get(t.app, '/users/me', deputy.token)).statusCode, 200);
      const student = await signUp(t.app);
      assert.equal((await send(t.app, 'POST', `/admin/users/${student.id}/revoke-sessions`, undefined, teacher.token)).statusCode, 204);
      assert.equal((await get(t.app, '/users/me', student.tokens.access_token)).statusCode, 401);
    });

    it('but manages roles within their own: a student made teacher, deactivated and re-activated (200)', async () => {
      const student = await register(t.app);
      const promoted = await patchUser(t.app, student.id, { role: 'teacher' }, teacher.token);
      assert.equal(promoted.statusCode, 200, promoted.body);
      assert.equal(promoted.json<UserBody>().role, 'teacher');
      assert.equal((await patchUser(t.app, student.id, { is_active: false }, teacher.token)).statusCode, 200);
      assert.equal((await patchUser(t.app, student.id, { is_active: true, role: 'student' }, teacher.token)).statusCode, 200);
    });
  });
}
