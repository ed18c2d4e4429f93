import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ADMIN_ENV, loginAdmin } from '../helpers/admin.js';
import { type Backend, createTestApp, type TestApp } from '../helpers/app.js';
import { eventsOf } from '../helpers/audit.js';
import { assertError, claimsOf, forgot, login, post, resetPassword, send, signUp, type SignedUpUser } from '../helpers/client.js';
import { enrol, mfaToken, testClock, verify } from '../helpers/mfa.js';
import { nextResetToken } from '../helpers/outbox.js';
import { ORIGIN, WEBAUTHN_ENV, loginOptions, registerPasskey, verifyLogin, type PasskeyBody } from '../helpers/passkeys.js';
import { assertRevoked, assertTokenResponse, assertWorks } from '../helpers/responses.js';
import { FLAG_UP, SoftAuthenticator, type RequestOptionsJson } from '../helpers/webauthn.js';

/**
 * Accounts without a password, and a passkey as the second step of a sign-in (issue 16): the
 * password can be removed while a passkey remains, never the last way to sign in (also when the
 * removals race), password reset sets a first one again; with TOTP on, a login may finish with one of
 * the account's own passkeys instead of a code (amr ["pwd","hwk"]).
 */

const LAST_WAY = 'This is the last way to sign in to this account: add another (a password, a passkey or a linked account) first';
const NO_PASSWORD = 'This account has no password; set one with password reset (POST /auth/password/forgot) first';
const SIGN_IN_AGAIN = 'This account has no password: sign in again (with a passkey or a linked account) and retry within 5 minutes';
const INVALID_CODE = 'Invalid two-factor code';
const INVALID_MFA_TOKEN = 'Invalid or expired MFA token';

function removePassword(t: TestApp, user: SignedUpUser, password = user.password) {
  return post(t.app, '/auth/password/remove', { current_password: password }, user.tokens.access_token);
}

function passkeyOptions(t: TestApp, token: string) {
  return post(t.app, '/auth/mfa/passkey/options', { mfa_token: token });
}

function passkeyVerify(t: TestApp, token: string, credential: unknown) {
  return post(t.app, '/auth/mfa/passkey/verify', { mfa_token: token, credential });
}

