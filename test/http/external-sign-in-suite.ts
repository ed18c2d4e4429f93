import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import type { LinkedIdentity } from '../../src/client/index.js';
import { type Backend, createTestApp, type TestApp } from '../helpers/app.js';
import { claimsOf, get, post, send, signUp, type Tokens, type UserBody } from '../helpers/client.js';
import { enrol, nextCode, testClock, type TestClock } from '../helpers/mfa.js';
import { startOidcProvider, type TestOidcProvider } from '../helpers/oidc-provider.js';
import { nextVerificationToken } from '../helpers/outbox.js';
import { registerPasskey } from '../helpers/passkeys.js';
import { SoftAuthenticator, type RequestOptionsJson } from '../helpers/webauthn.js';

/**
 * External sign-in with OpenID Connect over HTTP (API.md "External identity providers"), against two
 * real OpenID Providers (oidc-provider on loopback ports, "alpha" and "beta"): first and returning
 * sign-in, automatic linking on a verified email and its refusal on an unverified one, explicit link
 * and unlink, TOTP after the provider, and the refusals — state, flow cookie, PKCE, replay, nonce,
 * issuer, audience, expiry, a mix-up between the two providers, open redirects, a deactivated
 * account, concurrent deliveries of one callback. Every refusal is a 302 to `/?error=<code>` that
 * starts no session and sets no refresh cookie.
 */

const PUBLIC_URL = 'http://localhost:8123';
const ALPHA = { clientId: 'gatepass-alpha', clientSecret: `alpha-${randomBytes(16).toString('hex')}` };
const BETA = { clientId: 'gatepass-beta', clientSecret: `beta-${randomBytes(16).toString('hex')}` };
const IDENTITY_KEYS = ['created_at', 'email', 'email_verified', 'id', 'last_used_at', 'provider'];

let accountCounter = 0;
const seenVerificationTokens = new Set<string>();
/** A provider account id and an address nobody has used in this run. */
/** A loopback port nothing listens on now (a provider that will come up later). */
async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function freshPerson(): { accountId: string; email: string } {
  accountCounter += 1;
  const tag = `${accountCounter}-${randomBytes(3).toString('hex')}`;
  return { accountId: `person-${tag}`, email: `person-${tag}@idp.example.com` };
}

interface StartedFlow {
  authorizationUrl: string;
  /** The flow cookie as a Cookie header (`name=value`). */
  cookie: string;
}

/** GET /auth/identities's items, as gatepass/client types them. */
type IdentityBody = LinkedIdentity;

/** The `name=value` of a Set-Cookie header of the answer whose name is `name`, if any. */
function setCookie(response: LightMyRequestResponse, name: string): string | undefined {
  const headers = response.headers['set-cookie'];
  const lines = headers === undefined ? [] : Array.isArray(headers) ? headers : [headers];
  return lines.find((line) => line.startsWith(`${name}=`));
}

