import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { Secret, TOTP } from 'otpauth';
import { GatepassApiError, GatepassClient, type FetchFunction, type OAuthCallbackPage } from '../../src/client/index.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { claimsOf, newCredentials } from '../helpers/client.js';
import { startGitHubStandIn, type GitHubAccount, type GitHubStandIn } from '../helpers/github-stand-in.js';
import { freePort } from '../helpers/instances.js';

/**
 * gatepass/client's external sign-in against a real server and the GitHub stand-in, over HTTP: the
 * providers' list, the start URL, the callback completed in cookie mode (signed in, a TOTP step, an
 * error, a link), and the linked identities. A small cookie jar plays the browser's part: the flow
 * cookie of the start, the refresh cookie of the callback.
 */

/** The cookies a browser would keep for the server, with their Path; enough for gatepass's two cookies. */
class CookieJar {
  private readonly cookies = new Map<string, { value: string; path: string }>();

  /** Node's fetch with this jar, redirects not followed (the test follows them, as the browser's navigation). */
  readonly fetch: FetchFunction = async (input, init) => {
    const url = new URL(input);
    const headers = new Headers(init.headers);
    const sent = [...this.cookies].filter(([, cookie]) => url.pathname.startsWith(cookie.path));
    if (sent.length > 0) headers.set('cookie', sent.map(([name, cookie]) => `${name}=${cookie.value}`).join('; '));
    const response = await fetch(input, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';').map((part) => part.trim());
      const [name = '', value = ''] = pair.split('=');
      const path = attributes.find((attribute) => attribute.toLowerCase().startsWith('path='))?.slice(5) ?? '/';
      const expired = value === '' || attributes.some((attribute) => /^max-age=0$/i.test(attribute) || /^expires=.*1970/i.test(attribute));
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, { value, path });
    }
    return response;
  };

  has(name: string): boolean {
    return this.cookies.has(name);
  }
}

/** The page's address bar, as completeOAuthCallback sees it and rewrites it. */
function pageAt(url: string): OAuthCallbackPage & { replaced: string[] } {
  const replaced: string[] = [];
  return { url, replaceUrl: (next) => replaced.push(next), replaced };
}

function totpCode(secret: string, at: number): string {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp: at });
}

let nextGitHubId = 5000;
function gitHubAccount(email: string, verified = true): GitHubAccount {
  nextGitHubId += 1;
  return { id: nextGitHubId, login: `octo${nextGitHubId}`, name: null, emails: [{ email, primary: true, verified }] };
}

