import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { LightMyRequestResponse } from 'fastify';
import type { GatepassApp } from '../../src/http/app.js';
import { createTestApp, type Backend, type TestApp } from '../helpers/app.js';
import { claimsOf, get, login, post, register, send, signUp, type Tokens } from '../helpers/client.js';
import { waitFor } from '../helpers/instances.js';
import { outboxMessages, tokensMailedTo } from '../helpers/outbox.js';

/**
 * Security guarantees under concurrency (issue 12, properties 2, 3, 6 and 7): each test fires tens of
 * requests at once, as an attacker or an unlucky user would, and checks what is left afterwards.
 * Bounded: a few rounds of at most 50 requests each.
 */

const ADMIN = { email: 'root@example.com', password: 'Root-Admin-Passphrase-1' };
const ROUNDS = 5;
const LOGINS_PER_ROUND = 12;

function statuses(responses: LightMyRequestResponse[]): string {
  return responses.map((response) => response.statusCode).join(',');
}

function countOf(responses: LightMyRequestResponse[], status: number): number {
  return responses.filter((response) => response.statusCode === status).length;
}

function loginFrom(
  app: GatepassApp,
  credentials: { email: string; password: string },
  remoteAddress: string,
): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/auth/login', payload: credentials, remoteAddress });
}

/**
 * Logins of `credentials` started a few milliseconds apart, with `change` fired while they are in
 * their password check; returns the token pairs that the logins obtained.
 */
async function loginsAround(
  app: GatepassApp,
  credentials: { email: string; password: string },
  change: () => Promise<LightMyRequestResponse>,
): Promise<Tokens[]> {
  const logins = Array.from({ length: LOGINS_PER_ROUND }, (_, i) => delay(i * 3).then(() => post(app, '/auth/login', credentials)));
  const [responses, changed] = await Promise.all([Promise.all(logins), delay(12).then(change)]);
  assert.ok(changed.statusCode < 300, `the change failed: ${changed.statusCode} ${changed.body}`);
  for (const response of responses) assert.ok([200, 401, 403].includes(response.statusCode), response.body);
  return responses.filter((response) => response.statusCode === 200).map((response) => response.json<Tokens>());
}

/** Neither token of the pair works any more: the access token is refused and the refresh token too. */
async function assertDead(app: GatepassApp, pair: Tokens, why: string): Promise<void> {
  assert.equal((await get(app, '/users/me', pair.access_token)).statusCode, 401, `${why}: an access token from a racing login still works`);
  assert.equal(
    (await post(app, '/auth/refresh', { refresh_token: pair.refresh_token })).statusCode,
    401,
    `${why}: a session from a racing login survived`,
  );
}

