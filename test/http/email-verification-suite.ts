import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { openDatabase } from '../../src/store/database.js';
import { ADMIN_ENV, listUsers, loginAdmin } from '../helpers/admin.js';
import { type Backend, createTestApp, type TestApp } from '../helpers/app.js';
import { auditPage } from '../helpers/audit.js';
import {
  assertError,
  call,
  claimsOf,
  forgot,
  get,
  login,
  newCredentials,
  post,
  postForm,
  refreshed,
  register,
  resetPassword,
  send,
  type Tokens,
  type UserBody,
} from '../helpers/client.js';
import { waitFor } from '../helpers/instances.js';
import { MAIL_WAIT_MS, nextResetToken, nextVerificationToken, outboxMessages } from '../helpers/outbox.js';
import { assertNotAuthenticated, assertValidation } from '../helpers/responses.js';

/**
 * Email verification (API.md "/auth/email"): the mail sent on registration, spending its token,
 * its 24-hour lifetime, resending and its throttles, REQUIRE_EMAIL_VERIFICATION at login, the email
 * change of PATCH /users/me, and the admin filter.
 */

const INVALID_TOKEN = 'Invalid or expired verification token';
const INCORRECT_LOGIN = 'Incorrect email or password';
const TTL_MS = 24 * 3600 * 1000;
const PUBLIC_URL = 'https://accounts.example.test/portal';

type VerifiedUser = UserBody & { email_verified: boolean };

function verify(t: TestApp, token: string, remoteAddress?: string): Promise<LightMyRequestResponse> {
  return call(t.app, 'POST', '/auth/email/verify', { body: { token }, ...(remoteAddress !== undefined && { remoteAddress }) });
}

function resend(t: TestApp, accessToken: string, remoteAddress?: string): Promise<LightMyRequestResponse> {
  return call(t.app, 'POST', '/auth/email/verify/resend', { token: accessToken, ...(remoteAddress !== undefined && { remoteAddress }) });
}

function assertInvalidToken(response: LightMyRequestResponse): void {
  assertError(response, 400, INVALID_TOKEN, 'invalid_token');
}

async function me(t: TestApp, accessToken: string): Promise<VerifiedUser> {
  const response = await get(t.app, '/users/me', accessToken);
  assert.equal(response.statusCode, 200, response.body);
  return response.json<VerifiedUser>();
}

function changeEmail(t: TestApp, accessToken: string, body: Record<string, unknown>): Promise<LightMyRequestResponse> {
  return send(t.app, 'PATCH', '/users/me', body, accessToken);
}

/** A fresh app on `backend` whose outbox is its data/outbox, and helpers bound to it. */
function useApp(backend: Backend, env: Record<string, string>, options: { now?: () => number } = {}) {
  const context = {
    t: undefined as unknown as TestApp,
    outbox: '',
    seen: new Set<string>(),
    adminToken: '',
  };
  before(async () => {
    context.t = await createTestApp(backend, { ...ADMIN_ENV, PUBLIC_URL, ...env }, options);
    context.outbox = path.join(context.t.cwd, 'data', 'outbox');
    context.adminToken = (await loginAdmin(context.t.app)).tokens.access_token;
  });
  after(() => context.t.close());
  return context;
}

