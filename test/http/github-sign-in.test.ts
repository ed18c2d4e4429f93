import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import type { GatepassApp } from '../../src/http/app.js';
import { createTestApp, describePostgres, type Backend, type TestApp } from '../helpers/app.js';
import { claimsOf, get, newCredentials, register, type UserBody } from '../helpers/client.js';
import { startGitHubStandIn, type GitHubAccount, type GitHubStandIn } from '../helpers/github-stand-in.js';

/**
 * Sign-in with GitHub (issue 17) over HTTP, against a local stand-in of GitHub's OAuth and REST
 * endpoints (test/helpers/github-stand-in.ts) that checks the client, the single-use code, the
 * redirect_uri and the PKCE verifier as GitHub does, and refuses as GitHub does (a 200 with `error`).
 * Every failure must end as a redirect to the page with `?error=<code>`, never a 500.
 */

const PUBLIC_URL = 'http://localhost:8000';
const PROVIDER = 'github';
const FLOW_COOKIE = 'gatepass_oauth_flow';
const REFRESH_COOKIE = 'gatepass_refresh';

/** `/users/me` with the flag external sign-in sets from the provider's assertion. */
type Me = UserBody & { email_verified: boolean };

let nextGitHubId = 1000;
/** A GitHub account with a fresh numeric id; `emails` as the test needs them. */
function gitHubAccount(emails: GitHubAccount['emails'], login = `octo${nextGitHubId}`): GitHubAccount {
  nextGitHubId += 1;
  return { id: nextGitHubId, login, name: `Octo ${nextGitHubId}`, emails };
}

/** The value of the cookie `name` that a response sets, or undefined. */
function cookieSet(response: LightMyRequestResponse, name: string): string | undefined {
  return response.cookies.find((cookie) => cookie.name === name && cookie.value !== '')?.value;
}

function locationOf(response: LightMyRequestResponse): URL {
  assert.equal(response.statusCode, 302, `expected a redirect, got ${response.statusCode} ${response.body}`);
  return new URL(String(response.headers.location));
}

/** A browser's flow: the start redirect, with the flow cookie it set. */
interface StartedFlow {
  authorizationUrl: URL;
  flowCookie: string;
}

async function start(app: GatepassApp, redirect = '/account'): Promise<StartedFlow> {
  const response = await app.inject({ method: 'GET', url: `/auth/oauth/${PROVIDER}/start?redirect=${encodeURIComponent(redirect)}` });
  const authorizationUrl = locationOf(response);
  const flowCookie = cookieSet(response, FLOW_COOKIE);
  assert.ok(flowCookie !== undefined, 'the start sets the flow cookie');
  return { authorizationUrl, flowCookie };
}

/** The provider's redirect back to gatepass, as the browser of `flow` follows it. */
function callback(app: GatepassApp, callbackUrl: URL, flowCookie: string): Promise<LightMyRequestResponse> {
  assert.equal(callbackUrl.origin + callbackUrl.pathname, `${PUBLIC_URL}/auth/oauth/${PROVIDER}/callback`);
  return app.inject({ method: 'GET', url: callbackUrl.pathname + callbackUrl.search, headers: { cookie: `${FLOW_COOKIE}=${flowCookie}` } });
}

/** The refresh of cookie mode that the page makes after landing: the access token of the new session. */
async function accessTokenFromCookie(app: GatepassApp, refreshCookie: string): Promise<string> {
  const response = await app.inject({
    method: 'POST',
    url: '/auth/refresh',
    headers: { 'x-gatepass-cookie': '1', cookie: `${REFRESH_COOKIE}=${refreshCookie}` },
  });
  assert.equal(response.statusCode, 200, response.body);
  return response.json<{ access_token: string }>().access_token;
}

