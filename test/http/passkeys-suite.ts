import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { loadSettings } from '../../src/config/settings.js';
import { buildApp, type GatepassApp } from '../../src/http/app.js';
import { ADMIN_ENV, loginAdmin, patchUser } from '../helpers/admin.js';
import { type Backend, createTestApp, describeNeeding, REDIS_URL, sameDatabaseEnv, type TestApp } from '../helpers/app.js';
import { eventsOf } from '../helpers/audit.js';
import { assertError, call, claimsOf, get, login, newCredentials, post, refresh, send, signUp, ISO_UTC } from '../helpers/client.js';
import {
  INVALID_CREDENTIAL,
  INVALID_PASSKEY,
  NOT_FOUND,
  ORIGIN,
  RP_ID,
  WEBAUTHN_ENV,
  loginOptions,
  registerPasskey,
  registrationOptions,
  verifyLogin,
  verifyRegistration,
  type PasskeyBody,
} from '../helpers/passkeys.js';
import { assertRevoked, assertTokenResponse, assertWorks } from '../helpers/responses.js';
import { FLAG_AT, FLAG_UP, SoftAuthenticator, type AuthenticationResponseJson } from '../helpers/webauthn.js';

/**
 * Passkeys over HTTP (API.md "/auth/passkeys"), with a software authenticator in place of a
 * browser: registration, the list, rename and delete, usernameless sign-in with amr hwk/swk, and
 * the refusals — a replayed challenge, another origin or RP ID, a counter gone backwards, a
 * deactivated account, and (PostgreSQL + Redis) a challenge handed out by another instance.
 */

function listPasskeys(app: GatepassApp, token: string): Promise<LightMyRequestResponse> {
  return get(app, '/auth/passkeys', token);
}

function assertInvalidCredential(response: LightMyRequestResponse): void {
  assertError(response, 401, INVALID_CREDENTIAL, 'invalid_credential');
}