export function defineEmailVerificationSuite(backend: Backend): void {
  describe(`email verification (${backend})`, () => {
    const c = useApp(backend, {});
    const nextToken = (email: string) => nextVerificationToken(c.outbox, email, c.seen);

    it('a completed password reset verifies the address (its link was read in that mailbox)', async () => {
      const user = await register(c.t.app);
      assert.equal((await forgot(c.t.app, user.email)).statusCode, 202);
      const resetToken = await nextResetToken(c.outbox, user.email, c.seen);
      assert.equal((await resetPassword(c.t.app, resetToken, 'reset-Passw0rd-verifies')).statusCode, 204);
      const tokens = await login(c.t.app, { email: user.email, password: 'reset-Passw0rd-verifies' });
      assert.equal((await me(c.t, tokens.access_token)).email_verified, true);
      assert.equal(claimsOf(tokens.access_token).email_verified, true);
    });

    it('registration mails a token line and a link to the page; verify → 204, and the user object and a refreshed access token say verified', async () => {
      const user = await register(c.t.app);
      const tokens = await login(c.t.app, user);
      assert.equal((await me(c.t, tokens.access_token)).email_verified, false);
      assert.equal(claimsOf(tokens.access_token).email_verified, false);

      const token = await nextToken(user.email);
      const [mail] = outboxMessages(c.outbox, 'verification').filter((message) => message.to === user.email);
      assert.ok(mail !== undefined);
      assert.ok(mail.text.includes(`\n${PUBLIC_URL}/#verify-email=${token}\n`), mail.text);

      const response = await verify(c.t, token);
      assert.equal(response.statusCode, 204, response.body);
      assert.equal(response.body, '');
      assert.equal((await me(c.t, tokens.access_token)).email_verified, true);
      const fresh = await refreshed(c.t.app, tokens.refresh_token);
      assert.equal(claimsOf(fresh.access_token).email_verified, true);
      const listed = (await listUsers(c.t.app, c.adminToken, `?email=${encodeURIComponent(user.email)}`)).items;
      assert.deepEqual(
        listed.map((item) => [item.email, (item as VerifiedUser).email_verified]),
        [[user.email, true]],
      );

      assertInvalidToken(await verify(c.t, token));
      assert.equal((await me(c.t, tokens.access_token)).email_verified, true);
      const events = (await auditPage(c.t.app, c.adminToken, { user_id: user.id, limit: 50 })).body.items.map((item) => item.event);
      assert.ok(events.includes('email_verification_sent'), events.join());
      assert.equal(events.filter((event) => event === 'email_verified').length, 1, events.join());
    });

    it('unknown and malformed tokens → 400 invalid_token; a missing or empty token → 422', async () => {
      for (const garbage of ['garbage', 'A'.repeat(43), 'token=abc', '0'.repeat(64)]) assertInvalidToken(await verify(c.t, garbage));
      assertValidation(await post(c.t.app, '/auth/email/verify', {}), { loc: ['body', 'token'] });
      assertValidation(await post(c.t.app, '/auth/email/verify', { token: '' }), { loc: ['body', 'token'] });
    });

    it('20 concurrent verifications of one token: exactly one 204, the others 400', async () => {
      const user = await register(c.t.app);
      const token = await nextToken(user.email);
      const answers = await Promise.all(Array.from({ length: 20 }, () => verify(c.t, token)));
      const statuses = answers.map((answer) => answer.statusCode).sort();
      assert.deepEqual(statuses, [204, ...Array<number>(19).fill(400)], statuses.join());
      for (const answer of answers.filter((a) => a.statusCode === 400)) assertInvalidToken(answer);
      const verified = (await auditPage(c.t.app, c.adminToken, { user_id: user.id, event: 'email_verified', limit: 50 })).body.items;
      assert.equal(verified.length, 1);
    });

    it('resend: 202 with a new token that voids the older one; 401 without a token; 409 already_verified once verified', async () => {
      const user = await register(c.t.app);
      const tokens = await login(c.t.app, user);
      const first = await nextToken(user.email);
      assertNotAuthenticated(await post(c.t.app, '/auth/email/verify/resend'));
      const response = await resend(c.t, tokens.access_token);
      assert.equal(response.statusCode, 202, response.body);
      assert.equal(typeof response.json<{ message: unknown }>().message, 'string');
      const second = await nextToken(user.email);
      assert.notEqual(first, second);
      assertInvalidToken(await verify(c.t, first));
      assert.equal((await verify(c.t, second)).statusCode, 204);
      assertError(await resend(c.t, tokens.access_token), 409, 'Email already verified', 'already_verified');
    });

    it('resend is throttled per account: 3 verification mails an hour (registration included), then 429 with Retry-After', async () => {
      const user = await register(c.t.app);
      const tokens = await login(c.t.app, user);
      await nextToken(user.email);
      for (let i = 0; i < 2; i++) {
        assert.equal((await resend(c.t, tokens.access_token)).statusCode, 202);
        await nextToken(user.email);
      }
      const limited = await resend(c.t, tokens.access_token);
      assert.equal(limited.statusCode, 429, limited.body);
      assert.equal(limited.json<{ code: string }>().code, 'rate_limited');
      assert.ok(Number(limited.headers['retry-after']) > 0, String(limited.headers['retry-after']));
      assert.equal(outboxMessages(c.outbox, 'verification').filter((message) => message.to === user.email).length, 3);
      // Another account is not affected.
      const other = await register(c.t.app);
      await nextToken(other.email);
      assert.equal((await resend(c.t, (await login(c.t.app, other)).access_token)).statusCode, 202);
      await nextToken(other.email);
    });

    it('REQUIRE_EMAIL_VERIFICATION off (the default): an unverified account logs in', async () => {
      const user = await register(c.t.app);
      const tokens = await login(c.t.app, user);
      assert.equal(claimsOf(tokens.access_token).email_verified, false);
      await nextToken(user.email);
    });

    it('email change: password needed (401 when wrong, 422 when missing); a taken address → 409; the new address gets the mail, the old one keeps working until it is used; then the switch, and a notice to the old address', async () => {
      const user = await register(c.t.app);
      await verify(c.t, await nextToken(user.email));
      const tokens = await login(c.t.app, user);
      const target = newCredentials().email;

      assertError(
        await changeEmail(c.t, tokens.access_token, { email: target, current_password: 'not-the-password' }),
        401,
        'Current password is incorrect',
        'invalid_credentials',
      );
      assertValidation(await changeEmail(c.t, tokens.access_token, { email: target }), { loc: ['body', 'current_password'] });
      assertValidation(await changeEmail(c.t, tokens.access_token, { email: 'not-an-email', current_password: user.password }), {
        loc: ['body', 'email'],
      });
      assertError(
        await changeEmail(c.t, tokens.access_token, { email: 'ROOT@example.com', current_password: user.password }),
        409,
        'Email already registered',
        'email_taken',
      );

      const response = await changeEmail(c.t, tokens.access_token, { email: target, current_password: user.password });
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.json<VerifiedUser>().email, user.email);
      assert.equal(response.json<VerifiedUser>().email_verified, true);
      const token = await nextToken(target);
      assert.equal((await me(c.t, tokens.access_token)).email, user.email);
      await login(c.t.app, user);
      assertError(
        await post(c.t.app, '/auth/login', { email: target, password: user.password }),
        401,
        INCORRECT_LOGIN,
        'invalid_credentials',
      );

      assert.equal((await verify(c.t, token)).statusCode, 204);
      const after = await me(c.t, tokens.access_token);
      assert.equal(after.email, target);
      assert.equal(after.email_verified, true);
      await login(c.t.app, { email: target, password: user.password });
      assertError(
        await post(c.t.app, '/auth/login', { email: user.email, password: user.password }),
        401,
        INCORRECT_LOGIN,
        'invalid_credentials',
      );
      assertInvalidToken(await verify(c.t, token));

      await waitFor(
        'the notice to the old address',
        async () => outboxMessages(c.outbox, 'email-changed').some((m) => m.to === user.email),
        MAIL_WAIT_MS,
      );
      const notice = outboxMessages(c.outbox, 'email-changed').find((message) => message.to === user.email);
      assert.ok(notice !== undefined && notice.text.includes(target), notice?.text);
      assert.deepEqual(notice.tokens, []);
      const events = (await auditPage(c.t.app, c.adminToken, { user_id: user.id, limit: 50 })).body.items;
      const requested = events.find((event) => event.event === 'email_change_requested');
      const changed = events.find((event) => event.event === 'email_changed');
      assert.deepEqual(requested?.details, { to: target });
      assert.deepEqual(changed?.details, { from: user.email, to: target });
    });

    it('email change of an unverified account: resend goes to the pending address; its token switches and verifies', async () => {
      const user = await register(c.t.app);
      const registration = await nextToken(user.email);
      const tokens = await login(c.t.app, user);
      const target = newCredentials().email;
      assert.equal((await changeEmail(c.t, tokens.access_token, { email: target, current_password: user.password })).statusCode, 200);
      const first = await nextToken(target);
      assertInvalidToken(await verify(c.t, registration));
      assert.equal((await resend(c.t, tokens.access_token)).statusCode, 202);
      const second = await nextToken(target);
      assertInvalidToken(await verify(c.t, first));
      assert.equal((await verify(c.t, second)).statusCode, 204);
      const after = await me(c.t, tokens.access_token);
      assert.deepEqual([after.email, after.email_verified], [target, true]);
    });

    it('an address taken between the request and its verification: 409 email_taken, the token stays usable once it is free again', async () => {
      const user = await register(c.t.app);
      await nextToken(user.email);
      const tokens = await login(c.t.app, user);
      const target = newCredentials();
      assert.equal((await changeEmail(c.t, tokens.access_token, { email: target.email, current_password: user.password })).statusCode, 200);
      const token = await nextToken(target.email);

      const squatter = await register(c.t.app, target);
      await nextToken(target.email);
      assertError(await verify(c.t, token), 409, 'Email already registered', 'email_taken');
      assert.equal((await me(c.t, tokens.access_token)).email, user.email);

      const squatterTokens = await login(c.t.app, squatter);
      assert.equal(
        (await send(c.t.app, 'DELETE', '/users/me', { password: squatter.password }, squatterTokens.access_token)).statusCode,
        204,
      );
      assert.equal((await verify(c.t, token)).statusCode, 204);
      assert.equal((await me(c.t, tokens.access_token)).email, target.email);
    });

    it('PATCH /users/me with full_name alone works as before; with the same email it changes nothing and mails nothing', async () => {
      const user = await register(c.t.app);
      await nextToken(user.email);
      const tokens = await login(c.t.app, user);
      const renamed = await changeEmail(c.t, tokens.access_token, { full_name: 'Renamed' });
      assert.equal(renamed.statusCode, 200, renamed.body);
      assert.equal(renamed.json<VerifiedUser>().full_name, 'Renamed');
      const same = await changeEmail(c.t, tokens.access_token, {
        email: user.email.toUpperCase(),
        current_password: user.password,
        full_name: 'Again',
      });
      assert.equal(same.statusCode, 200, same.body);
      assert.deepEqual([same.json<VerifiedUser>().email, same.json<VerifiedUser>().full_name], [user.email, 'Again']);
      assertValidation(await changeEmail(c.t, tokens.access_token, {}), { loc: ['body', 'full_name'] });
      assertValidation(await changeEmail(c.t, tokens.access_token, { current_password: user.password }), { loc: ['body', 'email'] });
      assert.equal(outboxMessages(c.outbox, 'verification').filter((message) => message.to === user.email).length, 1);
    });

    it('admins filter users by email_verified', async () => {
      const verified = await register(c.t.app);
      await verify(c.t, await nextToken(verified.email));
      const unverified = await register(c.t.app);
      await nextToken(unverified.email);
      const emails = async (query: string) =>
        (await listUsers(c.t.app, c.adminToken, `${query}&limit=100`)).items.map((item) => item.email);
      const yes = await emails('?email_verified=true');
      const no = await emails('?email_verified=false');
      assert.ok(yes.includes(verified.email) && yes.includes('root@example.com') && !yes.includes(unverified.email), yes.join());
      assert.ok(no.includes(unverified.email) && !no.includes(verified.email) && !no.includes('root@example.com'), no.join());
      assertValidation(await get(c.t.app, '/admin/users?email_verified=maybe', c.adminToken), { loc: ['query', 'email_verified'] });
    });

    it('the database stores only a hash of each verification token', async () => {
      assert.ok(c.seen.size >= 10, `only ${c.seen.size} tokens seen`);
      const handle = openDatabase(c.t.databaseUrl, c.t.cwd);
      try {
        const raw = JSON.stringify(await handle.db.selectFrom('email_verification_tokens').selectAll().execute());
        for (const token of c.seen) assert.ok(!raw.includes(token), 'a verification token is stored in clear');
      } finally {
        await handle.close();
      }
    });
  });

  describe(`email verification tokens expire after 24 hours (${backend})`, () => {
    let clock = Date.now();
    const c = useApp(backend, {}, { now: () => clock });

    it('a token used 24 h − 1 s after it was mailed works; one used 24 h + 1 s after → 400; the hour of resends starts again', async () => {
      const early = await register(c.t.app);
      const earlyToken = await nextVerificationToken(c.outbox, early.email, c.seen);
      const late = await register(c.t.app);
      const lateToken = await nextVerificationToken(c.outbox, late.email, c.seen);
      clock += TTL_MS - 1000;
      assert.equal((await verify(c.t, earlyToken)).statusCode, 204);
      clock += 2000;
      assertInvalidToken(await verify(c.t, lateToken));

      // An expired token verifies nothing: resends are due, 3 an hour, and allowed again after the hour.
      const lateTokens = await login(c.t.app, late);
      for (let i = 0; i < 3; i++) {
        assert.equal((await resend(c.t, lateTokens.access_token)).statusCode, 202);
        await nextVerificationToken(c.outbox, late.email, c.seen);
      }
      assert.equal((await resend(c.t, lateTokens.access_token)).statusCode, 429);
      clock += 3600_000;
      assert.equal((await resend(c.t, (await refreshed(c.t.app, lateTokens.refresh_token)).access_token)).statusCode, 202);
      assert.equal((await verify(c.t, await nextVerificationToken(c.outbox, late.email, c.seen))).statusCode, 204);
    });
  });

  describe(`email verification: resend is limited per client address (${backend})`, () => {
    const c = useApp(backend, { LOGIN_RATE_LIMIT_PER_MINUTE: '2' });

    it('a client past LOGIN_RATE_LIMIT_PER_MINUTE resend requests gets 429, another client does not', async () => {
      const users: Tokens[] = [];
      for (let i = 0; i < 3; i++) {
        const credentials = newCredentials();
        const registered = await call(c.t.app, 'POST', '/auth/register', { body: credentials, remoteAddress: `198.51.100.${i + 1}` });
        assert.equal(registered.statusCode, 201, registered.body);
        const signedIn = await call(c.t.app, 'POST', '/auth/login', { body: credentials, remoteAddress: `198.51.100.${i + 1}` });
        users.push(signedIn.json<Tokens>());
      }
      const [a, b, d] = users as [Tokens, Tokens, Tokens];
      assert.equal((await resend(c.t, a.access_token, '203.0.113.9')).statusCode, 202);
      assert.equal((await resend(c.t, b.access_token, '203.0.113.9')).statusCode, 202);
      const limited = await resend(c.t, d.access_token, '203.0.113.9');
      assert.equal(limited.statusCode, 429, limited.body);
      assert.ok(Number(limited.headers['retry-after']) > 0);
      assert.equal((await resend(c.t, d.access_token, '203.0.113.10')).statusCode, 202);
    });
  });

  describe(`REQUIRE_EMAIL_VERIFICATION=true (${backend})`, () => {
    const c = useApp(backend, { REQUIRE_EMAIL_VERIFICATION: 'true' });

    it('an unverified account: 403 email_not_verified after the right password only; 401 for a wrong one and for an unknown email; verified → 200', async () => {
      const user = await register(c.t.app);
      const token = await nextVerificationToken(c.outbox, user.email, c.seen);
      assertError(await post(c.t.app, '/auth/login', user), 403, 'Email not verified', 'email_not_verified');
      assertError(
        await postForm(c.t.app, '/auth/login', { username: user.email, password: user.password }),
        403,
        'Email not verified',
        'email_not_verified',
      );
      assertError(
        await post(c.t.app, '/auth/login', { email: user.email, password: 'Wrong-Password-5521' }),
        401,
        INCORRECT_LOGIN,
        'invalid_credentials',
      );
      assertError(
        await post(c.t.app, '/auth/login', { email: `nobody.${process.pid}@example.com`, password: user.password }),
        401,
        INCORRECT_LOGIN,
        'invalid_credentials',
      );
      const failures = (await auditPage(c.t.app, c.adminToken, { user_id: user.id, event: 'login_failure', limit: 50 })).body.items;
      assert.deepEqual(
        failures.map((item) => item.details.reason),
        ['wrong_password', 'email_not_verified', 'email_not_verified'],
      );

      assert.equal((await verify(c.t, token)).statusCode, 204);
      const tokens = await login(c.t.app, user);
      assert.equal(claimsOf(tokens.access_token).email_verified, true);
    });

    it('the bootstrap admin (an operator-given address) signs in; a disabled unverified account still answers 403 account_disabled', async () => {
      await loginAdmin(c.t.app);
      const user = await register(c.t.app);
      await nextVerificationToken(c.outbox, user.email, c.seen);
      const disabled = await send(c.t.app, 'PATCH', `/admin/users/${user.id}`, { is_active: false }, c.adminToken);
      assert.equal(disabled.statusCode, 200, disabled.body);
      assertError(await post(c.t.app, '/auth/login', user), 403, 'Account is disabled', 'account_disabled');
    });
  });
}