describe('gatepass/client sign-in with an external provider against a real server', () => {
  let t: TestApp;
  let gitHub: GitHubStandIn;
  let baseUrl: string;
  const clients: GatepassClient[] = [];

  before(async () => {
    gitHub = await startGitHubStandIn();
    // PUBLIC_URL is the address the browser uses: every redirect of the flow goes there.
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    t = await createTestApp('sqlite', {
      PUBLIC_URL: baseUrl,
      OAUTH_PROVIDERS: 'github',
      OAUTH_GITHUB_TYPE: 'github',
      OAUTH_GITHUB_CLIENT_ID: gitHub.clientId,
      OAUTH_GITHUB_CLIENT_SECRET: gitHub.clientSecret,
      OAUTH_GITHUB_GITHUB_URL: gitHub.webUrl,
      OAUTH_GITHUB_GITHUB_API_URL: gitHub.apiUrl,
    });
    await t.app.listen({ host: '127.0.0.1', port });
  });
  afterEach(() => {
    for (const client of clients.splice(0)) client.dispose();
  });
  after(async () => {
    await t.close();
    await gitHub.close();
  });

  /** A page's client in cookie mode, with its browser's cookie jar. */
  function newBrowser(): { client: GatepassClient; jar: CookieJar } {
    const jar = new CookieJar();
    const client = new GatepassClient({ baseUrl, mode: 'cookie', fetch: jar.fetch });
    clients.push(client);
    return { client, jar };
  }

  /**
   * The browser's round trip from `authorizationUrl`: the user approves at the stand-in as `account`,
   * the callback answers a redirect to the page; the page address it lands on.
   */
  async function throughGitHub(jar: CookieJar, authorizationUrl: string, account: GitHubAccount): Promise<string> {
    const callback = await jar.fetch(gitHub.authorize(authorizationUrl, account).href, { method: 'GET' });
    assert.equal(callback.status, 302, await callback.text());
    return callback.headers.get('location') ?? '';
  }

  /** From the page's button: the start URL, then GitHub; the page address it lands on. */
  async function signInThroughGitHub(client: GatepassClient, jar: CookieJar, account: GitHubAccount, redirect?: string): Promise<string> {
    const start = await jar.fetch(client.oauthStartUrl('github', redirect === undefined ? {} : { redirect }), { method: 'GET' });
    assert.equal(start.status, 302, await start.text());
    return throughGitHub(jar, start.headers.get('location') ?? '', account);
  }

  it('listProviders() gives the buttons; oauthStartUrl() the start address, refusing a redirect off the site', async () => {
    const { client } = newBrowser();
    assert.deepEqual(await client.listProviders(), [{ id: 'github', name: 'GitHub' }]);
    assert.equal(
      client.oauthStartUrl('github', { redirect: '/account?tab=2' }),
      `${baseUrl}/auth/oauth/github/start?redirect=%2Faccount%3Ftab%3D2`,
    );
    assert.equal(client.oauthStartUrl('git hub'), `${baseUrl}/auth/oauth/git%20hub/start?redirect=%2F`, 'outside a browser: / by default');
    for (const redirect of ['//evil.example/x', 'https://evil.example/', 'account', '/\\evil.example'])
      assert.throws(() => client.oauthStartUrl('github', { redirect }), TypeError, redirect);
  });

  it('completeOAuthCallback() after the provider: signed in by the refresh cookie, amr fed; a reload restores it again', async () => {
    const { client, jar } = newBrowser();
    const email = newCredentials().email;
    const landed = await signInThroughGitHub(client, jar, gitHubAccount(email), '/welcome');
    assert.equal(landed, `${baseUrl}/welcome`);
    assert.ok(jar.has('gatepass_refresh'), 'the callback set the refresh cookie');
    const page = pageAt(landed);
    const result = await client.completeOAuthCallback(page);
    assert.ok(result.status === 'signed_in', JSON.stringify(result));
    assert.equal(result.user.email, email);
    assert.deepEqual(page.replaced, [], 'nothing to remove from the address');
    assert.deepEqual(claimsOf(client.accessToken ?? '').amr, ['fed']);

    // The reload: a new page's client, the same browser.
    const reloaded = new GatepassClient({ baseUrl, mode: 'cookie', fetch: jar.fetch });
    clients.push(reloaded);
    const again = await reloaded.completeOAuthCallback(pageAt(landed));
    assert.equal(again.status === 'signed_in' && again.user.email, email);
    // A page with no session and nothing on its address.
    assert.deepEqual(await newBrowser().client.completeOAuthCallback(pageAt(`${baseUrl}/`)), { status: 'signed_out' });
  });

  it('an account with TOTP on comes back with #mfa=: mfa_required, the fragment removed, verifyMfa signs in with amr fed+otp', async () => {
    const { client, jar } = newBrowser();
    const account = gitHubAccount(newCredentials().email);
    await client.completeOAuthCallback(pageAt(await signInThroughGitHub(client, jar, account)));
    const setup = await client.setupTotp();
    await client.confirmTotp(totpCode(setup.secret, Date.now()));
    await client.logout();

    const landed = await signInThroughGitHub(client, jar, account, '/after?x=1');
    assert.match(landed, /\/after\?x=1#mfa=[^&]+&methods=totp,recovery_code$/);
    const page = pageAt(landed);
    const result = await client.completeOAuthCallback(page);
    assert.equal(result.status, 'mfa_required');
    assert.deepEqual(result.challenge.methods, ['totp', 'recovery_code']);
    assert.deepEqual(page.replaced, ['/after?x=1'], 'the mfa_token leaves the address bar');
    assert.equal(client.isSignedIn, false);
    assert.doesNotMatch(JSON.stringify(result), /mfa=|mfa_token/, 'the token stays inside the client');
    const user = await client.verifyMfa(totpCode(setup.secret, Date.now() + 30_000));
    assert.equal(user.email, account.emails[0]?.email);
    assert.deepEqual(claimsOf(client.accessToken ?? '').amr, ['fed', 'otp']);
  });

  it('?error= is reported with its code and removed from the address; an odd value is not passed on', async () => {
    const { client, jar } = newBrowser();
    const start = await jar.fetch(client.oauthStartUrl('github'), { method: 'GET' });
    const authorizationUrl = new URL(start.headers.get('location') ?? '');
    authorizationUrl.searchParams.set('state', 'not-the-state');
    const landed = await throughGitHub(jar, authorizationUrl.href, gitHubAccount(newCredentials().email));
    const page = pageAt(landed);
    assert.deepEqual(await client.completeOAuthCallback(page), { status: 'error', code: 'invalid_state', user: null });
    assert.deepEqual(page.replaced, ['/']);

    const odd = pageAt(`${baseUrl}/?error=%3Cimg%20src%3Dx%3E&keep=1`);
    assert.deepEqual(await client.completeOAuthCallback(odd), { status: 'error', code: 'unknown_error', user: null });
    assert.deepEqual(odd.replaced, ['/?keep=1']);
  });

  it('linkIdentity() → the provider → ?linked=; listIdentities() shows it; unlink works while a password remains, never for the last way in', async () => {
    const { client, jar } = newBrowser();
    const credentials = newCredentials();
    await client.register(credentials);
    await client.login(credentials);
    const account = gitHubAccount(`other.${credentials.email}`, false);
    const landed = await throughGitHub(jar, await client.linkIdentity('github', { redirect: '/settings' }), account);
    assert.equal(landed, `${baseUrl}/settings?linked=github`);

    // The page reloads there: the session goes on, the address is cleaned.
    const page = pageAt(landed);
    const reloaded = new GatepassClient({ baseUrl, mode: 'cookie', fetch: jar.fetch });
    clients.push(reloaded);
    const result = await reloaded.completeOAuthCallback(page);
    assert.ok(result.status === 'linked', JSON.stringify(result));
    assert.equal(result.provider, 'github');
    assert.equal(result.user?.email, credentials.email);
    assert.deepEqual(page.replaced, ['/settings']);
    const identities = await reloaded.listIdentities();
    assert.deepEqual(
      identities.map(({ provider, email, email_verified }) => ({ provider, email, email_verified })),
      [{ provider: 'github', email: account.emails[0]?.email, email_verified: false }],
    );
    await reloaded.unlinkIdentity(identities[0]?.id ?? 0);
    assert.deepEqual(await reloaded.listIdentities(), []);

    // An account made by GitHub has no password: its identity is its only way in.
    const github = newBrowser();
    await github.client.completeOAuthCallback(
      pageAt(await signInThroughGitHub(github.client, github.jar, gitHubAccount(newCredentials().email))),
    );
    const [only] = await github.client.listIdentities();
    await assert.rejects(github.client.unlinkIdentity(only?.id ?? 0), (error: unknown) => {
      assert.ok(error instanceof GatepassApiError, String(error));
      assert.deepEqual([error.status, error.code], [409, 'last_sign_in_method']);
      return true;
    });
  });
});
