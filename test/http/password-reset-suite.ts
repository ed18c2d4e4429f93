import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDatabase } from '../../src/store/database.js';
import { ADMIN_ENV, loginAdmin } from '../helpers/admin.js';
import { type Backend, createTestApp, type TestApp } from '../helpers/app.js';
import { auditPage } from '../helpers/audit.js';
import { assertError, forgot, get, login, post, refresh, refreshed, register, resetPassword, send, signUp } from '../helpers/client.js';
import { waitForValue } from '../helpers/instances.js';
import { MAIL_WAIT_MS, nextResetToken, outboxMessages } from '../helpers/outbox.js';
import { assertRevoked, assertTokenRejected, assertValidation, assertWorks } from '../helpers/responses.js';

/**
 * Password reset through the outbox (API.md /auth/password/forgot and /auth/password/reset): the
 * mail, spending the token, its 15-minute lifetime, and the per-client rate limit of forgot.
 */

const INVALID_REFRESH = 'Invalid refresh token';
const INCORRECT_LOGIN = 'Incorrect email or password';

const INVALID_RESET = 'Invalid or expired reset token';
const RESET_TTL_MS = 15 * 60 * 1000;

const PID = process.pid;

export function definePasswordResetSuite(backend: Backend): void {
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
      waitForValue(
        `${count} password_reset_requested events`,
        async () => {
          const { body } = await auditPage(t.app, adminToken, { event: 'password_reset_requested', limit: 200 });
          return body.items.length >= count ? body.items : undefined;
        },
        MAIL_WAIT_MS,
      );

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
      assert.equal(messages[0].tokens.length, 1);
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
      assertError(
        await post(t.app, '/auth/login', { email: user.email, password: user.password }),
        401,
        INCORRECT_LOGIN,
        'invalid_credentials',
      );
      const fresh = await login(t.app, { email: user.email, password: newPassword });
      await assertWorks(t.app, fresh.access_token, 'a login with the new password');

      const replay = await resetPassword(t.app, token, 'Another-Fresh-Secret-9932');
      assertError(replay, 400, INVALID_RESET, 'invalid_reset_token');
      assertError(
        await post(t.app, '/auth/login', { email: user.email, password: 'Another-Fresh-Secret-9932' }),
        401,
        INCORRECT_LOGIN,
        'invalid_credentials',
      );
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
      assertValidation(await resetPassword(t.app, token, 'Zq7!vR2'), { loc: ['body', 'new_password'], type: 'string_too_short' });
      assertValidation(await resetPassword(t.app, token, 'password123'), { loc: ['body', 'new_password'] });
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
      assertError(
        await post(t.app, '/auth/login', { email: user.email, password: user.password }),
        403,
        'Account is disabled',
        'account_disabled',
      );
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
}