function defineSuite(backend: Backend): void {
  let t: TestApp;
  let gitHub: GitHubStandIn;

  before(async () => {
    gitHub = await startGitHubStandIn();
    t = await createTestApp(backend, {
      PUBLIC_URL,
      OAUTH_PROVIDERS: PROVIDER,
      OAUTH_GITHUB_TYPE: 'github',
      OAUTH_GITHUB_CLIENT_ID: gitHub.clientId,
      OAUTH_GITHUB_CLIENT_SECRET: gitHub.clientSecret,
      OAUTH_GITHUB_GITHUB_URL: gitHub.webUrl,
      OAUTH_GITHUB_GITHUB_API_URL: gitHub.apiUrl,
    });
  });
  after(async () => {
    await t.close();
    await gitHub.close();
  });

  /** A whole sign-in as `account`: the page address it lands on, and the signed-in user when it did. */
  async function signIn(account: GitHubAccount, redirect = '/account'): Promise<{ landed: URL; user?: Me; accessToken?: string }> {
    const flow = await start(t.app, redirect);
    const response = await callback(t.app, gitHub.authorize(flow.authorizationUrl, account), flow.flowCookie);
    const landed = locationOf(response);
    const refreshCookie = cookieSet(response, REFRESH_COOKIE);
    if (refreshCookie === undefined) return { landed };
    const accessToken = await accessTokenFromCookie(t.app, refreshCookie);
    const me = await get(t.app, '/users/me', accessToken);
    assert.equal(me.statusCode, 200, me.body);
    return { landed, user: me.json<Me>(), accessToken };
  }

  /** The page address of a refusal: `PUBLIC_URL/?error=<code>`, with no session. */
  function assertRefused(response: LightMyRequestResponse, code: string): void {
    const landed = locationOf(response);
    assert.equal(landed.origin + landed.pathname, `${PUBLIC_URL}/`);
    assert.equal(landed.searchParams.get('error'), code, landed.href);
    assert.equal(cookieSet(response, REFRESH_COOKIE), undefined, 'no session after a refusal');
  }

  it('lists GitHub among the providers, and its start asks GitHub for the code with PKCE S256, state and the callback', async () => {
    assert.deepEqual((await get(t.app, '/auth/oauth/providers')).json(), [{ id: PROVIDER, name: 'GitHub' }]);
    const { authorizationUrl } = await start(t.app);
    assert.equal(authorizationUrl.origin + authorizationUrl.pathname, `${gitHub.webUrl}/login/oauth/authorize`);
    const query = authorizationUrl.searchParams;
    assert.equal(query.get('client_id'), gitHub.clientId);
    assert.equal(query.get('redirect_uri'), `${PUBLIC_URL}/auth/oauth/${PROVIDER}/callback`);
    assert.equal(query.get('code_challenge_method'), 'S256');
    assert.match(query.get('code_challenge') ?? '', /^[\w-]{43}$/);
    assert.match(query.get('state') ?? '', /^[\w-]{20,}$/);
    assert.equal(query.get('scope'), 'read:user user:email');
    assert.equal(query.get('nonce'), null, 'GitHub is not OpenID Connect');
  });

  it('a first sign-in creates a student account with the primary verified address, amr ["fed"], and lands on the redirect', async () => {
    const account = gitHubAccount([
      { email: `secondary.${nextGitHubId}@example.com`, primary: false, verified: true },
      { email: `primary.${nextGitHubId}@example.com`, primary: true, verified: true },
    ]);
    const { landed, user, accessToken } = await signIn(account);
    assert.equal(landed.href, `${PUBLIC_URL}/account`);
    assert.ok(user !== undefined && accessToken !== undefined);
    assert.equal(user.email, account.emails[1]?.email);
    assert.equal(user.email_verified, true);
    assert.equal(user.role, 'student');
    assert.deepEqual(claimsOf(accessToken).amr, ['fed']);
    const identities = await get(t.app, '/auth/identities', accessToken);
    assert.equal(identities.statusCode, 200, identities.body);
    assert.deepEqual(
      identities.json<{ provider: string; email: string; email_verified: boolean }[]>().map(({ provider, email, email_verified }) => ({
        provider,
        email,
        email_verified,
      })),
      [{ provider: PROVIDER, email: account.emails[1]?.email, email_verified: true }],
    );
  });

  it('a returning sign-in finds the account by GitHub’s numeric id, even after the login was renamed', async () => {
    const account = gitHubAccount([{ email: `returning.${nextGitHubId}@example.com`, primary: true, verified: true }]);
    const first = await signIn(account);
    const renamed = { ...account, login: `renamed-${account.login}` };
    const again = await signIn(renamed);
    assert.ok(first.user !== undefined && again.user !== undefined);
    assert.equal(again.user.id, first.user.id);
    // Someone who takes the old login later is another GitHub id: another account.
    const usurper = gitHubAccount([{ email: `usurper.${nextGitHubId}@example.com`, primary: true, verified: true }], account.login);
    const other = await signIn(usurper);
    assert.ok(other.user !== undefined);
    assert.notEqual(other.user.id, first.user.id);
  });

  it('falls back to another verified address when the primary one is not verified', async () => {
    const account = gitHubAccount([
      { email: `unverified-primary.${nextGitHubId}@example.com`, primary: true, verified: false },
      { email: `verified-other.${nextGitHubId}@example.com`, primary: false, verified: true },
    ]);
    const { user } = await signIn(account);
    assert.equal(user?.email, account.emails[1]?.email);
    assert.equal(user?.email_verified, true);
  });

  it('a GitHub account whose only address is unverified gets an unverified account', async () => {
    const account = gitHubAccount([{ email: `only-unverified.${nextGitHubId}@example.com`, primary: true, verified: false }]);
    const { user } = await signIn(account);
    assert.ok(user !== undefined, 'signed in');
    assert.equal(user.email, account.emails[0]?.email);
    assert.equal(user.email_verified, false);
  });

  it('a GitHub account with no address at all is refused (email_missing)', async () => {
    const flow = await start(t.app);
    assertRefused(await callback(t.app, gitHub.authorize(flow.authorizationUrl, gitHubAccount([])), flow.flowCookie), 'email_missing');
  });

  it('an unverified address that belongs to an existing account is refused with link_required, and the account is left alone', async () => {
    const owner = await register(t.app, newCredentials());
    const account = gitHubAccount([{ email: owner.email, primary: true, verified: false }]);
    const flow = await start(t.app);
    assertRefused(await callback(t.app, gitHub.authorize(flow.authorizationUrl, account), flow.flowCookie), 'link_required');
    // The password still signs the owner in, and no identity was linked to them.
    const login = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: owner.email, password: owner.password } });
    assert.equal(login.statusCode, 200, login.body);
    const identities = await get(t.app, '/auth/identities', login.json<{ access_token: string }>().access_token);
    assert.deepEqual(identities.json(), []);
  });

  it('a replayed callback is refused (invalid_state) without its code going to GitHub again', async () => {
    const account = gitHubAccount([{ email: `replay.${nextGitHubId}@example.com`, primary: true, verified: true }]);
    const flow = await start(t.app);
    const callbackUrl = gitHub.authorize(flow.authorizationUrl, account);
    assert.ok(cookieSet(await callback(t.app, callbackUrl, flow.flowCookie), REFRESH_COOKIE) !== undefined, 'the first delivery signs in');
    const redeemed = gitHub.redeemedCodes;
    assertRefused(await callback(t.app, callbackUrl, flow.flowCookie), 'invalid_state');
    assert.equal(gitHub.redeemedCodes, redeemed);
  });

  it('a code that GitHub already redeemed, delivered with a live flow, is refused by GitHub (provider_error)', async () => {
    const account = gitHubAccount([{ email: `spent.${nextGitHubId}@example.com`, primary: true, verified: true }]);
    const first = await start(t.app);
    const spent = gitHub.authorize(first.authorizationUrl, account);
    await callback(t.app, spent, first.flowCookie);
    // A second flow in the same browser, answered with the first flow's (spent) code.
    const second = await start(t.app);
    const replayed = new URL(spent);
    replayed.searchParams.set('state', second.authorizationUrl.searchParams.get('state') ?? '');
    assertRefused(await callback(t.app, replayed, second.flowCookie), 'provider_error');
  });

  it('a wrong state is refused (invalid_state), and so is a callback without the flow cookie', async () => {
    const account = gitHubAccount([{ email: `state.${nextGitHubId}@example.com`, primary: true, verified: true }]);
    const flow = await start(t.app);
    const answer = gitHub.authorize(flow.authorizationUrl, account);
    const forged = new URL(answer);
    forged.searchParams.set('state', `${answer.searchParams.get('state') ?? ''}x`);
    assertRefused(await callback(t.app, forged, flow.flowCookie), 'invalid_state');
    // Another browser (no flow cookie, or another one) delivering the genuine answer.
    const other = await start(t.app);
    assertRefused(await callback(t.app, answer, other.flowCookie), 'invalid_state');
  });

  it('a code obtained with another PKCE challenge (code injection) is refused by GitHub (provider_error)', async () => {
    const attacker = gitHubAccount([{ email: `attacker.${nextGitHubId}@example.com`, primary: true, verified: true }]);
    // The attacker's own flow gives a code bound to the attacker's challenge...
    const attackerFlow = await start(t.app);
    const stolenCode = gitHub.authorize(attackerFlow.authorizationUrl, attacker).searchParams.get('code') ?? '';
    // ...injected into the victim's callback, with the victim's state and flow cookie.
    const victimFlow = await start(t.app);
    const injected = new URL(`${PUBLIC_URL}/auth/oauth/${PROVIDER}/callback`);
    injected.searchParams.set('code', stolenCode);
    injected.searchParams.set('state', victimFlow.authorizationUrl.searchParams.get('state') ?? '');
    const redeemed = gitHub.redeemedCodes;
    assertRefused(await callback(t.app, injected, victimFlow.flowCookie), 'provider_error');
    assert.equal(gitHub.redeemedCodes, redeemed, 'GitHub refused the verifier');
  });

  it('GitHub refusing the client (a rotated secret: 200 with error) ends as provider_error', async () => {
    const account = gitHubAccount([{ email: `secret.${nextGitHubId}@example.com`, primary: true, verified: true }]);
    const genuine = gitHub.clientSecret;
    gitHub.clientSecret = 'rotated-at-github';
    try {
      const flow = await start(t.app);
      assertRefused(await callback(t.app, gitHub.authorize(flow.authorizationUrl, account), flow.flowCookie), 'provider_error');
    } finally {
      gitHub.clientSecret = genuine;
    }
  });

  it('a malformed or oversized /user answer ends as provider_error, never a 500', async () => {
    for (const userAnswer of [
      '<html>rate limited</html>',
      '{"login":"no-id"}',
      '{"id":"12","login":"string-id"}',
      '[]',
      '{"id":-1,"login":"x"}',
      // Well formed, but far past what a profile can be: not read to the end.
      JSON.stringify({ id: 7, login: 'huge', bio: 'x'.repeat(1024 * 1024) }),
    ]) {
      const account = { ...gitHubAccount([{ email: `odd.${nextGitHubId}@example.com`, primary: true, verified: true }]), userAnswer };
      const flow = await start(t.app);
      assertRefused(await callback(t.app, gitHub.authorize(flow.authorizationUrl, account), flow.flowCookie), 'provider_error');
    }
  });

  it('the user saying no at GitHub (error=access_denied) ends as access_denied', async () => {
    const flow = await start(t.app);
    const denied = new URL(`${PUBLIC_URL}/auth/oauth/${PROVIDER}/callback`);
    denied.searchParams.set('error', 'access_denied');
    denied.searchParams.set('error_description', 'The user has denied your application access.');
    denied.searchParams.set('state', flow.authorizationUrl.searchParams.get('state') ?? '');
    assertRefused(await callback(t.app, denied, flow.flowCookie), 'access_denied');
  });
}

describe('sign-in with GitHub over HTTP (sqlite)', () => defineSuite('sqlite'));
describePostgres('sign-in with GitHub over HTTP', () => defineSuite('postgres'));