export function defineRaceSuite(backend: Backend): void {
  describe(`account lockout under a burst (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend, { ACCOUNT_LOCKOUT_THRESHOLD: '5', ACCOUNT_LOCKOUT_SECONDS: '60', PASSWORD_HASH_CONCURRENCY: '4' });
    });
    after(() => t.close());

    it('50 concurrent wrong passwords from 50 addresses get at most 5 checked; the right one inside and after the burst gets 429', async () => {
      const user = await register(t.app);
      const burst = Array.from({ length: 50 }, (_, i) =>
        loginFrom(t.app, { email: user.email, password: i === 25 ? user.password : `wrong-password-${i}` }, `198.51.100.${i + 1}`),
      );
      const responses = await Promise.all(burst);
      const checked = countOf(responses, 401) + countOf(responses, 200);
      assert.ok(checked <= 5, `${checked} passwords were checked: ${statuses(responses)}`);
      assert.equal(countOf(responses, 429), 50 - checked, statuses(responses));
      for (const response of responses.filter((r) => r.statusCode === 429))
        assert.equal(response.json<{ code: string }>().code, 'account_locked');
      const right = await post(t.app, '/auth/login', { email: user.email, password: user.password });
      // The right password got in only if it was among the first five checked, and then the lock is gone.
      if (responses[25]?.statusCode !== 200) assert.equal(right.statusCode, 429, right.body);
    });

    it('a burst against an unknown email locks it alike', async () => {
      const responses = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          loginFrom(t.app, { email: 'ghost@example.com', password: `guess-${i}-password` }, `203.0.113.${i + 1}`),
        ),
      );
      assert.equal(countOf(responses, 401), 5, statuses(responses));
      assert.equal(countOf(responses, 429), 25, statuses(responses));
    });

    it('look-alike spellings of one address share its budget (fullwidth, upper case)', async () => {
      const user = await register(t.app);
      const [local, domain] = user.email.split('@') as [string, string];
      const spellings = [
        user.email,
        user.email.toUpperCase(),
        `${String.fromCodePoint(0xff41 + local.charCodeAt(0) - 0x61)}${local.slice(1)}@${domain}`,
      ];
      const responses = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          loginFrom(t.app, { email: spellings[i % 3]!, password: `wrong-password-${i}` }, `192.0.2.${i + 1}`),
        ),
      );
      assert.equal(countOf(responses, 401), 5, statuses(responses));
      assert.equal(countOf(responses, 429), 25, statuses(responses));
    });

    it('password change and account deletion share the counter: a stolen access token cannot brute-force the password', async () => {
      const user = await signUp(t.app);
      const guesses = Array.from({ length: 30 }, (_, i) =>
        i % 2 === 0
          ? post(
              t.app,
              '/auth/password/change',
              { current_password: `guess-${i}-password`, new_password: 'Attacker-Chosen-Passphrase-9' },
              user.tokens.access_token,
            )
          : send(t.app, 'DELETE', '/users/me', { password: `guess-${i}-password` }, user.tokens.access_token),
      );
      const responses = await Promise.all(guesses);
      assert.ok(countOf(responses, 401) <= 5, statuses(responses));
      assert.equal(countOf(responses, 401) + countOf(responses, 429), 30, statuses(responses));
      // Locked everywhere: the right password is refused for a change and for a login.
      const change = await post(
        t.app,
        '/auth/password/change',
        { current_password: user.password, new_password: 'Another-Long-Passphrase-7' },
        user.tokens.access_token,
      );
      assert.equal(change.statusCode, 429, change.body);
      assert.equal((await post(t.app, '/auth/login', { email: user.email, password: user.password })).statusCode, 429);
      assert.equal((await get(t.app, '/users/me', user.tokens.access_token)).statusCode, 200, 'the account itself is untouched');
    });
  });

  describe(`re-authentication rate limit per account (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend, { LOGIN_RATE_LIMIT_PER_MINUTE: '3' });
    });
    after(() => t.close());

    it('password checks of a signed-in user are limited per account, whatever the address', async () => {
      const user = await signUp(t.app);
      const responses = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          t.app.inject({
            method: 'POST',
            url: '/auth/password/change',
            payload: { current_password: `guess-${i}-password`, new_password: 'Attacker-Chosen-Passphrase-9' },
            headers: { authorization: `Bearer ${user.tokens.access_token}` },
            remoteAddress: `192.0.2.${i + 1}`,
          }),
        ),
      );
      assert.equal(countOf(responses, 401), 3, statuses(responses));
      assert.equal(countOf(responses, 429), 9, statuses(responses));
      for (const response of responses.filter((r) => r.statusCode === 429))
        assert.equal(response.json<{ code: string }>().code, 'rate_limited');
    });
  });

  describe(`decisions on the current account under races (${backend})`, () => {
    let t: TestApp;
    let adminToken: string;
    before(async () => {
      // Enough hashing threads that logins and the change all run at once.
      t = await createTestApp(backend, { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, PASSWORD_HASH_CONCURRENCY: '16' });
      adminToken = (await login(t.app, ADMIN)).access_token;
    });
    after(() => t.close());

    const patchUser = (id: number, body: object) => send(t.app, 'PATCH', `/admin/users/${id}`, body, adminToken);

    it('a demotion committed while logins are in flight leaves no token with the old role', async () => {
      const deputy = await register(t.app);
      for (let round = 0; round < ROUNDS; round += 1) {
        assert.equal((await patchUser(deputy.id, { role: 'admin' })).statusCode, 200);
        const pairs = await loginsAround(t.app, deputy, () => patchUser(deputy.id, { role: 'student' }));
        for (const pair of pairs) {
          const adminRoute = await get(t.app, '/admin/users', pair.access_token);
          assert.ok(
            [401, 403].includes(adminRoute.statusCode),
            `round ${round}: a token minted around the demotion still acts as admin (${JSON.stringify(claimsOf(pair.access_token))})`,
          );
          const next = await post(t.app, '/auth/refresh', { refresh_token: pair.refresh_token });
          assert.equal(next.statusCode, 200, next.body);
          assert.equal(claimsOf(next.json<Tokens>().access_token).role, 'student');
        }
      }
    });

    it('a deactivation committed while logins are in flight leaves no working session', async () => {
      for (let round = 0; round < ROUNDS; round += 1) {
        const user = await register(t.app);
        const pairs = await loginsAround(t.app, user, () => patchUser(user.id, { is_active: false }));
        for (const pair of pairs) await assertDead(t.app, pair, `round ${round}, deactivation`);
      }
    });

    it('a password reset committed while logins with the old password are in flight leaves no working session', async () => {
      const outbox = path.join(t.cwd, 'data', 'outbox');
      for (let round = 0; round < ROUNDS; round += 1) {
        const user = await register(t.app);
        assert.equal((await post(t.app, '/auth/password/forgot', { email: user.email })).statusCode, 202);
        const [token] = await waitForMail(outbox, user.email, 1);
        const pairs = await loginsAround(t.app, user, () =>
          post(t.app, '/auth/password/reset', { token, new_password: `Fresh-Passphrase-${round}-ok` }),
        );
        for (const pair of pairs) await assertDead(t.app, pair, `round ${round}, reset`);
      }
    });

    it('a password change committed while logins with the old password are in flight leaves no other working session', async () => {
      for (let round = 0; round < ROUNDS; round += 1) {
        const user = await signUp(t.app);
        const pairs = await loginsAround(t.app, user, () =>
          post(
            t.app,
            '/auth/password/change',
            { current_password: user.password, new_password: `Changed-Passphrase-${round}-ok` },
            user.tokens.access_token,
          ),
        );
        for (const pair of pairs) await assertDead(t.app, pair, `round ${round}, change`);
      }
    });
  });

  describe(`one chain per session in the refresh grace window (${backend})`, () => {
    let t: TestApp;
    let offset = 0;
    before(async () => {
      t = await createTestApp(backend, { REFRESH_REUSE_GRACE_SECONDS: '10' }, { now: () => Date.now() + offset });
    });
    after(() => t.close());

    it('20 concurrent refreshes of one token all receive the same child refresh token', async () => {
      const { tokens } = await signUp(t.app);
      const responses = await Promise.all(
        Array.from({ length: 20 }, () => post(t.app, '/auth/refresh', { refresh_token: tokens.refresh_token })),
      );
      assert.equal(countOf(responses, 200), 20, statuses(responses));
      const children = new Set(responses.map((response) => response.json<Tokens>().refresh_token));
      assert.equal(children.size, 1, `${children.size} different refresh tokens: the session forked`);
      // A replay later in the window gets that same child again, and a working access token.
      offset += 5_000;
      const replay = await post(t.app, '/auth/refresh', { refresh_token: tokens.refresh_token });
      assert.equal(replay.statusCode, 200, replay.body);
      assert.equal(replay.json<Tokens>().refresh_token, [...children][0]);
      assert.equal((await get(t.app, '/users/me', replay.json<Tokens>().access_token)).statusCode, 200);
    });

    it('a thief replaying a stolen token inside the window joins the victim chain, and reuse detection sees it', async () => {
      const victim = await signUp(t.app);
      const victimChild = (await post(t.app, '/auth/refresh', { refresh_token: victim.tokens.refresh_token })).json<Tokens>();
      const thiefChild = (await post(t.app, '/auth/refresh', { refresh_token: victim.tokens.refresh_token })).json<Tokens>();
      assert.equal(thiefChild.refresh_token, victimChild.refresh_token);
      // The victim rotates on; later, the thief's copy is a reuse that ends the whole session.
      const victimNext = (await post(t.app, '/auth/refresh', { refresh_token: victimChild.refresh_token })).json<Tokens>();
      offset += 11_000;
      const theft = await post(t.app, '/auth/refresh', { refresh_token: thiefChild.refresh_token });
      assert.equal(theft.json<{ code: string }>().code, 'token_reused', theft.body);
      assert.equal((await post(t.app, '/auth/refresh', { refresh_token: victimNext.refresh_token })).statusCode, 401);
      assert.equal((await get(t.app, '/users/me', thiefChild.access_token)).statusCode, 401);
    });

    it('a password change leaves no refresh token of a grace replay working', async () => {
      const victim = await signUp(t.app);
      const second = (await post(t.app, '/auth/login', { email: victim.email, password: victim.password })).json<Tokens>();
      const replays = await Promise.all(
        Array.from({ length: 10 }, () => post(t.app, '/auth/refresh', { refresh_token: second.refresh_token })),
      );
      assert.equal(countOf(replays, 200), 10, statuses(replays));
      const change = await post(
        t.app,
        '/auth/password/change',
        { current_password: victim.password, new_password: 'Victim-New-Passphrase-5' },
        victim.tokens.access_token,
      );
      assert.equal(change.statusCode, 204, change.body);
      for (const replay of replays)
        assert.equal((await post(t.app, '/auth/refresh', { refresh_token: replay.json<Tokens>().refresh_token })).statusCode, 401);
    });
  });

  describe(`reset tokens and reset mail under races (${backend})`, () => {
    let t: TestApp;
    let outbox: string;
    before(async () => {
      t = await createTestApp(backend, { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, PASSWORD_HASH_CONCURRENCY: '16' });
      outbox = path.join(t.cwd, 'data', 'outbox');
    });
    after(() => t.close());

    async function resetTokenOf(email: string): Promise<string> {
      const before = tokensMailedTo(outbox, email).length;
      assert.equal((await post(t.app, '/auth/password/forgot', { email })).statusCode, 202);
      return (await waitForMail(outbox, email, before + 1)).at(-1) ?? '';
    }

    const reset = (token: string, password: string) => post(t.app, '/auth/password/reset', { token, new_password: password });

    it('a password change, logout-all and deactivation spend every open reset token', async () => {
      const user = await signUp(t.app);
      const beforeChange = await resetTokenOf(user.email);
      assert.equal(
        (
          await post(
            t.app,
            '/auth/password/change',
            { current_password: user.password, new_password: 'Second-Passphrase-42' },
            user.tokens.access_token,
          )
        ).statusCode,
        204,
      );
      assert.equal((await reset(beforeChange, 'Attacker-Passphrase-42')).statusCode, 400);

      const beforeLogoutAll = await resetTokenOf(user.email);
      assert.equal((await post(t.app, '/auth/logout-all', undefined, user.tokens.access_token)).statusCode, 204);
      assert.equal((await reset(beforeLogoutAll, 'Attacker-Passphrase-42')).statusCode, 400);

      const other = await signUp(t.app);
      const beforeDeactivation = await resetTokenOf(other.email);
      const admin = await login(t.app, ADMIN);
      assert.equal((await send(t.app, 'PATCH', `/admin/users/${other.id}`, { is_active: false }, admin.access_token)).statusCode, 200);
      assert.equal((await send(t.app, 'PATCH', `/admin/users/${other.id}`, { is_active: true }, admin.access_token)).statusCode, 200);
      assert.equal((await reset(beforeDeactivation, 'Attacker-Passphrase-42')).statusCode, 400);
    });

    it('a reset racing a password change: exactly one of them takes effect', async () => {
      for (let round = 0; round < ROUNDS; round += 1) {
        const user = await signUp(t.app);
        const token = await resetTokenOf(user.email);
        const [changed, wasReset] = await Promise.all([
          post(
            t.app,
            '/auth/password/change',
            { current_password: user.password, new_password: `Owner-Passphrase-${round}-x` },
            user.tokens.access_token,
          ),
          delay(round * 4).then(() => reset(token, `Resetter-Passphrase-${round}-y`)),
        ]);
        const succeeded = [changed.statusCode === 204, wasReset.statusCode === 204].filter(Boolean).length;
        assert.equal(succeeded, 1, `round ${round}: change ${changed.statusCode}, reset ${wasReset.statusCode}`);
      }
    });

    it('concurrent resets with one token: exactly one succeeds', async () => {
      const user = await register(t.app);
      const token = await resetTokenOf(user.email);
      const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => reset(token, `Parallel-Passphrase-${i}-z`)));
      assert.equal(countOf(responses, 204), 1, statuses(responses));
      assert.equal(countOf(responses, 400), 9, statuses(responses));
    });

    it('30 reset requests for one account from 3 addresses send at most 3 emails, and all answer 202', async () => {
      const user = await register(t.app);
      const responses = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          t.app.inject({
            method: 'POST',
            url: '/auth/password/forgot',
            payload: { email: user.email },
            remoteAddress: `192.0.2.${(i % 3) + 1}`,
          }),
        ),
      );
      assert.equal(countOf(responses, 202), 30, statuses(responses));
      await waitForMail(outbox, user.email, 3);
      // The requests finish in the background: give the other 27 time to send, had they been allowed to.
      await delay(1000);
      assert.equal(
        tokensMailedTo(outbox, user.email).length,
        3,
        `${outboxMessages(outbox).filter((m) => m.to === user.email).length} mails`,
      );
    });
  });
}

/** Waits (bounded) until `count` mails to `email` are in the outbox, and returns their tokens. */
async function waitForMail(outbox: string, email: string, count: number): Promise<string[]> {
  await waitFor(`${count} mails to ${email}`, async () => tokensMailedTo(outbox, email).length >= count, 10_000);
  return tokensMailedTo(outbox, email);
}