export function definePasswordlessSuite(backend: Backend): void {
  describe(`accounts without a password (${backend})`, () => {
    let t: TestApp;
    let adminToken: string;
    const clock = testClock();
    const seenResetTokens = new Set<string>();
    before(async () => {
      t = await createTestApp(backend, { ...ADMIN_ENV, ...WEBAUTHN_ENV }, { now: clock.now });
      adminToken = (await loginAdmin(t.app)).tokens.access_token;
    });
    after(() => t.close());

    it('the password goes only while a passkey remains; then password login fails as a wrong password, the passkey signs in', async () => {
      const user = await signUp(t.app);
      assertError(await removePassword(t, user), 409, LAST_WAY, 'last_sign_in_method');
      await assertWorks(t.app, (await login(t.app, user)).access_token, 'the password, kept');

      const authenticator = new SoftAuthenticator(ORIGIN);
      await registerPasskey(t.app, user, authenticator);
      const otherSession = await login(t.app, user);
      assertError(await removePassword(t, user, 'not-the-password-1'), 401, 'Current password is incorrect', 'invalid_credentials');
      assert.equal((await removePassword(t, user)).statusCode, 204);

      await assertWorks(t.app, user.tokens.access_token, 'the session that removed it');
      assertRevoked(await send(t.app, 'GET', '/users/me', undefined, otherSession.access_token));
      assertError(await post(t.app, '/auth/login', user), 401, 'Incorrect email or password', 'invalid_credentials');
      const [failure] = await eventsOf(t.app, adminToken, user.id, 'login_failure');
      assert.equal(failure?.details.reason, 'no_password');
      assert.ok((await eventsOf(t.app, adminToken, user.id, 'password_removed')).length === 1);

      const tokens = assertTokenResponse(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app))));
      assert.deepEqual(claimsOf(tokens.access_token).amr, ['hwk']);

      // Changing the password says how to get one; nothing is changed.
      const change = await post(
        t.app,
        '/auth/password/change',
        { current_password: user.password, new_password: 'a-new-Passw0rd!' },
        tokens.access_token,
      );
      assertError(change, 409, NO_PASSWORD, 'password_not_set');
      assertError(await removePassword(t, { ...user, tokens }), 409, NO_PASSWORD, 'password_not_set');

      // Sensitive changes take a recent sign-in in place of the password: past 5 minutes, sign in again.
      clock.advance(6 * 60_000);
      assertError(await send(t.app, 'DELETE', '/users/me', {}, tokens.access_token), 403, SIGN_IN_AGAIN, 'reauthentication_required');
      const emailChange = await send(t.app, 'PATCH', '/users/me', { email: `moved-${user.email}` }, tokens.access_token);
      assertError(emailChange, 403, SIGN_IN_AGAIN, 'reauthentication_required');
      const fresh = assertTokenResponse(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app))));
      // A passkey sign-in just now is the proof: the account goes, and its passkey signs nobody in.
      assert.equal((await send(t.app, 'DELETE', '/users/me', {}, fresh.access_token)).statusCode, 204);
      assertError(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app))), 401, 'Invalid passkey', 'invalid_credential');
    });

    it('the last passkey of an account without a password cannot be deleted; password reset sets a first password, then it can', async () => {
      const user = await signUp(t.app);
      const authenticator = new SoftAuthenticator(ORIGIN);
      const passkey = await registerPasskey(t.app, user, authenticator);
      assert.equal((await removePassword(t, user)).statusCode, 204);

      const url = `/auth/passkeys/${passkey.id}`;
      assertError(await send(t.app, 'DELETE', url, undefined, user.tokens.access_token), 409, LAST_WAY, 'last_sign_in_method');
      const listed = await send(t.app, 'GET', '/auth/passkeys', undefined, user.tokens.access_token);
      assert.deepEqual(
        listed.json<PasskeyBody[]>().map((item) => item.id),
        [passkey.id],
      );

      assert.equal((await forgot(t.app, user.email)).statusCode, 202);
      const resetToken = await nextResetToken(path.join(t.cwd, 'data', 'outbox'), user.email, seenResetTokens);
      const firstPassword = 'first-Passw0rd-after-none';
      assert.equal((await resetPassword(t.app, resetToken, firstPassword)).statusCode, 204);
      const tokens = await login(t.app, { email: user.email, password: firstPassword });
      assert.equal((await send(t.app, 'DELETE', url, undefined, tokens.access_token)).statusCode, 204);
      await assertWorks(t.app, (await login(t.app, { email: user.email, password: firstPassword })).access_token, 'the first password');
    });

    it('racing removals (20 deletions of each of two passkeys at once, no password) leave exactly one way to sign in', async () => {
      const user = await signUp(t.app);
      const first = new SoftAuthenticator(ORIGIN);
      const second = new SoftAuthenticator(ORIGIN);
      const a = await registerPasskey(t.app, user, first);
      const b = await registerPasskey(t.app, user, second);
      assert.equal((await removePassword(t, user)).statusCode, 204);

      const deletions = Array.from({ length: 40 }, (_, i) =>
        send(t.app, 'DELETE', `/auth/passkeys/${i % 2 === 0 ? a.id : b.id}`, undefined, user.tokens.access_token),
      );
      const statuses = (await Promise.all(deletions)).map((response) => response.statusCode);
      assert.equal(statuses.filter((status) => status === 204).length, 1, statuses.join());
      assert.ok(
        statuses.every((status) => status === 204 || status === 404 || status === 409),
        statuses.join(),
      );
      const left = (await send(t.app, 'GET', '/auth/passkeys', undefined, user.tokens.access_token)).json<PasskeyBody[]>();
      assert.equal(left.length, 1);
      const survivor = left[0]?.id === a.id ? first : second;
      assertTokenResponse(await verifyLogin(t.app, survivor.get(await loginOptions(t.app))));
    });
  });

  describe(`a passkey as the second step of a login (${backend})`, () => {
    let t: TestApp;
    const clock = testClock();
    before(async () => {
      t = await createTestApp(backend, WEBAUTHN_ENV, { now: clock.now });
    });
    after(() => t.close());

    /** A user with TOTP on and one passkey on `authenticator`. */
    async function twoFactorUser(authenticator: SoftAuthenticator): Promise<{ user: SignedUpUser; passkey: PasskeyBody }> {
      const user = await signUp(t.app);
      const passkey = await registerPasskey(t.app, user, authenticator);
      await enrol(t.app, clock, user.tokens.access_token);
      return { user, passkey };
    }

    async function optionsFor(token: string): Promise<RequestOptionsJson> {
      const response = await passkeyOptions(t, token);
      assert.equal(response.statusCode, 200, response.body);
      return response.json<RequestOptionsJson>();
    }

    it('the login lists "passkey"; its options name the own passkeys; the assertion completes it with amr ["pwd","hwk"], once', async () => {
      const authenticator = new SoftAuthenticator(ORIGIN);
      const { user, passkey } = await twoFactorUser(authenticator);
      const loginAnswer = await post(t.app, '/auth/login', { email: user.email, password: user.password });
      const body = loginAnswer.json<{ mfa_token: string; methods: string[] }>();
      assert.deepEqual(body.methods, ['totp', 'recovery_code', 'passkey']);

      const options = await optionsFor(body.mfa_token);
      assert.deepEqual(
        options.allowCredentials?.map((credential) => credential.id),
        [passkey.id],
      );
      assert.equal(options.userVerification, 'preferred');

      const assertion = authenticator.get(options);
      const tokens = assertTokenResponse(await passkeyVerify(t, body.mfa_token, assertion));
      assert.deepEqual(claimsOf(tokens.access_token).amr, ['pwd', 'hwk']);
      assert.equal(claimsOf(tokens.access_token).sub, String(user.id));
      await assertWorks(t.app, tokens.access_token, 'the two-factor session');

      // Spent: the mfa_token takes nothing more, and the assertion is not accepted again.
      assertError(await passkeyVerify(t, body.mfa_token, assertion), 401, INVALID_MFA_TOKEN, 'invalid_mfa_token');
      assertError(await passkeyOptions(t, body.mfa_token), 401, INVALID_MFA_TOKEN, 'invalid_mfa_token');
      assertError(await verify(t.app, body.mfa_token, '000000'), 401, INVALID_MFA_TOKEN, 'invalid_mfa_token');
    });

    it('a security key without user verification (presence only) is a second factor; it is no usernameless sign-in', async () => {
      const authenticator = new SoftAuthenticator(ORIGIN);
      const { user } = await twoFactorUser(authenticator);
      const token = await mfaToken(t.app, user);
      const tokens = assertTokenResponse(await passkeyVerify(t, token, authenticator.get(await optionsFor(token), { flags: FLAG_UP })));
      assert.deepEqual(claimsOf(tokens.access_token).amr, ['pwd', 'hwk']);
      const usernameless = await verifyLogin(t.app, authenticator.get(await loginOptions(t.app), { flags: FLAG_UP }));
      assert.equal(usernameless.statusCode, 401, usernameless.body);
    });

    it("another account's passkey, an assertion on a usernameless challenge, a bad mfa_token: refused; five refusals kill the token", async () => {
      const mine = new SoftAuthenticator(ORIGIN);
      const { user } = await twoFactorUser(mine);
      const stranger = new SoftAuthenticator(ORIGIN);
      await twoFactorUser(stranger);
      const token = await mfaToken(t.app, user);

      assertError(await passkeyOptions(t, 'not-a-token'), 401, INVALID_MFA_TOKEN, 'invalid_mfa_token');
      assertError(await passkeyVerify(t, 'not-a-token', mine.get(await optionsFor(token))), 401, INVALID_MFA_TOKEN, 'invalid_mfa_token');
      // The stranger's passkey, on a challenge made for this user.
      assertError(await passkeyVerify(t, token, stranger.get(await optionsFor(token))), 400, INVALID_CODE, 'invalid_code');
      // The own passkey on a challenge of a usernameless sign-in: challenges are bound to their ceremony.
      assertError(await passkeyVerify(t, token, mine.get(await loginOptions(t.app))), 400, INVALID_CODE, 'invalid_code');
      for (let i = 0; i < 3; i += 1)
        assertError(await passkeyVerify(t, token, stranger.get(await optionsFor(token))), 400, INVALID_CODE, 'invalid_code');
      // Five refusals: even the right passkey no longer completes this sign-in.
      assertError(await passkeyOptions(t, token), 401, INVALID_MFA_TOKEN, 'invalid_mfa_token');
    });

    it('an account without a passkey: methods without "passkey", and its options answer 404', async () => {
      const user = await signUp(t.app);
      await enrol(t.app, clock, user.tokens.access_token);
      const loginAnswer = await post(t.app, '/auth/login', { email: user.email, password: user.password });
      const body = loginAnswer.json<{ mfa_token: string; methods: string[] }>();
      assert.deepEqual(body.methods, ['totp', 'recovery_code']);
      assertError(await passkeyOptions(t, body.mfa_token), 404, 'This account has no passkey', 'not_found');
    });

    it('20 assertions on one mfa_token at once (each on its own challenge): exactly one session', async () => {
      const authenticator = new SoftAuthenticator(ORIGIN, { synced: true });
      const { user } = await twoFactorUser(authenticator);
      const token = await mfaToken(t.app, user);
      const assertions = [];
      for (let i = 0; i < 20; i += 1) assertions.push(authenticator.get(await optionsFor(token)));
      const responses = await Promise.all(assertions.map((assertion) => passkeyVerify(t, token, assertion)));
      const winners = responses.filter((response) => response.statusCode === 200);
      assert.equal(winners.length, 1, responses.map((response) => response.statusCode).join());
      assert.deepEqual(claimsOf(winners[0]?.json<{ access_token: string }>().access_token ?? '').amr, ['pwd', 'swk']);
      assert.ok(
        responses.every((response) => response.statusCode === 200 || response.statusCode === 401),
        responses.map((response) => `${response.statusCode} ${response.body}`).join('\n'),
      );
    });
  });
}