export function defineExternalSignInSuite(backend: Backend): void {
  describe(`external sign-in with OpenID Connect (${backend})`, () => {
    let alpha: TestOidcProvider;
    let beta: TestOidcProvider;
    let t: TestApp;
    let clock: TestClock;
    let latePort: number;
    let late: TestOidcProvider | undefined;

    before(async () => {
      latePort = await unusedPort();
      alpha = await startOidcProvider({ clients: [{ ...ALPHA, redirectUris: [`${PUBLIC_URL}/auth/oauth/alpha/callback`] }] });
      beta = await startOidcProvider({ clients: [{ ...BETA, redirectUris: [`${PUBLIC_URL}/auth/oauth/beta/callback`] }] });
      clock = testClock();
      t = await createTestApp(
        backend,
        {
          PUBLIC_URL,
          OAUTH_PROVIDERS: 'alpha,beta,down,late',
          OAUTH_ALPHA_ISSUER: alpha.issuer,
          OAUTH_ALPHA_CLIENT_ID: ALPHA.clientId,
          OAUTH_ALPHA_CLIENT_SECRET: ALPHA.clientSecret,
          OAUTH_BETA_ISSUER: beta.issuer,
          OAUTH_BETA_CLIENT_ID: BETA.clientId,
          OAUTH_BETA_CLIENT_SECRET: BETA.clientSecret,
          OAUTH_BETA_NAME: 'Beta Corp',
          // Nothing listens there: a provider that is down must not stop gatepass.
          OAUTH_DOWN_ISSUER: 'http://127.0.0.1:9',
          OAUTH_DOWN_CLIENT_ID: 'down',
          OAUTH_DOWN_CLIENT_SECRET: 'down-secret',
          // Down at the start, up later: discovery is tried again.
          OAUTH_LATE_ISSUER: `http://127.0.0.1:${latePort}`,
          OAUTH_LATE_CLIENT_ID: ALPHA.clientId,
          OAUTH_LATE_CLIENT_SECRET: ALPHA.clientSecret,
        },
        { now: clock.now },
      );
    });

    after(async () => {
      await t.close();
      await alpha.close();
      await beta.close();
      await late?.close();
    });

    async function start(provider: string, redirect?: string): Promise<StartedFlow> {
      const query = redirect === undefined ? '' : `?redirect=${encodeURIComponent(redirect)}`;
      const response = await get(t.app, `/auth/oauth/${provider}/start${query}`);
      assert.equal(response.statusCode, 302, response.body);
      assert.match(String(response.headers['cache-control']), /no-store/);
      assert.equal(response.headers['referrer-policy'], 'no-referrer');
      const flowCookie = setCookie(response, 'gatepass_oauth_flow');
      assert.ok(flowCookie !== undefined, 'the start sets the flow cookie');
      assert.match(flowCookie, /; Max-Age=600; Path=\/auth\/oauth; HttpOnly; Secure; SameSite=Lax$/);
      return { authorizationUrl: String(response.headers.location), cookie: flowCookie.split(';')[0] ?? '' };
    }

    function deliver(provider: string, callbackUrl: URL | string, cookie?: string): Promise<LightMyRequestResponse> {
      const url = new URL(callbackUrl);
      return t.app.inject({
        method: 'GET',
        url: `/auth/oauth/${provider}/callback${url.search}`,
        headers: cookie === undefined ? {} : { cookie },
      });
    }

    async function sessionCount(): Promise<number> {
      const row = await t.app.gatepass.database.db
        .selectFrom('sessions')
        .select((eb) => eb.fn.countAll<number | string>().as('count'))
        .executeTakeFirstOrThrow();
      return Number(row.count);
    }

    async function lastFailure(): Promise<Record<string, unknown> | undefined> {
      const row = await t.app.gatepass.database.db
        .selectFrom('audit_events')
        .selectAll()
        .where('event', '=', 'external_sign_in_failed')
        .orderBy('id', 'desc')
        .limit(1)
        .executeTakeFirst();
      return row === undefined ? undefined : (JSON.parse(row.details) as Record<string, unknown>);
    }

    /** A callback that signed in: the page's address, the refresh cookie, and the pair a cookie-mode refresh gives. */
    async function assertSignedIn(response: LightMyRequestResponse, redirect = '/'): Promise<Tokens> {
      assert.equal(response.statusCode, 302, response.body);
      assert.equal(response.headers.location, `${PUBLIC_URL}${redirect}`);
      assert.match(String(response.headers['cache-control']), /no-store/);
      assert.equal(response.headers['referrer-policy'], 'no-referrer');
      assert.match(setCookie(response, 'gatepass_oauth_flow') ?? '', /^gatepass_oauth_flow=; Max-Age=0/, 'the flow cookie is cleared');
      const refreshCookie = setCookie(response, 'gatepass_refresh');
      assert.ok(refreshCookie !== undefined, 'the refresh cookie of cookie mode is set');
      assert.match(refreshCookie, /; Path=\/auth; HttpOnly; Secure; SameSite=Strict$/);
      const refreshed = await t.app.inject({
        method: 'POST',
        url: '/auth/refresh',
        headers: { cookie: refreshCookie.split(';')[0] ?? '', 'x-gatepass-cookie': '1' },
      });
      assert.equal(refreshed.statusCode, 200, refreshed.body);
      return refreshed.json<Tokens>();
    }

    /** A refusal: 302 to the page with `?error=<code>`, no session, no refresh cookie, the flow cookie cleared, audited. */
    async function assertRefused(response: LightMyRequestResponse, code: string, sessionsBefore: number): Promise<void> {
      assert.equal(response.statusCode, 302, response.body);
      assert.equal(response.headers.location, `${PUBLIC_URL}/?error=${code}`);
      assert.equal(setCookie(response, 'gatepass_refresh'), undefined, 'no refresh cookie');
      assert.match(setCookie(response, 'gatepass_oauth_flow') ?? '', /^gatepass_oauth_flow=; Max-Age=0/, 'the flow cookie is cleared');
      assert.match(String(response.headers['cache-control']), /no-store/);
      assert.equal(response.headers['referrer-policy'], 'no-referrer');
      assert.equal(await sessionCount(), sessionsBefore, 'no session was started');
      assert.equal((await lastFailure())?.code, code, 'audited as external_sign_in_failed with its code');
    }

    /** The whole round trip: start, the provider's login as `accountId`, the callback. */
    async function signInWith(
      provider: TestOidcProvider,
      id: string,
      accountId: string,
      redirect?: string,
    ): Promise<LightMyRequestResponse> {
      const flow = await start(id, redirect);
      return deliver(id, await provider.signInAtProvider(flow.authorizationUrl, accountId), flow.cookie);
    }

    async function me(accessToken: string): Promise<UserBody & { email_verified: boolean }> {
      const response = await get(t.app, '/users/me', accessToken);
      assert.equal(response.statusCode, 200, response.body);
      return response.json<UserBody & { email_verified: boolean }>();
    }

    /** Follows the verification mail registration sent to `email`: the account's address is proven. */
    async function verifyAddress(email: string): Promise<void> {
      const token = await nextVerificationToken(path.join(t.cwd, 'data', 'outbox'), email, seenVerificationTokens);
      const response = await post(t.app, '/auth/email/verify', { token });
      assert.equal(response.statusCode, 204, response.body);
    }

    async function identities(accessToken: string): Promise<IdentityBody[]> {
      const response = await get(t.app, '/auth/identities', accessToken);
      assert.equal(response.statusCode, 200, response.body);
      return response.json<IdentityBody[]>();
    }

    /** A new account made by a first sign-in at alpha; returns its tokens and the provider account. */
    async function federatedUser(claims: { email_verified?: boolean } = {}) {
      const person = freshPerson();
      alpha.setAccount(person.accountId, { email: person.email, email_verified: claims.email_verified ?? true, name: 'Fed Person' });
      const tokens = await assertSignedIn(await signInWith(alpha, 'alpha', person.accountId));
      return { ...person, tokens, userId: Number(claimsOf(tokens.access_token).sub) };
    }

    it('lists the providers in OAUTH_PROVIDERS order, named by OAUTH_<ID>_NAME or the id capitalised', async () => {
      const response = await get(t.app, '/auth/oauth/providers');
      assert.equal(response.statusCode, 200, response.body);
      assert.deepEqual(response.json(), [
        { id: 'alpha', name: 'Alpha' },
        { id: 'beta', name: 'Beta Corp' },
        { id: 'down', name: 'Down' },
        { id: 'late', name: 'Late' },
      ]);
    });

    it('the start sends the browser to the provider with PKCE S256, state, nonce and the registered redirect URI', async () => {
      const flow = await start('alpha', '/account');
      const url = new URL(flow.authorizationUrl);
      assert.equal(url.origin, alpha.issuer);
      assert.equal(url.searchParams.get('client_id'), ALPHA.clientId);
      assert.equal(url.searchParams.get('redirect_uri'), `${PUBLIC_URL}/auth/oauth/alpha/callback`);
      assert.equal(url.searchParams.get('response_type'), 'code');
      assert.equal(url.searchParams.get('scope'), 'openid email profile');
      assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
      assert.match(url.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
      assert.match(url.searchParams.get('state') ?? '', /^[A-Za-z0-9_-]{43}$/);
      assert.match(url.searchParams.get('nonce') ?? '', /^[A-Za-z0-9_-]{43}$/);
      const second = new URL((await start('alpha')).authorizationUrl);
      assert.notEqual(second.searchParams.get('state'), url.searchParams.get('state'));
      assert.notEqual(second.searchParams.get('code_challenge'), url.searchParams.get('code_challenge'));
    });

    it('an unknown provider is 404 unknown_provider; a provider that is down answers provider_unavailable and stops nothing', async () => {
      for (const path of ['/auth/oauth/nope/start', '/auth/oauth/nope/callback?state=x&code=y']) {
        const response = await get(t.app, path);
        assert.equal(response.statusCode, 404, response.body);
        assert.deepEqual(response.json(), { detail: 'Unknown external sign-in provider', code: 'unknown_provider' });
      }
      const down = await get(t.app, '/auth/oauth/down/start');
      assert.equal(down.statusCode, 302, down.body);
      assert.equal(down.headers.location, `${PUBLIC_URL}/?error=provider_unavailable`);
      assert.equal(setCookie(down, 'gatepass_oauth_flow'), undefined);
      const user = await signUp(t.app);
      const link = await post(t.app, '/auth/identities/link/down', {}, user.tokens.access_token);
      assert.equal(link.statusCode, 503, link.body);
      assert.equal(link.json<{ code: string }>().code, 'provider_unavailable');
    });

    it('a provider that was down is discovered once it is up, and signs in', async () => {
      const down = await get(t.app, '/auth/oauth/late/start');
      assert.equal(down.headers.location, `${PUBLIC_URL}/?error=provider_unavailable`);
      late = await startOidcProvider({ clients: [{ ...ALPHA, redirectUris: [`${PUBLIC_URL}/auth/oauth/late/callback`] }], port: latePort });
      const person = freshPerson();
      late.setAccount(person.accountId, { email: person.email, email_verified: true });
      await assertSignedIn(await signInWith(late, 'late', person.accountId));
    });

    it('a first sign-in creates a passwordless student account, verified as the provider asserts, with amr ["fed"]', async () => {
      const person = freshPerson();
      alpha.setAccount(person.accountId, { email: person.email.toUpperCase(), email_verified: true, name: 'Ada Fed' });
      const sessionsBefore = await sessionCount();
      const tokens = await assertSignedIn(await signInWith(alpha, 'alpha', person.accountId, '/account'), '/account');
      assert.equal(await sessionCount(), sessionsBefore + 1);
      const claims = claimsOf(tokens.access_token);
      assert.deepEqual(claims.amr, ['fed']);
      assert.equal(claims.role, 'student');
      const user = await me(tokens.access_token);
      assert.equal(user.email, person.email);
      assert.equal(user.full_name, 'Ada Fed');
      assert.equal(user.email_verified, true);
      const linked = await identities(tokens.access_token);
      assert.equal(linked.length, 1);
      const [identity] = linked;
      assert.ok(identity !== undefined);
      assert.deepEqual(Object.keys(identity).sort(), IDENTITY_KEYS);
      assert.deepEqual([identity.provider, identity.email, identity.email_verified], ['alpha', person.email, true]);
      // No password: a password login of the address fails like a wrong password.
      const passwordLogin = await post(t.app, '/auth/login', { email: person.email, password: 'anything-at-all-1' });
      assert.equal(passwordLogin.statusCode, 401, passwordLogin.body);
      const register = await t.app.gatepass.database.db
        .selectFrom('audit_events')
        .select('details')
        .where('event', '=', 'register')
        .where('user_id', '=', user.id)
        .executeTakeFirstOrThrow();
      assert.equal((JSON.parse(register.details) as { provider?: string }).provider, 'alpha');
    });

    it('an address the provider does not assert verified makes an unverified account', async () => {
      const { tokens } = await federatedUser({ email_verified: false });
      assert.equal((await me(tokens.access_token)).email_verified, false);
    });

    it('a returning sign-in reaches the same account, without a duplicate', async () => {
      const first = await federatedUser();
      const usersBefore = (await t.app.gatepass.database.db.selectFrom('users').select('id').execute()).length;
      const again = await assertSignedIn(await signInWith(alpha, 'alpha', first.accountId));
      assert.equal(claimsOf(again.access_token).sub, String(first.userId));
      assert.equal((await t.app.gatepass.database.db.selectFrom('users').select('id').execute()).length, usersBefore);
      const linked = await identities(again.access_token);
      assert.equal(linked.length, 1);
      assert.ok(linked[0]?.last_used_at !== null);
    });

    it('a verified address of an existing password account links to it automatically (audited identity_linked, verified_email)', async () => {
      const user = await signUp(t.app);
      await verifyAddress(user.email);
      const accountId = `existing-${user.id}`;
      alpha.setAccount(accountId, { email: user.email, email_verified: true });
      const tokens = await assertSignedIn(await signInWith(alpha, 'alpha', accountId));
      assert.equal(claimsOf(tokens.access_token).sub, String(user.id));
      assert.deepEqual(claimsOf(tokens.access_token).amr, ['fed']);
      assert.deepEqual(
        (await identities(user.tokens.access_token)).map((identity) => identity.provider),
        ['alpha'],
      );
      const linkedEvent = await t.app.gatepass.database.db
        .selectFrom('audit_events')
        .select('details')
        .where('event', '=', 'identity_linked')
        .where('user_id', '=', user.id)
        .executeTakeFirstOrThrow();
      assert.equal((JSON.parse(linkedEvent.details) as { reason?: string }).reason, 'verified_email');
    });

    it('an existing account that never proved its address is not linked even to a verified one (pre-account takeover)', async () => {
      // Someone registered the address first, with a password of theirs, and never verified it.
      const squatter = await signUp(t.app);
      const accountId = `owner-of-${squatter.id}`;
      alpha.setAccount(accountId, { email: squatter.email, email_verified: true });
      await assertRefused(await signInWith(alpha, 'alpha', accountId), 'link_required', await sessionCount());
      assert.deepEqual(await identities(squatter.tokens.access_token), [], 'the real owner is not joined to the squatter');
      // Once the address is proven at gatepass (the verification link, or a password reset), the link happens.
      await verifyAddress(squatter.email);
      const tokens = await assertSignedIn(await signInWith(alpha, 'alpha', accountId));
      assert.equal(claimsOf(tokens.access_token).sub, String(squatter.id));
    });

    it('an unverified address of an existing account is refused with link_required, and links nothing', async () => {
      const user = await signUp(t.app);
      const accountId = `unverified-${user.id}`;
      alpha.setAccount(accountId, { email: user.email, email_verified: false });
      await assertRefused(await signInWith(alpha, 'alpha', accountId), 'link_required', await sessionCount());
      assert.deepEqual(await identities(user.tokens.access_token), []);
    });

    it('no email at all is refused with email_missing', async () => {
      const person = freshPerson();
      alpha.setAccount(person.accountId, {});
      await assertRefused(await signInWith(alpha, 'alpha', person.accountId), 'email_missing', await sessionCount());
    });

    it('explicit link: Bearer → authorization_url → provider → callback → listed; another account cannot take it', async () => {
      const user = await signUp(t.app);
      const person = freshPerson();
      // Another address than the account's, unverified: only an explicit link can join them.
      beta.setAccount(person.accountId, { email: person.email, email_verified: false });
      const link = await post(t.app, '/auth/identities/link/beta', { redirect: '/settings?tab=security' }, user.tokens.access_token);
      assert.equal(link.statusCode, 200, link.body);
      assert.deepEqual(Object.keys(link.json()), ['authorization_url']);
      const cookie = setCookie(link, 'gatepass_oauth_flow')?.split(';')[0] ?? '';
      const sessionsBefore = await sessionCount();
      const callback = await beta.signInAtProvider(link.json<{ authorization_url: string }>().authorization_url, person.accountId);
      const linked = await deliver('beta', callback, cookie);
      assert.equal(linked.statusCode, 302, linked.body);
      assert.equal(linked.headers.location, `${PUBLIC_URL}/settings?tab=security&linked=beta`);
      assert.equal(setCookie(linked, 'gatepass_refresh'), undefined, 'a link starts no session');
      assert.equal(await sessionCount(), sessionsBefore);
      const listed = await identities(user.tokens.access_token);
      assert.deepEqual(
        listed.map(({ provider, email, email_verified }) => ({ provider, email, email_verified })),
        [{ provider: 'beta', email: person.email, email_verified: false }],
      );
      // The linked identity now signs the account in.
      const tokens = await assertSignedIn(await signInWith(beta, 'beta', person.accountId));
      assert.equal(claimsOf(tokens.access_token).sub, String(user.id));

      const other = await signUp(t.app);
      const steal = await post(t.app, '/auth/identities/link/beta', {}, other.tokens.access_token);
      const stealCookie = setCookie(steal, 'gatepass_oauth_flow')?.split(';')[0] ?? '';
      const stolen = await beta.signInAtProvider(steal.json<{ authorization_url: string }>().authorization_url, person.accountId);
      await assertRefused(await deliver('beta', stolen, stealCookie), 'identity_in_use', await sessionCount());
      assert.deepEqual(await identities(other.tokens.access_token), []);
      // The export lists the identity, never a token.
      const exported = await get(t.app, '/users/me/export', user.tokens.access_token);
      assert.equal(exported.statusCode, 200, exported.body);
      const external = exported.json<{ external_identities: IdentityBody[] }>().external_identities;
      assert.deepEqual(
        external.map((identity) => identity.provider),
        ['beta'],
      );
      assert.deepEqual(Object.keys(external[0] ?? {}).sort(), IDENTITY_KEYS);
    });

    it('unlink: 404 for another user’s identity, 409 last_sign_in_method for the last way in, 204 otherwise', async () => {
      const federated = await federatedUser();
      const [identity] = await identities(federated.tokens.access_token);
      assert.ok(identity !== undefined);
      const stranger = await signUp(t.app);
      const foreign = await send(t.app, 'DELETE', `/auth/identities/${identity.id}`, undefined, stranger.tokens.access_token);
      assert.equal(foreign.statusCode, 404, foreign.body);
      assert.deepEqual(foreign.json(), { detail: 'Linked identity not found', code: 'not_found' });
      const last = await send(t.app, 'DELETE', `/auth/identities/${identity.id}`, undefined, federated.tokens.access_token);
      assert.equal(last.statusCode, 409, last.body);
      assert.equal(last.json<{ code: string }>().code, 'last_sign_in_method');
      assert.equal((await identities(federated.tokens.access_token)).length, 1);

      // An account with a password too may unlink it.
      const user = await signUp(t.app);
      await verifyAddress(user.email);
      alpha.setAccount(`unlink-${user.id}`, { email: user.email, email_verified: true });
      await assertSignedIn(await signInWith(alpha, 'alpha', `unlink-${user.id}`));
      const [own] = await identities(user.tokens.access_token);
      assert.ok(own !== undefined);
      const unlinked = await send(t.app, 'DELETE', `/auth/identities/${own.id}`, undefined, user.tokens.access_token);
      assert.equal(unlinked.statusCode, 204, unlinked.body);
      assert.deepEqual(await identities(user.tokens.access_token), []);
      const again = await send(t.app, 'DELETE', `/auth/identities/${own.id}`, undefined, user.tokens.access_token);
      assert.equal(again.statusCode, 404, again.body);
    });

    it('two concurrent unlinks cannot remove an account’s last two ways in', async () => {
      const federated = await federatedUser();
      // A second identity, at beta, linked explicitly.
      const person = freshPerson();
      beta.setAccount(person.accountId, { email: person.email, email_verified: true });
      const link = await post(t.app, '/auth/identities/link/beta', {}, federated.tokens.access_token);
      const cookie = setCookie(link, 'gatepass_oauth_flow')?.split(';')[0] ?? '';
      const callback = await beta.signInAtProvider(link.json<{ authorization_url: string }>().authorization_url, person.accountId);
      assert.equal((await deliver('beta', callback, cookie)).statusCode, 302);
      const both = await identities(federated.tokens.access_token);
      assert.equal(both.length, 2);
      const answers = await Promise.all(
        both.map((identity) => send(t.app, 'DELETE', `/auth/identities/${identity.id}`, undefined, federated.tokens.access_token)),
      );
      assert.deepEqual(answers.map((answer) => answer.statusCode).sort(), [204, 409]);
      assert.equal((await identities(federated.tokens.access_token)).length, 1);
    });

    it('TOTP on: the callback hands the page #mfa=<token>, and /auth/mfa/verify completes it with amr ["fed","otp"]', async () => {
      const federated = await federatedUser();
      const { secret } = await enrol(t.app, clock, federated.tokens.access_token);
      const sessionsBefore = await sessionCount();
      const answer = await signInWith(alpha, 'alpha', federated.accountId, '/home');
      assert.equal(answer.statusCode, 302, answer.body);
      assert.equal(setCookie(answer, 'gatepass_refresh'), undefined, 'no session before the second factor');
      assert.equal(await sessionCount(), sessionsBefore);
      const location = new URL(String(answer.headers.location));
      assert.equal(`${location.origin}${location.pathname}${location.search}`, `${PUBLIC_URL}/home`);
      const mfaToken = /^#mfa=([A-Za-z0-9_-]{43})&methods=totp,recovery_code$/.exec(location.hash)?.[1];
      assert.ok(mfaToken !== undefined, `a fragment #mfa=<token>&methods=…: ${location.hash}`);
      const verified = await post(t.app, '/auth/mfa/verify', { mfa_token: mfaToken, code: nextCode(clock, secret) });
      assert.equal(verified.statusCode, 200, verified.body);
      const tokens = verified.json<Tokens>();
      assert.deepEqual(claimsOf(tokens.access_token).amr, ['fed', 'otp']);
      assert.equal(claimsOf(tokens.access_token).sub, String(federated.userId));
    });

    it('TOTP on and a passkey: the fragment lists passkey, and a passkey completes it with amr ["fed","hwk"]', async () => {
      const federated = await federatedUser();
      const authenticator = new SoftAuthenticator(PUBLIC_URL);
      await registerPasskey(t.app, { ...federated, id: federated.userId, password: '' }, authenticator);
      await enrol(t.app, clock, federated.tokens.access_token);
      const answer = await signInWith(alpha, 'alpha', federated.accountId);
      const fragment = new URLSearchParams(new URL(String(answer.headers.location)).hash.slice(1));
      assert.equal(fragment.get('methods'), 'totp,recovery_code,passkey');
      const mfaToken = fragment.get('mfa') ?? '';
      const options = await post(t.app, '/auth/mfa/passkey/options', { mfa_token: mfaToken });
      assert.equal(options.statusCode, 200, options.body);
      const credential = authenticator.get(options.json<RequestOptionsJson>());
      const verified = await post(t.app, '/auth/mfa/passkey/verify', { mfa_token: mfaToken, credential });
      assert.equal(verified.statusCode, 200, verified.body);
      assert.deepEqual(claimsOf(verified.json<Tokens>().access_token).amr, ['fed', 'hwk']);
    });

    it('refuses a wrong state, a missing flow cookie and another browser’s flow cookie', async () => {
      const person = freshPerson();
      alpha.setAccount(person.accountId, { email: person.email, email_verified: true });
      const sessionsBefore = await sessionCount();
      const flow = await start('alpha');
      const callback = await alpha.signInAtProvider(flow.authorizationUrl, person.accountId);

      const wrongState = new URL(callback);
      wrongState.searchParams.set('state', randomBytes(32).toString('base64url'));
      await assertRefused(await deliver('alpha', wrongState, flow.cookie), 'invalid_state', sessionsBefore);
      const noState = new URL(callback);
      noState.searchParams.delete('state');
      await assertRefused(await deliver('alpha', noState, flow.cookie), 'invalid_state', sessionsBefore);
      await assertRefused(await deliver('alpha', callback), 'invalid_state', sessionsBefore);
      assert.equal((await lastFailure())?.reason, 'the flow cookie is missing');
      const otherBrowser = await start('alpha');
      await assertRefused(await deliver('alpha', callback, otherBrowser.cookie), 'invalid_state', sessionsBefore);
      assert.equal((await lastFailure())?.reason, 'the flow was started by another browser');
    });

    it('refuses a code delivered with another flow’s state and cookie: the provider refuses the wrong PKCE verifier', async () => {
      const person = freshPerson();
      alpha.setAccount(person.accountId, { email: person.email, email_verified: true });
      const sessionsBefore = await sessionCount();
      const first = await start('alpha');
      const second = await start('alpha');
      const firstCallback = await alpha.signInAtProvider(first.authorizationUrl, person.accountId);
      const swapped = new URL(firstCallback);
      swapped.searchParams.set('state', new URL(second.authorizationUrl).searchParams.get('state') ?? '');
      await assertRefused(await deliver('alpha', swapped, second.cookie), 'provider_error', sessionsBefore);
      assert.match(String((await lastFailure())?.reason), /refused the request/);
    });

    it('refuses a replayed callback, even one the provider would not have seen again', async () => {
      const person = freshPerson();
      alpha.setAccount(person.accountId, { email: person.email, email_verified: true });
      const flow = await start('alpha');
      const callback = await alpha.signInAtProvider(flow.authorizationUrl, person.accountId);
      await assertSignedIn(await deliver('alpha', callback, flow.cookie));
      await assertRefused(await deliver('alpha', callback, flow.cookie), 'invalid_state', await sessionCount());
      assert.equal((await lastFailure())?.reason, 'the flow was used already');
    });

    it('refuses a flow past its 10 minutes', async () => {
      const person = freshPerson();
      alpha.setAccount(person.accountId, { email: person.email, email_verified: true });
      const flow = await start('alpha');
      const callback = await alpha.signInAtProvider(flow.authorizationUrl, person.accountId);
      clock.advance(10 * 60_000 + 1000);
      await assertRefused(await deliver('alpha', callback, flow.cookie), 'invalid_state', await sessionCount());
      assert.equal((await lastFailure())?.reason, 'the flow has expired');
    });

    for (const [what, reason, change] of [
      [
        'an ID token with a wrong nonce',
        /"nonce" claim value/,
        (claims: Record<string, unknown>) => ({ ...claims, nonce: 'not-the-nonce-of-this-flow' }),
      ],
      [
        'an ID token from another issuer',
        /"iss" \(issuer\) claim value/,
        (claims: Record<string, unknown>) => ({ ...claims, iss: 'http://127.0.0.1:1/impostor' }),
      ],
      [
        'an ID token for another audience',
        /"aud" \(audience\) claim value/,
        (claims: Record<string, unknown>) => ({ ...claims, aud: 'someone-else' }),
      ],
      [
        'an expired ID token',
        /"exp" \(expiration time\) claim value/,
        (claims: Record<string, unknown>) => ({
          ...claims,
          iat: Math.floor(Date.now() / 1000) - 7200,
          exp: Math.floor(Date.now() / 1000) - 3600,
        }),
      ],
    ] as const) {
      it(`refuses ${what} (re-signed with the provider's real key)`, async () => {
        const person = freshPerson();
        alpha.setAccount(person.accountId, { email: person.email, email_verified: true });
        alpha.tamperIdTokens(change);
        try {
          await assertRefused(await signInWith(alpha, 'alpha', person.accountId), 'invalid_callback', await sessionCount());
          // openid-client's own check refused it, for this very claim.
          assert.match(String((await lastFailure())?.reason), reason);
        } finally {
          alpha.tamperIdTokens(undefined);
        }
        // The same person, with an honest token, is welcome.
        await assertSignedIn(await signInWith(alpha, 'alpha', person.accountId));
      });
    }

    it('refuses a mix-up: alpha’s code and state at beta’s callback, and a callback whose RFC 9207 iss names the other provider', async () => {
      const person = freshPerson();
      alpha.setAccount(person.accountId, { email: person.email, email_verified: true });
      beta.setAccount(person.accountId, { email: person.email, email_verified: true });
      const sessionsBefore = await sessionCount();
      const alphaFlow = await start('alpha');
      const alphaCallback = await alpha.signInAtProvider(alphaFlow.authorizationUrl, person.accountId);
      await assertRefused(await deliver('beta', alphaCallback, alphaFlow.cookie), 'invalid_state', sessionsBefore);
      assert.equal((await lastFailure())?.reason, 'the flow was started for the provider alpha');

      const betaFlow = await start('beta');
      const betaCallback = await beta.signInAtProvider(betaFlow.authorizationUrl, person.accountId);
      const wrongIss = new URL(betaCallback);
      wrongIss.searchParams.set('iss', alpha.issuer);
      await assertRefused(await deliver('beta', wrongIss, betaFlow.cookie), 'invalid_callback', sessionsBefore);
      assert.match(String((await lastFailure())?.reason), /unexpected "iss" \(issuer\) response parameter value/);
    });

    it('a provider-sent error (the user aborted) is access_denied', async () => {
      const flow = await start('alpha');
      const callback = await alpha.abortAtProvider(flow.authorizationUrl);
      assert.equal(callback.searchParams.get('error'), 'access_denied');
      await assertRefused(await deliver('alpha', callback, flow.cookie), 'access_denied', await sessionCount());
    });

    it('the redirect never leaves the page origin', async () => {
      const person = freshPerson();
      alpha.setAccount(person.accountId, { email: person.email, email_verified: true });
      for (const redirect of ['//evil.example', 'https://evil.example/x', '/\\evil.example', 'evil', '/ok\u0000', `/${'a'.repeat(600)}`]) {
        await assertSignedIn(await signInWith(alpha, 'alpha', person.accountId, redirect), '/');
      }
      await assertSignedIn(await signInWith(alpha, 'alpha', person.accountId, '/path?x=1'), '/path?x=1');
    });

    it('a deactivated account is refused with account_disabled', async () => {
      const federated = await federatedUser();
      const deactivated = await send(t.app, 'PUT', '/users/me/deactivate', undefined, federated.tokens.access_token);
      assert.equal(deactivated.statusCode, 200, deactivated.body);
      await assertRefused(await signInWith(alpha, 'alpha', federated.accountId), 'account_disabled', await sessionCount());
    });

    it('20 concurrent deliveries of one callback start at most one session', async () => {
      const person = freshPerson();
      alpha.setAccount(person.accountId, { email: person.email, email_verified: true });
      const flow = await start('alpha');
      const callback = await alpha.signInAtProvider(flow.authorizationUrl, person.accountId);
      const sessionsBefore = await sessionCount();
      const answers = await Promise.all(Array.from({ length: 20 }, () => deliver('alpha', callback, flow.cookie)));
      const signedIn = answers.filter((answer) => setCookie(answer, 'gatepass_refresh') !== undefined);
      assert.equal(signedIn.length, 1, answers.map((answer) => answer.headers.location).join('\n'));
      for (const answer of answers.filter((a) => setCookie(a, 'gatepass_refresh') === undefined))
        assert.equal(answer.headers.location, `${PUBLIC_URL}/?error=invalid_state`);
      assert.equal(await sessionCount(), sessionsBefore + 1);
    });

    it('expired flows are swept', async () => {
      await start('alpha');
      clock.advance(2 * 3600_000);
      assert.ok((await t.app.gatepass.retention.sweep()).oauthFlows >= 1);
    });

    it('deleting the account deletes its identities: the provider account then makes a new one', async () => {
      const user = await signUp(t.app);
      await verifyAddress(user.email);
      const accountId = `deleted-${user.id}`;
      alpha.setAccount(accountId, { email: user.email, email_verified: true });
      await assertSignedIn(await signInWith(alpha, 'alpha', accountId));
      const deleted = await send(t.app, 'DELETE', '/users/me', { password: user.password }, user.tokens.access_token);
      assert.equal(deleted.statusCode, 204, deleted.body);
      const rows = await t.app.gatepass.database.db.selectFrom('external_identities').select('id').where('user_id', '=', user.id).execute();
      assert.deepEqual(rows, []);
      const again = await assertSignedIn(await signInWith(alpha, 'alpha', accountId));
      assert.notEqual(claimsOf(again.access_token).sub, String(user.id));
    });

    it('two first sign-ins of one person at once (two tabs) end in one account', async () => {
      const person = freshPerson();
      alpha.setAccount(person.accountId, { email: person.email, email_verified: true });
      const flows = [await start('alpha'), await start('alpha')];
      const callbacks = await Promise.all(flows.map((flow) => alpha.signInAtProvider(flow.authorizationUrl, person.accountId)));
      const answers = await Promise.all(flows.map((flow, index) => deliver('alpha', callbacks[index] ?? '', flow.cookie)));
      const subjects = new Set<unknown>();
      for (const answer of answers) subjects.add(claimsOf((await assertSignedIn(answer)).access_token).sub);
      assert.equal(subjects.size, 1);
      const users = await t.app.gatepass.database.db.selectFrom('users').select('id').where('email', '=', person.email).execute();
      assert.equal(users.length, 1);
    });

    it('the OpenAPI document describes the routes', async () => {
      const paths = (await get(t.app, '/openapi.json')).json<{ paths: Record<string, unknown> }>().paths;
      for (const path of [
        '/auth/oauth/providers',
        '/auth/oauth/{provider}/start',
        '/auth/oauth/{provider}/callback',
        '/auth/identities/link/{provider}',
        '/auth/identities',
        '/auth/identities/{id}',
      ])
        assert.ok(path in paths, `${path} in /openapi.json`);
    });
  });

  describe(`external sign-in behind an HTTPS proxy, with REQUIRE_EMAIL_VERIFICATION and a rate limit (${backend})`, () => {
    const HTTPS_URL = 'https://login.example.test';
    let idp: TestOidcProvider;
    let t: TestApp;
    let clientCounter = 0;

    before(async () => {
      idp = await startOidcProvider({ clients: [{ ...ALPHA, redirectUris: [`${HTTPS_URL}/auth/oauth/alpha/callback`] }] });
      t = await createTestApp(backend, {
        PUBLIC_URL: HTTPS_URL,
        TRUST_PROXY: '1',
        REQUIRE_EMAIL_VERIFICATION: 'true',
        LOGIN_RATE_LIMIT_PER_MINUTE: '4',
        OAUTH_PROVIDERS: 'alpha',
        OAUTH_ALPHA_ISSUER: idp.issuer,
        OAUTH_ALPHA_CLIENT_ID: ALPHA.clientId,
        OAUTH_ALPHA_CLIENT_SECRET: ALPHA.clientSecret,
      });
    });

    after(async () => {
      await t.close();
      await idp.close();
    });

    /** Headers of a browser behind the proxy: HTTPS, and a client address of its own (its own rate-limit budget). */
    function browser(): Record<string, string> {
      clientCounter += 1;
      return { 'x-forwarded-proto': 'https', 'x-forwarded-for': `198.51.100.${clientCounter}` };
    }

    async function signIn(accountId: string, headers: Record<string, string>): Promise<LightMyRequestResponse> {
      const started = await t.app.inject({ method: 'GET', url: '/auth/oauth/alpha/start', headers });
      assert.equal(started.statusCode, 302, started.body);
      const flowCookie = setCookie(started, '__Host-gatepass_oauth_flow');
      assert.ok(flowCookie !== undefined, 'over HTTPS the flow cookie is a __Host- cookie');
      assert.match(flowCookie, /; Max-Age=600; Path=\/; HttpOnly; Secure; SameSite=Lax$/);
      const callback = await idp.signInAtProvider(String(started.headers.location), accountId);
      return t.app.inject({
        method: 'GET',
        url: `/auth/oauth/alpha/callback${callback.search}`,
        headers: { ...headers, cookie: flowCookie.split(';')[0] ?? '' },
      });
    }

    it('over HTTPS the flow and refresh cookies are __Host- cookies, and the page refreshes with the latter', async () => {
      const person = freshPerson();
      idp.setAccount(person.accountId, { email: person.email, email_verified: true });
      const headers = browser();
      const answer = await signIn(person.accountId, headers);
      assert.equal(answer.statusCode, 302, answer.body);
      assert.equal(answer.headers.location, `${HTTPS_URL}/`);
      const refreshCookie = setCookie(answer, '__Host-gatepass_refresh');
      assert.ok(refreshCookie !== undefined, String(answer.headers['set-cookie']));
      assert.match(refreshCookie, /; Path=\/; HttpOnly; Secure; SameSite=Strict$/);
      const refreshed = await t.app.inject({
        method: 'POST',
        url: '/auth/refresh',
        headers: { ...headers, cookie: refreshCookie.split(';')[0] ?? '', 'x-gatepass-cookie': '1' },
      });
      assert.equal(refreshed.statusCode, 200, refreshed.body);
      assert.deepEqual(claimsOf(refreshed.json<Tokens>().access_token).amr, ['fed']);
    });

    it('REQUIRE_EMAIL_VERIFICATION: an account whose address the provider did not verify is refused with email_not_verified', async () => {
      const person = freshPerson();
      idp.setAccount(person.accountId, { email: person.email, email_verified: false });
      const answer = await signIn(person.accountId, browser());
      assert.equal(answer.statusCode, 302, answer.body);
      assert.equal(answer.headers.location, `${HTTPS_URL}/?error=email_not_verified`);
      assert.equal(setCookie(answer, '__Host-gatepass_refresh'), undefined);
    });

    it('start and callback are rate-limited per client, as login is', async () => {
      const headers = browser();
      const answers = [];
      for (let attempt = 0; attempt < 5; attempt += 1)
        answers.push(await t.app.inject({ method: 'GET', url: '/auth/oauth/alpha/start', headers }));
      assert.deepEqual(
        answers.map((answer) => answer.headers.location === `${HTTPS_URL}/?error=rate_limited`),
        [false, false, false, false, true],
      );
      const callback = await t.app.inject({ method: 'GET', url: '/auth/oauth/alpha/callback?state=x&code=y', headers: browser() });
      assert.equal(callback.headers.location, `${HTTPS_URL}/?error=invalid_state`, 'another client has its own budget');
    });
  });
}