export function definePasskeySuite(backend: Backend): void {
  describe(`passkeys (${backend})`, () => {
    let t: TestApp;
    let adminToken: string;
    let clock = Date.now();
    before(async () => {
      t = await createTestApp(backend, { ...ADMIN_ENV, ...WEBAUTHN_ENV }, { now: () => clock });
      adminToken = (await loginAdmin(t.app)).tokens.access_token;
    });
    after(() => t.close());

    it('registration options: a discoverable credential with user verification, an opaque stable user handle, the RP of the settings', async () => {
      const user = await signUp(t.app);
      const first = await registrationOptions(t.app, user.tokens.access_token);
      assert.deepEqual(first.rp, { name: 'Gatepass Test', id: RP_ID });
      assert.equal(first.user.name, user.email);
      assert.ok(!Buffer.from(first.user.id, 'base64url').toString('utf8').includes(user.email), 'the user handle is not the email');
      assert.ok(Buffer.from(first.user.id, 'base64url').length >= 16);
      assert.equal(first.authenticatorSelection?.residentKey, 'required');
      assert.equal(first.authenticatorSelection.userVerification, 'required');
      assert.ok(Buffer.from(first.challenge, 'base64url').length >= 16);
      const second = await registrationOptions(t.app, user.tokens.access_token);
      assert.equal(second.user.id, first.user.id, 'the handle is stable');
      assert.notEqual(second.challenge, first.challenge);
      const other = await signUp(t.app);
      assert.notEqual((await registrationOptions(t.app, other.tokens.access_token)).user.id, first.user.id);

      // Without a token: 401.
      assert.equal((await post(t.app, '/auth/passkeys/register/options')).statusCode, 401);
    });

    it('register, list, rename, delete: 201 {id,name,created_at,last_used_at}; excludeCredentials; audited; the export lists them', async () => {
      const user = await signUp(t.app);
      const token = user.tokens.access_token;
      const authenticator = new SoftAuthenticator(ORIGIN);
      const laptop = await registerPasskey(t.app, user, authenticator, '  Laptop  ');
      assert.equal(laptop.name, 'Laptop');
      assert.match(laptop.created_at, ISO_UTC);
      assert.equal(laptop.last_used_at, null);
      clock += 1000;
      const unnamed = await registerPasskey(t.app, user, new SoftAuthenticator('https://app.login.example.test'));
      assert.equal(unnamed.name, 'Passkey');

      const options = await registrationOptions(t.app, token);
      assert.deepEqual(options.excludeCredentials?.map((credential) => credential.id).sort(), [laptop.id, unnamed.id].sort());

      const list = await listPasskeys(t.app, token);
      assert.equal(list.statusCode, 200, list.body);
      assert.deepEqual(list.json(), [laptop, unnamed]);
      assert.ok(!list.body.includes('public_key') && !list.body.includes('counter'), list.body);

      const renamed = await send(t.app, 'PATCH', `/auth/passkeys/${laptop.id}`, { name: 'Work laptop' }, token);
      assert.equal(renamed.statusCode, 200, renamed.body);
      assert.deepEqual(renamed.json(), { ...laptop, name: 'Work laptop' });

      const exported = await get(t.app, '/users/me/export', token);
      assert.equal(exported.statusCode, 200, exported.body);
      assert.deepEqual(exported.json<{ passkeys: PasskeyBody[] }>().passkeys, [{ ...laptop, name: 'Work laptop' }, unnamed]);

      const deleted = await send(t.app, 'DELETE', `/auth/passkeys/${unnamed.id}`, undefined, token);
      assert.equal(deleted.statusCode, 204, deleted.body);
      assert.deepEqual(
        (await listPasskeys(t.app, token)).json<PasskeyBody[]>().map((passkey) => passkey.id),
        [laptop.id],
      );
      assertError(await send(t.app, 'DELETE', `/auth/passkeys/${unnamed.id}`, undefined, token), 404, NOT_FOUND, 'not_found');

      const events = await eventsOf(t.app, adminToken, user.id);
      const names = events.map((event) => event.event);
      assert.equal(names.filter((name) => name === 'passkey_registered').length, 2, names.join());
      assert.ok(names.includes('passkey_renamed') && names.includes('passkey_deleted'), names.join());
      const registered = events.find((event) => event.event === 'passkey_registered' && event.details.passkey_id === laptop.id);
      assert.equal(registered?.details.device_type, 'singleDevice');
    });

    it("another user's passkey: 404 on rename and delete, and it stays", async () => {
      const owner = await signUp(t.app);
      const stranger = await signUp(t.app);
      const passkey = await registerPasskey(t.app, owner, new SoftAuthenticator(ORIGIN));
      const url = `/auth/passkeys/${passkey.id}`;
      assertError(await send(t.app, 'PATCH', url, { name: 'mine now' }, stranger.tokens.access_token), 404, NOT_FOUND, 'not_found');
      assertError(await send(t.app, 'DELETE', url, undefined, stranger.tokens.access_token), 404, NOT_FOUND, 'not_found');
      assert.deepEqual((await listPasskeys(t.app, stranger.tokens.access_token)).json(), []);
      assert.deepEqual((await listPasskeys(t.app, owner.tokens.access_token)).json(), [passkey]);
    });

    it('registration refusals: another origin or RP ID, no user verification, a replayed or foreign challenge → 400 invalid_passkey', async () => {
      const user = await signUp(t.app);
      const token = user.tokens.access_token;
      const authenticator = new SoftAuthenticator(ORIGIN);
      const refused = async (body: unknown, what: string) => {
        const response = await verifyRegistration(t.app, token, body);
        assert.equal(response.statusCode, 400, `${what}: ${response.body}`);
        assert.deepEqual(response.json(), { detail: INVALID_PASSKEY, code: 'invalid_passkey' }, what);
      };
      await refused(authenticator.create(await registrationOptions(t.app, token), { origin: 'https://evil.example' }), 'another origin');
      await refused(authenticator.create(await registrationOptions(t.app, token), { rpId: 'evil.example' }), 'another RP ID');
      await refused(authenticator.create(await registrationOptions(t.app, token), { flags: FLAG_UP | FLAG_AT }), 'no user verification');

      const options = await registrationOptions(t.app, token);
      const good = authenticator.create(options);
      const registered = authenticator.credentials.at(-1)!;
      assert.equal((await verifyRegistration(t.app, token, good)).statusCode, 201);
      await refused(authenticator.create(options), 'the same challenge again');

      // A challenge made for another user, and one made for a login, do not register.
      const other = await signUp(t.app);
      await refused(authenticator.create(await registrationOptions(t.app, other.tokens.access_token)), "another user's challenge");
      const login = await loginOptions(t.app);
      await refused(
        authenticator.create({ ...(await registrationOptions(t.app, token)), challenge: login.challenge }),
        'a login challenge',
      );

      // A registered credential again, for its owner or anyone else.
      for (const someone of [user, other]) {
        const duplicate = authenticator.create(await registrationOptions(t.app, someone.tokens.access_token), {}, registered);
        const response = await verifyRegistration(t.app, someone.tokens.access_token, duplicate);
        assert.equal(response.statusCode, 400, response.body);
        assert.deepEqual(response.json(), { detail: 'This passkey is already registered', code: 'invalid_passkey' });
      }
      assert.deepEqual((await listPasskeys(t.app, other.tokens.access_token)).json(), []);

      // Malformed: 422, not 500.
      const malformed = await verifyRegistration(t.app, token, { id: 'x', type: 'public-key' });
      assert.equal(malformed.statusCode, 422, malformed.body);
      const events = await eventsOf(t.app, adminToken, user.id, 'passkey_registration_failed');
      assert.ok(events.length >= 5, JSON.stringify(events));
    });

    it('sign-in without an email: the token pair of a login, amr ["hwk"] for a device-bound passkey; last_used_at set; audited', async () => {
      const user = await signUp(t.app);
      const authenticator = new SoftAuthenticator(ORIGIN);
      const passkey = await registerPasskey(t.app, user, authenticator);
      const options = await loginOptions(t.app);
      assert.equal(options.rpId, RP_ID);
      assert.equal(options.userVerification, 'required');
      assert.equal(options.allowCredentials, undefined);

      const response = await verifyLogin(t.app, authenticator.get(options));
      const tokens = assertTokenResponse(response);
      const claims = claimsOf(tokens.access_token);
      assert.equal(claims.sub, String(user.id));
      assert.deepEqual(claims.amr, ['hwk']);
      await assertWorks(t.app, tokens.access_token, 'the passkey session');
      const refreshed = await refresh(t.app, tokens.refresh_token);
      assert.equal(refreshed.statusCode, 200, refreshed.body);
      assert.deepEqual(claimsOf(refreshed.json<{ access_token: string }>().access_token).amr, ['hwk'], 'amr survives a refresh');

      const [listed] = (await listPasskeys(t.app, user.tokens.access_token)).json<PasskeyBody[]>();
      assert.equal(listed?.id, passkey.id);
      assert.match(listed.last_used_at ?? '', ISO_UTC);
      const [success] = await eventsOf(t.app, adminToken, user.id, 'login_success');
      assert.equal(success?.details.amr, 'hwk');
    });

    it('a synced passkey (BE|BS, counter 0) signs in with amr ["swk"], again and again', async () => {
      const user = await signUp(t.app);
      const authenticator = new SoftAuthenticator(ORIGIN, { synced: true });
      await registerPasskey(t.app, user, authenticator);
      for (let round = 0; round < 2; round += 1) {
        const tokens = assertTokenResponse(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app))));
        assert.deepEqual(claimsOf(tokens.access_token).amr, ['swk']);
      }
    });

    it('cookie mode as /auth/login: the refresh token in the HttpOnly cookie, not in the body', async () => {
      const user = await signUp(t.app);
      const authenticator = new SoftAuthenticator(ORIGIN);
      await registerPasskey(t.app, user, authenticator);
      const response = await verifyLogin(t.app, authenticator.get(await loginOptions(t.app)), { 'x-gatepass-cookie': '1' });
      assert.equal(response.statusCode, 200, response.body);
      const body = response.json<Record<string, unknown>>();
      assert.equal(body.refresh_token, undefined);
      assert.equal(typeof body.access_token, 'string');
      const cookie = String(response.headers['set-cookie']);
      assert.match(cookie, /gatepass_refresh=/);
      assert.match(cookie, /HttpOnly/);
    });

    it('a replayed assertion (its challenge spent), an expired challenge and an unknown credential → 401 invalid_credential', async () => {
      const user = await signUp(t.app);
      const authenticator = new SoftAuthenticator(ORIGIN);
      await registerPasskey(t.app, user, authenticator);
      const assertion = authenticator.get(await loginOptions(t.app));
      assertTokenResponse(await verifyLogin(t.app, assertion));
      assertInvalidCredential(await verifyLogin(t.app, assertion));
      // A new counter on the same challenge does not help either.
      assertInvalidCredential(
        await verifyLogin(
          t.app,
          authenticator.get({
            challenge: (JSON.parse(Buffer.from(assertion.response.clientDataJSON, 'base64url').toString()) as { challenge: string })
              .challenge,
          }),
        ),
      );

      const stale = await loginOptions(t.app);
      clock += 5 * 60_000 + 1;
      assertInvalidCredential(await verifyLogin(t.app, authenticator.get(stale)));
      assertTokenResponse(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app))));

      // A challenge the server never made.
      assertInvalidCredential(
        await verifyLogin(t.app, authenticator.get({ challenge: Buffer.from('made up by the client').toString('base64url') })),
      );

      const stranger = new SoftAuthenticator(ORIGIN);
      stranger.create({ challenge: 'AAAA', rp: { id: RP_ID, name: 'x' }, user: { id: 'AAAA', name: 'x', displayName: 'x' } });
      assertInvalidCredential(await verifyLogin(t.app, stranger.get(await loginOptions(t.app))));
    });

    it('an assertion for another origin or RP ID, without user verification, with a bad signature or a foreign user handle → 401', async () => {
      const user = await signUp(t.app);
      const authenticator = new SoftAuthenticator(ORIGIN);
      await registerPasskey(t.app, user, authenticator);
      assertInvalidCredential(
        await verifyLogin(t.app, authenticator.get(await loginOptions(t.app), { origin: 'https://login.example.test.evil.example' })),
      );
      assertInvalidCredential(
        await verifyLogin(t.app, authenticator.get(await loginOptions(t.app), { origin: 'http://login.example.test' })),
      );
      assertInvalidCredential(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app), { rpId: 'example.test' })));
      assertInvalidCredential(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app), { flags: FLAG_UP })));
      assertInvalidCredential(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app), { type: 'webauthn.create' })));
      const other = await signUp(t.app);
      const otherHandle = (await registrationOptions(t.app, other.tokens.access_token)).user.id;
      assertInvalidCredential(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app), { userHandle: otherHandle })));
      assertInvalidCredential(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app), { userHandle: null })));
      const withNull = authenticator.get(await loginOptions(t.app));
      assertInvalidCredential(
        await verifyLogin(t.app, {
          ...withNull,
          response: { ...withNull.response, userHandle: null },
        } as unknown as AuthenticationResponseJson),
      );
      const tampered = authenticator.get(await loginOptions(t.app));
      const signature = Buffer.from(tampered.response.signature, 'base64url');
      signature[signature.length - 1] = (signature.at(-1) ?? 0) ^ 1;
      assertInvalidCredential(
        await verifyLogin(t.app, { ...tampered, response: { ...tampered.response, signature: signature.toString('base64url') } }),
      );
      // The second origin of WEBAUTHN_ORIGINS is good, and the passkey still works.
      const tokens = assertTokenResponse(
        await verifyLogin(t.app, authenticator.get(await loginOptions(t.app), { origin: 'https://app.login.example.test' })),
      );
      assert.deepEqual(claimsOf(tokens.access_token).amr, ['hwk']);
      const failures = await eventsOf(t.app, adminToken, user.id, 'login_failure');
      assert.ok(failures.length >= 9 && failures.every((event) => event.details.method === 'passkey'), JSON.stringify(failures));
    });

    it('a failed attempt spends its challenge: the right assertion on it afterwards is refused', async () => {
      const user = await signUp(t.app);
      const authenticator = new SoftAuthenticator(ORIGIN);
      await registerPasskey(t.app, user, authenticator);
      const options = await loginOptions(t.app);
      assertInvalidCredential(await verifyLogin(t.app, authenticator.get(options, { origin: 'https://evil.example' })));
      assertInvalidCredential(await verifyLogin(t.app, authenticator.get(options)));
      const registration = await registrationOptions(t.app, user.tokens.access_token);
      const refused = await verifyRegistration(
        t.app,
        user.tokens.access_token,
        authenticator.create(registration, { rpId: 'evil.example' }),
      );
      assert.equal(refused.statusCode, 400, refused.body);
      const again = await verifyRegistration(t.app, user.tokens.access_token, authenticator.create(registration));
      assert.equal(again.statusCode, 400, again.body);
    });

    it('a signature counter that does not go up is refused and audited as a possible clone; the passkey goes on with a higher one', async () => {
      const user = await signUp(t.app);
      const authenticator = new SoftAuthenticator(ORIGIN);
      const passkey = await registerPasskey(t.app, user, authenticator);
      const credential = authenticator.credentials[0]!;
      credential.counter = 10;
      assertTokenResponse(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app), { counter: 10 })));
      assertInvalidCredential(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app), { counter: 7 })));
      assertInvalidCredential(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app), { counter: 10 })));
      assertInvalidCredential(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app), { counter: 0 })));
      const regressions = await eventsOf(t.app, adminToken, user.id, 'passkey_counter_regressed');
      assert.equal(regressions.length, 3, JSON.stringify(regressions));
      assert.deepEqual(
        regressions.map((event) => event.details.presented_counter),
        [0, 10, 7],
      );
      for (const event of regressions) {
        assert.equal(event.details.passkey_id, passkey.id);
        assert.equal(event.details.stored_counter, 10);
      }
      assertTokenResponse(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app), { counter: 11 })));
    });

    it("a deactivated user's passkey → 401 invalid_credential; an active one again works; deleting a passkey ends its sign-ins", async () => {
      const user = await signUp(t.app);
      const authenticator = new SoftAuthenticator(ORIGIN);
      const passkey = await registerPasskey(t.app, user, authenticator);
      const tokens = assertTokenResponse(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app))));

      assert.equal((await call(t.app, 'PUT', '/users/me/deactivate', { token: user.tokens.access_token })).statusCode, 200);
      assertRevoked(await get(t.app, '/users/me', tokens.access_token));
      assertInvalidCredential(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app))));
      assert.equal((await patchUser(t.app, user.id, { is_active: true }, adminToken)).statusCode, 200);
      const again = assertTokenResponse(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app))));

      // Logout-all ends passkey sessions like any other.
      assert.equal((await post(t.app, '/auth/logout-all', undefined, again.access_token)).statusCode, 204);
      assertRevoked(await get(t.app, '/users/me', again.access_token));

      const fresh = assertTokenResponse(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app))));
      assert.equal((await send(t.app, 'DELETE', `/auth/passkeys/${passkey.id}`, undefined, fresh.access_token)).statusCode, 204);
      assertInvalidCredential(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app))));
    });

    it("a deleted account's passkeys go with it", async () => {
      const user = await signUp(t.app);
      const authenticator = new SoftAuthenticator(ORIGIN);
      await registerPasskey(t.app, user, authenticator);
      const deleted = await send(t.app, 'DELETE', '/users/me', { password: user.password }, user.tokens.access_token);
      assert.equal(deleted.statusCode, 204, deleted.body);
      assertInvalidCredential(await verifyLogin(t.app, authenticator.get(await loginOptions(t.app))));
    });

    it('REQUIRE_EMAIL_VERIFICATION: an unverified account proven by its passkey gets 403 email_not_verified', async () => {
      const strict = await createTestApp(backend, { ...WEBAUTHN_ENV, REQUIRE_EMAIL_VERIFICATION: 'true' });
      try {
        // Made by the service (no verification mail left running when the app closes); it cannot log in
        // unverified, so its session is started by the service too (as one from before the setting was on).
        const client = { ip: null, userAgent: null };
        const account = await strict.app.gatepass.accounts.register({ ...newCredentials(), fullName: null }, client);
        assert.equal(account.emailVerified, false);
        const pair = await strict.app.gatepass.sessions.startSession(account, client);
        const authenticator = new SoftAuthenticator(ORIGIN);
        const options = await registrationOptions(strict.app, pair.accessToken);
        assert.equal((await verifyRegistration(strict.app, pair.accessToken, authenticator.create(options))).statusCode, 201);
        assertError(
          await verifyLogin(strict.app, authenticator.get(await loginOptions(strict.app))),
          403,
          'Email not verified',
          'email_not_verified',
        );
        // A wrong passkey still answers 401 first.
        assertInvalidCredential(
          await verifyLogin(strict.app, authenticator.get(await loginOptions(strict.app), { origin: 'https://evil.example' })),
        );
      } finally {
        await strict.close();
      }
    });

    it('production without WEBAUTHN_RP_ID/WEBAUTHN_ORIGINS: passkeys are off, 404 passkeys_disabled; the list still answers', async () => {
      const production = await createTestApp(backend, { NODE_ENV: 'production' });
      try {
        const credentials = newCredentials();
        await production.app.gatepass.accounts.register({ ...credentials, fullName: null }, { ip: null, userAgent: null });
        const user = { tokens: await login(production.app, credentials) };
        const detail = 'Passkeys are not configured on this server (WEBAUTHN_RP_ID, WEBAUTHN_ORIGINS)';
        assertError(await post(production.app, '/auth/passkeys/login/options', {}), 404, detail, 'passkeys_disabled');
        assertError(
          await post(production.app, '/auth/passkeys/register/options', undefined, user.tokens.access_token),
          404,
          detail,
          'passkeys_disabled',
        );
        assert.deepEqual((await listPasskeys(production.app, user.tokens.access_token)).json(), []);
      } finally {
        await production.close();
      }
    });

    it('the OpenAPI document shows the passkey routes, tagged passkeys', async () => {
      const response = await get(t.app, '/openapi.json');
      assert.equal(response.statusCode, 200);
      const paths = response.json<{ paths: Record<string, Record<string, { tags?: string[] }>> }>().paths;
      const expected: [string, string][] = [
        ['/auth/passkeys/register/options', 'post'],
        ['/auth/passkeys/register/verify', 'post'],
        ['/auth/passkeys', 'get'],
        ['/auth/passkeys/{id}', 'patch'],
        ['/auth/passkeys/{id}', 'delete'],
        ['/auth/passkeys/login/options', 'post'],
        ['/auth/passkeys/login/verify', 'post'],
      ];
      for (const [path, method] of expected) assert.deepEqual(paths[path]?.[method]?.tags, ['passkeys'], `${method} ${path}`);
    });

    it('login options and verify are rate-limited per client like /auth/login', async () => {
      const limited = await createTestApp(backend, { ...WEBAUTHN_ENV, LOGIN_RATE_LIMIT_PER_MINUTE: '2' });
      try {
        assert.equal((await post(limited.app, '/auth/passkeys/login/options', {})).statusCode, 200);
        assert.equal((await post(limited.app, '/auth/passkeys/login/options')).statusCode, 200);
        const third = await post(limited.app, '/auth/passkeys/login/options', {});
        assert.equal(third.statusCode, 429, third.body);
        assert.ok(third.headers['retry-after'] !== undefined);
        assert.equal((await post(limited.app, '/auth/passkeys/login/verify', {})).statusCode, 429);
      } finally {
        await limited.close();
      }
    });
  });

  describeNeeding(`passkeys across instances (${backend})`, { postgres: backend === 'postgres', redis: true }, () => {
    it('options from one instance verify on the other, once: registration and sign-in', async () => {
      const redis = { REDIS_URL: REDIS_URL ?? '' };
      const a = await createTestApp(backend, { ...WEBAUTHN_ENV, ...redis });
      let b: GatepassApp | undefined;
      try {
        b = await buildApp(loadSettings(sameDatabaseEnv(a, { ...WEBAUTHN_ENV, ...redis }), { cwd: a.cwd }), { cwd: a.cwd });
        const user = await signUp(a.app);
        const authenticator = new SoftAuthenticator(ORIGIN);
        const credential = authenticator.create(await registrationOptions(a.app, user.tokens.access_token));
        const registered = await verifyRegistration(b, user.tokens.access_token, credential);
        assert.equal(registered.statusCode, 201, registered.body);
        assert.equal(
          (await verifyRegistration(a.app, user.tokens.access_token, credential)).statusCode,
          400,
          'spent on the other instance',
        );

        const assertion = authenticator.get(await loginOptions(b));
        const tokens = assertTokenResponse(await verifyLogin(a.app, assertion));
        assertInvalidCredential(await verifyLogin(b, assertion));
        assertInvalidCredential(await verifyLogin(a.app, assertion));
        await assertWorks(b, tokens.access_token, 'the passkey session on B');
      } finally {
        await b?.close();
        await a.close();
      }
    });
  });
}
