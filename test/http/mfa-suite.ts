import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Secret } from 'otpauth';
import { matchTotpStep, totpCode, totpStep } from '../../src/accounts/mfa/totp.js';
import { ADMIN_ENV, loginAdmin } from '../helpers/admin.js';
import { type Backend, createTestApp, sameDatabaseEnv, type TestApp } from '../helpers/app.js';
import { eventsOf } from '../helpers/audit.js';
import {
  assertError,
  claimsOf,
  get,
  login,
  post,
  postForm,
  refreshed,
  register,
  send,
  signUp,
  type SignedUpUser,
  type Tokens,
} from '../helpers/client.js';
import { REPO_ROOT, runNode } from '../helpers/instances.js';
import { type Enrolment, enrol, loginWithCode, mfaToken, nextCode, testClock, verify } from '../helpers/mfa.js';

/**
 * Two-factor sign-in over HTTP (API.md "Two-factor sign-in"): enrolment, the login's second step
 * with a TOTP or a recovery code, replay and concurrency, wrong codes and the lockout, sensitive
 * actions, disabling, regenerating, the admin's and the CLI's reset. The app runs on a clock the
 * test moves, and every code comes from a new 30-second step unless a test replays one on purpose.
 */

const INVALID_CODE = ['Invalid two-factor code', 'invalid_code'] as const;
const INVALID_MFA_TOKEN = ['Invalid or expired MFA token', 'invalid_mfa_token'] as const;
const CODE_REQUIRED = ['A current two-factor code is required', 'mfa_required'] as const;
const FORM_REFUSED = 'Two-factor authentication is on for this account: log in with JSON and complete POST /auth/mfa/verify';
const RECOVERY_CODE = /^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$/;

export function defineMfaSuite(backend: Backend): void {
  describe(`RFC 6238 through gatepass's TOTP wrapper (${backend})`, () => {
    it('Appendix B, SHA-1: the 8-digit codes at the six test times, and each matches its own step', () => {
      const secret = Secret.fromUTF8('12345678901234567890').base32;
      const vectors: [number, string][] = [
        [59, '94287082'],
        [1111111109, '07081804'],
        [1111111111, '14050471'],
        [1234567890, '89005924'],
        [2000000000, '69279037'],
        [20000000000, '65353130'],
      ];
      for (const [seconds, code] of vectors) {
        assert.equal(totpCode(secret, seconds * 1000, 8), code, `T = ${seconds}`);
        assert.equal(matchTotpStep(secret, code, seconds * 1000, 8), totpStep(seconds * 1000));
        // ±1 step is accepted (clock drift), two steps away is not.
        assert.equal(matchTotpStep(secret, code, seconds * 1000 + 30_000, 8), totpStep(seconds * 1000));
        assert.equal(matchTotpStep(secret, code, seconds * 1000 + 60_000, 8), null);
      }
    });
  });

  describe(`two-factor sign-in (${backend})`, () => {
    let t: TestApp;
    const clock = testClock();
    before(async () => {
      t = await createTestApp(backend, ADMIN_ENV, { now: clock.now });
    });
    after(() => t.close());

    /** A new user with TOTP on, signed in before it was. */
    async function enrolled(): Promise<SignedUpUser & Enrolment> {
      const user = await signUp(t.app);
      return { ...user, ...(await enrol(t.app, clock, user.tokens.access_token)) };
    }

    const exported = async (token: string) =>
      (await get(t.app, '/users/me/export', token)).json<{ two_factor: { totp_enabled: boolean; recovery_codes_left: number } }>()
        .two_factor;

    it('setup answers a secret, its otpauth URI and an SVG QR code; TOTP is not on before confirm; a new setup replaces the pending secret', async () => {
      const user = await signUp(t.app);
      const setup = await post(t.app, '/auth/mfa/totp/setup', undefined, user.tokens.access_token);
      assert.equal(setup.statusCode, 200, setup.body);
      assert.equal(setup.headers['cache-control'], 'no-store');
      const body = setup.json<{ secret: string; otpauth_uri: string; qr_svg: string }>();
      assert.deepEqual(Object.keys(body).sort(), ['otpauth_uri', 'qr_svg', 'secret']);
      assert.match(body.secret, /^[A-Z2-7]{32}$/, '160 bits, base32');
      const uri = new URL(body.otpauth_uri);
      assert.equal(uri.protocol, 'otpauth:');
      assert.equal(uri.host, 'totp');
      assert.equal(decodeURIComponent(uri.pathname), `/gatepass:${user.email}`);
      assert.equal(uri.searchParams.get('secret'), body.secret);
      assert.equal(uri.searchParams.get('issuer'), 'gatepass');
      assert.equal(uri.searchParams.get('algorithm'), 'SHA1');
      assert.equal(uri.searchParams.get('digits'), '6');
      assert.equal(uri.searchParams.get('period'), '30');
      assert.match(body.qr_svg, /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*<\/svg>\s*$/);

      // Pending only: the login still answers tokens, and the export says off.
      const tokens = await login(t.app, user);
      assert.equal((await exported(tokens.access_token)).totp_enabled, false);

      const again = (await post(t.app, '/auth/mfa/totp/setup', undefined, user.tokens.access_token)).json<{ secret: string }>();
      assert.notEqual(again.secret, body.secret);
      assertError(
        await post(t.app, '/auth/mfa/totp/confirm', { code: nextCode(clock, body.secret) }, user.tokens.access_token),
        400,
        ...INVALID_CODE,
      );
      assertError(await post(t.app, '/auth/mfa/totp/confirm', { code: '000000x' }, user.tokens.access_token), 400, ...INVALID_CODE);
      const confirm = await post(t.app, '/auth/mfa/totp/confirm', { code: nextCode(clock, again.secret) }, user.tokens.access_token);
      assert.equal(confirm.statusCode, 200, confirm.body);
      const codes = confirm.json<{ recovery_codes: string[] }>().recovery_codes;
      assert.equal(codes.length, 10);
      assert.equal(new Set(codes).size, 10);
      for (const code of codes) assert.match(code, RECOVERY_CODE);

      assertError(
        await post(t.app, '/auth/mfa/totp/setup', undefined, user.tokens.access_token),
        409,
        'Two-factor authentication is already on',
        'mfa_already_enabled',
      );
      assertError(
        await post(t.app, '/auth/mfa/totp/confirm', { code: nextCode(clock, again.secret) }, user.tokens.access_token),
        409,
        'Two-factor authentication is already on',
        'mfa_already_enabled',
      );
      const audit = (await loginAdmin(t.app)).tokens.access_token;
      const events = (await eventsOf(t.app, audit, user.id)).map((event) => event.event);
      for (const event of ['mfa_setup_started', 'mfa_enabled', 'mfa_code_failed']) assert.ok(events.includes(event), event);
      assert.ok(!JSON.stringify(await eventsOf(t.app, audit, user.id)).includes(again.secret), 'no secret in the audit trail');
    });

    it('GET /auth/mfa says whether TOTP is on and how many recovery codes are left (no codes); 401 without a token', async () => {
      const fresh = await signUp(t.app);
      const status = async (token: string) => {
        const response = await get(t.app, '/auth/mfa', token);
        assert.equal(response.statusCode, 200, response.body);
        return response.json<unknown>();
      };
      assert.deepEqual(await status(fresh.tokens.access_token), { totp_enabled: false, recovery_codes_left: 0 });
      const user = await enrolled();
      assert.deepEqual(await status(user.tokens.access_token), { totp_enabled: true, recovery_codes_left: 10 });
      // A login with a recovery code spends one.
      assert.equal((await verify(t.app, await mfaToken(t.app, user), user.recoveryCodes[0] ?? '')).statusCode, 200);
      assert.deepEqual(await status(user.tokens.access_token), { totp_enabled: true, recovery_codes_left: 9 });
      assert.equal((await get(t.app, '/auth/mfa')).statusCode, 401);
    });

    it('confirm without a setup → 409; setup and confirm need a Bearer token', async () => {
      const user = await signUp(t.app);
      assertError(
        await post(t.app, '/auth/mfa/totp/confirm', { code: '123456' }, user.tokens.access_token),
        409,
        'Start two-factor setup first: POST /auth/mfa/totp/setup',
        'mfa_not_enabled',
      );
      assert.equal((await post(t.app, '/auth/mfa/totp/setup')).statusCode, 401);
      assert.equal((await post(t.app, '/auth/mfa/totp/confirm', { code: '123456' })).statusCode, 401);
    });

    it('login of a TOTP account answers mfa_required and no tokens; verify with a code answers the token pair, amr ["pwd","otp"], kept by refresh', async () => {
      const user = await enrolled();
      const response = await post(t.app, '/auth/login', { email: user.email, password: user.password });
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.headers['cache-control'], 'no-store');
      const body = response.json<Record<string, unknown>>();
      assert.deepEqual(Object.keys(body).sort(), ['methods', 'mfa_required', 'mfa_token']);
      assert.equal(body.mfa_required, true);
      assert.deepEqual(body.methods, ['totp', 'recovery_code']);
      const token = String(body.mfa_token);
      assert.match(token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url: not a JWT');
      assert.ok(!response.body.includes('access_token') && !response.body.includes('refresh_token'));

      const verified = await verify(t.app, token, nextCode(clock, user.secret));
      assert.equal(verified.statusCode, 200, verified.body);
      assert.equal(verified.headers['cache-control'], 'no-store');
      const tokens = verified.json<Tokens>();
      assert.deepEqual(Object.keys(tokens).sort(), ['access_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'token_type']);
      assert.deepEqual(claimsOf(tokens.access_token).amr, ['pwd', 'otp']);
      assert.equal((await get(t.app, '/users/me', tokens.access_token)).statusCode, 200);
      const rotated = await refreshed(t.app, tokens.refresh_token);
      assert.deepEqual(claimsOf(rotated.access_token).amr, ['pwd', 'otp']);
      // The password-only session of before keeps saying so.
      assert.deepEqual(claimsOf(user.tokens.access_token).amr, ['pwd']);
      assertError(await verify(t.app, token, nextCode(clock, user.secret)), 401, ...INVALID_MFA_TOKEN);
    });

    it('a recovery code signs in once, in any case and with spaces; the second time it is refused; the export counts what is left', async () => {
      const user = await enrolled();
      const [code = ''] = user.recoveryCodes;
      const typed = ` ${code.toUpperCase().replace(/-/g, ' ')} `;
      const response = await verify(t.app, await mfaToken(t.app, user), typed);
      assert.equal(response.statusCode, 200, response.body);
      const tokens = response.json<Tokens>();
      assert.deepEqual(claimsOf(tokens.access_token).amr, ['pwd', 'otp']);
      assertError(await verify(t.app, await mfaToken(t.app, user), code), 400, ...INVALID_CODE);
      const exportBody = await get(t.app, '/users/me/export', tokens.access_token);
      assert.deepEqual(exportBody.json<{ two_factor: unknown }>().two_factor, { totp_enabled: true, recovery_codes_left: 9 });
      assert.ok(!exportBody.body.includes(user.secret), 'no secret in the export');
      for (const recovery of user.recoveryCodes) assert.ok(!exportBody.body.includes(recovery), 'no recovery code in the export');
      // Another code of the set still works.
      assert.equal((await verify(t.app, await mfaToken(t.app, user), user.recoveryCodes[1] ?? '')).statusCode, 200);
    });

    it('a TOTP code is accepted once: replayed in a second login, or after a later code, it is refused', async () => {
      const user = await enrolled();
      const code = nextCode(clock, user.secret);
      assert.equal((await verify(t.app, await mfaToken(t.app, user), code)).statusCode, 200);
      assertError(await verify(t.app, await mfaToken(t.app, user), code), 400, ...INVALID_CODE);

      // A code of the previous step (within the ±1 window) after the current one was used: refused too.
      clock.advance(30_000);
      const earlier = totpCode(user.secret, clock.now() - 30_000);
      const current = totpCode(user.secret, clock.now());
      assert.equal((await verify(t.app, await mfaToken(t.app, user), current)).statusCode, 200);
      assertError(await verify(t.app, await mfaToken(t.app, user), earlier), 400, ...INVALID_CODE);
    });

    it('20 concurrent verifications of one mfa_token with one valid code: exactly one token pair', async () => {
      const user = await enrolled();
      const token = await mfaToken(t.app, user);
      const code = nextCode(clock, user.secret);
      const responses = await Promise.all(Array.from({ length: 20 }, () => verify(t.app, token, code)));
      const statuses = responses.map((response) => response.statusCode);
      assert.equal(statuses.filter((status) => status === 200).length, 1, statuses.join(' '));
      for (const response of responses.filter((r) => r.statusCode !== 200)) {
        assert.ok([400, 401].includes(response.statusCode), response.body);
        assert.ok(!response.body.includes('access_token'));
      }
      const [winner] = responses.filter((response) => response.statusCode === 200);
      assert.equal((await get(t.app, '/users/me', winner?.json<Tokens>().access_token)).statusCode, 200);
    });

    it('one valid code submitted at once to 10 mfa_tokens (10 logins): exactly one token pair', async () => {
      const user = await enrolled();
      const tokens = await Promise.all(Array.from({ length: 10 }, () => mfaToken(t.app, user)));
      const code = nextCode(clock, user.secret);
      const responses = await Promise.all(tokens.map((token) => verify(t.app, token, code)));
      const statuses = responses.map((response) => response.statusCode);
      assert.equal(statuses.filter((status) => status === 200).length, 1, statuses.join(' '));
      for (const response of responses.filter((r) => r.statusCode !== 200)) assertError(response, 400, ...INVALID_CODE);
    });

    it('wrong codes → 400 invalid_code; after 5 the mfa_token is dead: the right code then → 401', async () => {
      const user = await enrolled();
      const token = await mfaToken(t.app, user);
      for (const wrong of ['000000', '999999', 'not-a-code', 'aaaa-bbbb-cccc', '12345']) {
        const code = wrong === '000000' && totpCode(user.secret, clock.now()) === '000000' ? '111111' : wrong;
        assertError(await verify(t.app, token, code), 400, ...INVALID_CODE);
      }
      assertError(await verify(t.app, token, nextCode(clock, user.secret)), 401, ...INVALID_MFA_TOKEN);
      // A new login is not affected (the lockout is off in this app).
      assert.equal((await verify(t.app, await mfaToken(t.app, user), nextCode(clock, user.secret))).statusCode, 200);
    });

    it('a sign-in waiting for its second factor dies when the user ends every session (logout-all, password change, reset)', async () => {
      const user = await enrolled();
      const pending = await mfaToken(t.app, user);
      assert.equal((await post(t.app, '/auth/logout-all', undefined, user.tokens.access_token)).statusCode, 204);
      assertError(await verify(t.app, pending, nextCode(clock, user.secret)), 401, ...INVALID_MFA_TOKEN);
      // A login started after the ending is not affected.
      assert.equal((await verify(t.app, await mfaToken(t.app, user), nextCode(clock, user.secret))).statusCode, 200);
    });

    it('an unknown mfa_token, or an expired one (5 minutes) → 401; the retention sweep deletes expired challenges', async () => {
      const user = await enrolled();
      assertError(await verify(t.app, 'x'.repeat(43), nextCode(clock, user.secret)), 401, ...INVALID_MFA_TOKEN);
      const token = await mfaToken(t.app, user);
      clock.advance(5 * 60_000 + 1000);
      assertError(await verify(t.app, token, totpCode(user.secret, clock.now())), 401, ...INVALID_MFA_TOKEN);
      const count = async () =>
        Number(
          (
            await t.app.gatepass.database.db
              .selectFrom('mfa_challenges')
              .select((eb) => eb.fn.countAll().as('n'))
              .where('user_id', '=', user.id)
              .executeTakeFirstOrThrow()
          ).n,
        );
      assert.equal(await count(), 1);
      clock.advance(3600_000);
      assert.ok((await t.app.gatepass.retention.sweep()).mfaChallenges >= 1);
      assert.equal(await count(), 0);
    });

    it('the OAuth2 form login (Swagger Authorize): 403 mfa_required for a TOTP account, tokens for an account without', async () => {
      const user = await enrolled();
      const refused = await postForm(t.app, '/auth/login', { username: user.email, password: user.password });
      assertError(refused, 403, FORM_REFUSED, 'mfa_required');
      const refusedAlias = await postForm(t.app, '/login', { username: user.email, password: user.password });
      assertError(refusedAlias, 403, FORM_REFUSED, 'mfa_required');
      // A wrong password still answers 401, before anything about the second factor.
      assert.equal((await postForm(t.app, '/auth/login', { username: user.email, password: 'Wrong-password-123' })).statusCode, 401);

      const plain = await register(t.app);
      const accepted = await postForm(t.app, '/auth/login', { username: plain.email, password: plain.password });
      assert.equal(accepted.statusCode, 200, accepted.body);
      assert.deepEqual(claimsOf(accepted.json<Tokens>().access_token).amr, ['pwd']);
    });

    it('password change needs a fresh code when TOTP is on: without → 403, wrong → 400, with → 204', async () => {
      const user = await enrolled();
      const tokens = await loginWithCode(t.app, clock, user, user.secret);
      const body = { current_password: user.password, new_password: 'Quartz-Lantern-Orbit-5521' };
      assertError(await post(t.app, '/auth/password/change', body, tokens.access_token), 403, ...CODE_REQUIRED);
      assertError(await post(t.app, '/auth/password/change', { ...body, code: '12345x' }, tokens.access_token), 400, ...INVALID_CODE);
      const changed = await post(t.app, '/auth/password/change', { ...body, code: nextCode(clock, user.secret) }, tokens.access_token);
      assert.equal(changed.statusCode, 204, changed.body);
      await loginWithCode(t.app, clock, { email: user.email, password: body.new_password }, user.secret);

      // Without TOTP, no code is asked for.
      const plain = await signUp(t.app);
      const plainChange = await post(
        t.app,
        '/auth/password/change',
        { current_password: plain.password, new_password: 'Quartz-Lantern-Orbit-5522' },
        plain.tokens.access_token,
      );
      assert.equal(plainChange.statusCode, 204, plainChange.body);
    });

    it('an email change needs a fresh code when TOTP is on: without → 403, wrong → 400, with → 200 and a verification mail', async () => {
      const user = await enrolled();
      const change = (code?: string) =>
        send(
          t.app,
          'PATCH',
          '/users/me',
          { email: `new.${user.email}`, current_password: user.password, ...(code !== undefined && { code }) },
          user.tokens.access_token,
        );
      const without = await change();
      assert.equal(without.statusCode, 403, without.body);
      assert.equal(without.json<{ code: string }>().code, 'mfa_required');
      assertError(await change('000000' === totpCode(user.secret, clock.now()) ? '111111' : '000000'), 400, ...INVALID_CODE);
      const accepted = await change(nextCode(clock, user.secret));
      assert.equal(accepted.statusCode, 200, accepted.body);
      assert.equal(accepted.json<{ email: string }>().email, user.email, 'the address switches only once verified');
    });

    it('account deletion needs a fresh code (a recovery code works too); the second factor goes with the account', async () => {
      const user = await enrolled();
      const tokens = await loginWithCode(t.app, clock, user, user.secret);
      assertError(await send(t.app, 'DELETE', '/users/me', { password: user.password }, tokens.access_token), 403, ...CODE_REQUIRED);
      assertError(
        await send(
          t.app,
          'DELETE',
          '/users/me',
          { password: user.password, code: '000000' === totpCode(user.secret, clock.now()) ? '111111' : '000000' },
          tokens.access_token,
        ),
        400,
        ...INVALID_CODE,
      );
      const deleted = await send(
        t.app,
        'DELETE',
        '/users/me',
        { password: user.password, code: user.recoveryCodes[0] },
        tokens.access_token,
      );
      assert.equal(deleted.statusCode, 204, deleted.body);
      const { db } = t.app.gatepass.database;
      assert.equal((await db.selectFrom('mfa_totp').selectAll().where('user_id', '=', user.id).execute()).length, 0);
      assert.equal((await db.selectFrom('mfa_recovery_codes').selectAll().where('user_id', '=', user.id).execute()).length, 0);
      assert.equal((await db.selectFrom('mfa_challenges').selectAll().where('user_id', '=', user.id).execute()).length, 0);
    });

    it('disable needs the password (401) and a code (400); then login answers tokens at once and the recovery codes are void', async () => {
      const user = await enrolled();
      const tokens = await loginWithCode(t.app, clock, user, user.secret);
      const disable = (body: object) => post(t.app, '/auth/mfa/totp/disable', body, tokens.access_token);
      assertError(
        await disable({ password: 'Wrong-password-123', code: nextCode(clock, user.secret) }),
        401,
        'Password is incorrect',
        'invalid_credentials',
      );
      assertError(await disable({ password: user.password, code: '12345' }), 400, ...INVALID_CODE);
      assert.equal((await disable({ password: user.password })).statusCode, 422);
      const done = await disable({ password: user.password, code: nextCode(clock, user.secret) });
      assert.equal(done.statusCode, 204, done.body);
      assertError(
        await disable({ password: user.password, code: nextCode(clock, user.secret) }),
        409,
        'Two-factor authentication is not on',
        'mfa_not_enabled',
      );

      const plain = await login(t.app, user);
      assert.deepEqual(claimsOf(plain.access_token).amr, ['pwd']);
      assert.deepEqual(await exported(plain.access_token), { totp_enabled: false, recovery_codes_left: 0 });
      const audit = (await loginAdmin(t.app)).tokens.access_token;
      assert.equal((await eventsOf(t.app, audit, user.id, 'mfa_disabled')).length, 1);
      // Enrolling again is possible, with a new secret.
      const again = await enrol(t.app, clock, plain.access_token);
      assert.notEqual(again.secret, user.secret);
    });

    it('regenerating recovery codes voids the old set; the new codes work', async () => {
      const user = await enrolled();
      const tokens = await loginWithCode(t.app, clock, user, user.secret);
      assertError(await post(t.app, '/auth/mfa/recovery-codes', { code: '12345' }, tokens.access_token), 400, ...INVALID_CODE);
      const response = await post(t.app, '/auth/mfa/recovery-codes', { code: nextCode(clock, user.secret) }, tokens.access_token);
      assert.equal(response.statusCode, 200, response.body);
      const fresh = response.json<{ recovery_codes: string[] }>().recovery_codes;
      assert.equal(fresh.length, 10);
      for (const old of user.recoveryCodes.slice(0, 3))
        assertError(await verify(t.app, await mfaToken(t.app, user), old), 400, ...INVALID_CODE);
      assert.equal((await verify(t.app, await mfaToken(t.app, user), fresh[0] ?? '')).statusCode, 200);
      const plain = await signUp(t.app);
      assertError(
        await post(t.app, '/auth/mfa/recovery-codes', { code: '123456' }, plain.tokens.access_token),
        409,
        'Two-factor authentication is not on',
        'mfa_not_enabled',
      );
    });

    it("an admin resets a user's second factor (users:write, audited with the actor); a second reset → 409; a student → 403", async () => {
      const user = await enrolled();
      const admin = await loginAdmin(t.app);
      const other = await signUp(t.app);
      assert.equal((await send(t.app, 'DELETE', `/admin/users/${user.id}/mfa`, undefined, other.tokens.access_token)).statusCode, 403);
      const reset = await send(t.app, 'DELETE', `/admin/users/${user.id}/mfa`, undefined, admin.tokens.access_token);
      assert.equal(reset.statusCode, 204, reset.body);
      const [event] = await eventsOf(t.app, admin.tokens.access_token, user.id, 'mfa_reset');
      assert.equal(event?.actor_id, admin.id);
      const tokens = await login(t.app, user);
      assert.deepEqual(claimsOf(tokens.access_token).amr, ['pwd']);
      assertError(
        await send(t.app, 'DELETE', `/admin/users/${user.id}/mfa`, undefined, admin.tokens.access_token),
        409,
        'Two-factor authentication is not on',
        'mfa_not_enabled',
      );
      assert.equal((await send(t.app, 'DELETE', '/admin/users/999999/mfa', undefined, admin.tokens.access_token)).statusCode, 404);
    });

    it('the CLI resets a second factor: gatepass user reset-mfa --email', async () => {
      const user = await enrolled();
      const env = { PATH: process.env.PATH ?? '', ...sameDatabaseEnv(t, {}) };
      const cli = (email: string) =>
        runNode(['--import', import.meta.resolve('tsx'), path.join(REPO_ROOT, 'src/cli/main.ts'), 'user', 'reset-mfa', '--email', email], {
          cwd: t.cwd,
          env,
        });
      const run = await cli(user.email.toUpperCase());
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, new RegExp(`user ${user.id} ${user.email.replace(/\./g, '\\.')}: two-factor sign-in removed`));
      assert.deepEqual(claimsOf((await login(t.app, user)).access_token).amr, ['pwd']);
      const admin = await loginAdmin(t.app);
      const [event] = await eventsOf(t.app, admin.tokens.access_token, user.id, 'mfa_reset');
      assert.ok(event);
      assert.equal(event.actor_id, null);
      assert.equal(event.user_agent, 'gatepass-cli');
      const again = await cli(user.email);
      assert.equal(again.code, 1, again.stdout);
      assert.match(again.stderr, /Two-factor authentication is not on/);
    });
  });

  describe(`wrong two-factor codes and the account lockout (${backend})`, () => {
    let t: TestApp;
    const clock = testClock();
    before(async () => {
      t = await createTestApp(backend, { ACCOUNT_LOCKOUT_THRESHOLD: '3', ACCOUNT_LOCKOUT_SECONDS: '60' }, { now: clock.now });
    });
    after(() => t.close());

    it('wrong codes count toward the lockout: at the threshold → 429 account_locked with Retry-After, even with the right code', async () => {
      const user = await signUp(t.app);
      const { secret } = await enrol(t.app, clock, user.tokens.access_token);
      const token = await mfaToken(t.app, user);
      for (let attempt = 0; attempt < 3; attempt += 1) assertError(await verify(t.app, token, '12345'), 400, ...INVALID_CODE);
      const locked = await verify(t.app, token, totpCode(secret, clock.now() + 30_000));
      assert.equal(locked.statusCode, 429, locked.body);
      assert.equal(locked.json<{ code: string }>().code, 'account_locked');
      assert.ok(Number(locked.headers['retry-after']) >= 1);
      // The password login is locked too: one budget per account.
      assert.equal((await post(t.app, '/auth/login', { email: user.email, password: user.password })).statusCode, 429);
      clock.advance(61_000);
      const response = await verify(t.app, token, nextCode(clock, secret));
      assert.equal(response.statusCode, 200, response.body);
    });

    it('a correct password does not reset the count of wrong codes: after a lock, one more wrong code locks again, even in a new login', async () => {
      const user = await signUp(t.app);
      const { secret } = await enrol(t.app, clock, user.tokens.access_token);
      const first = await mfaToken(t.app, user);
      for (let attempt = 0; attempt < 3; attempt += 1) assertError(await verify(t.app, first, '12345'), 400, ...INVALID_CODE);
      clock.advance(61_000);
      const second = await mfaToken(t.app, user);
      assertError(await verify(t.app, second, '12345'), 400, ...INVALID_CODE);
      const locked = await verify(t.app, second, nextCode(clock, secret));
      assert.equal(locked.statusCode, 429, locked.body);
      // The lock doubles (120 s): after it, the right code signs in and clears both counts.
      clock.advance(121_000);
      assert.equal((await verify(t.app, second, nextCode(clock, secret))).statusCode, 200);
      assertError(await verify(t.app, await mfaToken(t.app, user), '12345'), 400, ...INVALID_CODE);
    });

    it('a good code resets the count: 2 wrong, 1 right, 2 wrong again are not locked', async () => {
      const user = await signUp(t.app);
      const { secret } = await enrol(t.app, clock, user.tokens.access_token);
      const tokens = await loginWithCode(t.app, clock, user, secret);
      const regenerate = (code: string) => post(t.app, '/auth/mfa/recovery-codes', { code }, tokens.access_token);
      for (let attempt = 0; attempt < 2; attempt += 1) assertError(await regenerate('12345'), 400, ...INVALID_CODE);
      assert.equal((await regenerate(nextCode(clock, secret))).statusCode, 200);
      for (let attempt = 0; attempt < 2; attempt += 1) assertError(await regenerate('12345'), 400, ...INVALID_CODE);
      assert.equal((await regenerate(nextCode(clock, secret))).statusCode, 200);
    });
  });
}
