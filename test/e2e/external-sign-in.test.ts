import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import { Secret, TOTP } from 'otpauth';
import type { Page } from 'playwright-core';
import { describeNeeding } from '../helpers/app.js';
import { registerAndLogIn, screenshot, stateOf, TEST_TIMEOUT_MS, useInstanceAndBrowser } from '../helpers/browser.js';
import { claimsOf, newCredentials } from '../helpers/client.js';
import { startGitHubStandIn, type GitHubAccount, type GitHubStandIn } from '../helpers/github-stand-in.js';
import { startOidcProvider, type TestOidcProvider } from '../helpers/oidc-provider.js';

/**
 * Issue 17 in Chromium: the page's "Sign in with <name>" button, the provider's pages, and the way back
 * to the page signed in by cookie mode (a reload keeps the session); a refusal shown as a readable
 * message; an explicit link from the signed-in view. The page is opened at PUBLIC_URL
 * (http://localhost:PORT), where every redirect of the flow ends.
 */

async function logOut(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Log out', exact: true }).click();
  await stateOf(page, 'signed-out');
}

const STEP_MS = 30_000;

function totpCode(secret: string, at: number): string {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp: at });
}

let nextGitHubId = 9000;
function gitHubAccount(email: string, verified: boolean): GitHubAccount {
  nextGitHubId += 1;
  return { id: nextGitHubId, login: `octo${nextGitHubId}`, name: 'Octo Cat', emails: [{ email, primary: true, verified }] };
}

const OIDC_CLIENT = { clientId: 'gatepass-e2e', clientSecret: 'e2e-client-secret-of-the-local-provider' };

describeNeeding('external sign-in on the web page in Chromium', { chrome: true }, () => {
  let gitHub: GitHubStandIn | undefined;
  let idp: TestOidcProvider | undefined;
  const e2e = useInstanceAndBrowser({
    env: async (port) => {
      gitHub = await startGitHubStandIn();
      // The provider registers the callback at PUBLIC_URL, which needs the instance's port.
      idp = await startOidcProvider({ clients: [{ ...OIDC_CLIENT, redirectUris: [`http://localhost:${port}/auth/oauth/acme/callback`] }] });
      return {
        PUBLIC_URL: `http://localhost:${port}`,
        OAUTH_PROVIDERS: 'acme,github',
        OAUTH_ACME_ISSUER: idp.issuer,
        OAUTH_ACME_NAME: 'Acme ID',
        OAUTH_ACME_CLIENT_ID: OIDC_CLIENT.clientId,
        OAUTH_ACME_CLIENT_SECRET: OIDC_CLIENT.clientSecret,
        OAUTH_GITHUB_TYPE: 'github',
        OAUTH_GITHUB_CLIENT_ID: gitHub.clientId,
        OAUTH_GITHUB_CLIENT_SECRET: gitHub.clientSecret,
        OAUTH_GITHUB_GITHUB_URL: gitHub.webUrl,
        OAUTH_GITHUB_GITHUB_API_URL: gitHub.apiUrl,
      };
    },
  });
  after(async () => {
    await gitHub?.close();
    await idp?.close();
  });

  /** The stand-in, once the instance (and so the stand-in) is started. */
  function standIn(): GitHubStandIn {
    assert.ok(gitHub !== undefined, 'the stand-in is started with the instance');
    return gitHub;
  }

  const origin = () => e2e.instance.url.replace('127.0.0.1', 'localhost');

  it(
    'OpenID Connect: the button, the provider’s login form and consent, back on the page signed in (amr fed); a reload keeps the session',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      assert.ok(idp !== undefined, 'the provider is started with the instance');
      const { page, problems, context } = await e2e.newPage();
      try {
        const email = newCredentials().email;
        idp.setAccount('erin', { email, email_verified: true, name: 'Erin Example' });
        await page.goto(`${origin()}/`);
        await stateOf(page, 'signed-out');
        await page.getByRole('button', { name: 'Sign in with Acme ID' }).click();
        // The provider's own pages (oidc-provider's devInteractions): login, then consent.
        await page.waitForURL((url) => url.href.startsWith(`${idp?.issuer ?? ''}/interaction/`));
        await page.locator('input[name="login"]').fill('erin');
        await page.locator('input[name="password"]').fill('any password');
        await screenshot(page, 'external-0-provider-login');
        await page.locator('button[type="submit"]').click();
        await page.getByRole('button', { name: 'Continue' }).click();

        await stateOf(page, 'signed-in');
        assert.equal((await page.locator('#who').innerText()).split(' · ')[0], email);
        assert.equal(page.url(), `${origin()}/`);
        assert.deepEqual(claimsOf(await page.locator('#token-raw').innerText()).amr, ['fed']);
        await page.locator('#identity-list li').filter({ hasText: 'Acme ID' }).filter({ hasText: email }).waitFor();
        await screenshot(page, 'external-1-oidc-signed-in');

        await page.reload();
        await stateOf(page, 'signed-in');
        assert.equal((await page.locator('#who').innerText()).split(' · ')[0], email);
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
    },
  );

  it(
    'GitHub: the button leads through GitHub back to the page signed in (amr fed), a reload keeps the session, the last way in cannot be unlinked',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { page, problems, context } = await e2e.newPage();
      try {
        const email = newCredentials().email;
        // The browser is signed in at GitHub and approved the app before: GitHub sends it straight back.
        standIn().browserAccount = gitHubAccount(email, true);
        await page.goto(`${origin()}/`);
        await stateOf(page, 'signed-out');
        await page.getByRole('button', { name: 'Sign in with GitHub' }).click();
        await stateOf(page, 'signed-in');
        assert.equal((await page.locator('#who').innerText()).split(' · ')[0], email);
        assert.equal(page.url(), `${origin()}/`, 'back on the page it started from, nothing left on the address');
        assert.deepEqual(claimsOf(await page.locator('#token-raw').innerText()).amr, ['fed']);
        const linked = page.locator('#identity-list li');
        await linked.filter({ hasText: 'GitHub' }).filter({ hasText: email }).waitFor();
        await screenshot(page, 'external-2-github-signed-in');

        await page.reload();
        await stateOf(page, 'signed-in');
        assert.equal((await page.locator('#who').innerText()).split(' · ')[0], email);

        // An account made by GitHub has no password: GitHub is its only way in.
        await page.getByRole('button', { name: 'Unlink GitHub' }).click();
        await page.getByRole('alert').filter({ hasText: 'Could not unlink GitHub' }).filter({ hasText: '409' }).waitFor();
        assert.equal(await linked.count(), 1);
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
    },
  );

  it(
    'a refusal (link_required) is shown as a message; signed in with the password, "Link GitHub" links it, and it can be unlinked',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { page, problems, context } = await e2e.newPage();
      try {
        const credentials = newCredentials();
        await page.goto(`${origin()}/`);
        await stateOf(page, 'signed-out');
        await registerAndLogIn(page, credentials);
        await logOut(page);

        // A GitHub account claiming the same address, which GitHub has not verified: no automatic link.
        standIn().browserAccount = gitHubAccount(credentials.email, false);
        await page.getByRole('button', { name: 'Sign in with GitHub' }).click();
        await page.getByRole('alert').filter({ hasText: 'already exists' }).waitFor();
        assert.equal(await page.locator('body').getAttribute('data-state'), 'signed-out');
        assert.equal(page.url(), `${origin()}/`, 'the ?error= is removed from the address bar');
        await screenshot(page, 'external-3-link-required');

        // The owner signs in with the password and links GitHub on purpose.
        const login = page.locator('#login-form');
        await login.getByLabel('Email').fill(credentials.email);
        await login.getByLabel('Password').fill(credentials.password);
        await login.getByLabel('Password').press('Enter');
        await stateOf(page, 'signed-in');
        await page.locator('#identities-empty').filter({ hasText: 'No linked accounts yet.' }).waitFor();
        await page.getByRole('button', { name: 'Link GitHub' }).click();
        await page.getByRole('status').filter({ hasText: 'GitHub linked' }).waitFor();
        await stateOf(page, 'signed-in');
        assert.equal(page.url(), `${origin()}/`, 'the ?linked= is removed from the address bar');
        await page.locator('#identity-list li').filter({ hasText: 'GitHub' }).waitFor();
        await screenshot(page, 'external-4-linked');

        // The password remains: unlinking is allowed.
        await page.getByRole('button', { name: 'Unlink GitHub' }).click();
        await page.getByRole('status').filter({ hasText: 'GitHub unlinked' }).waitFor();
        await page.locator('#identities-empty').filter({ hasText: 'No linked accounts yet.' }).waitFor();
        assert.equal(await page.locator('#identity-list li').count(), 0);
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
    },
  );
  it(
    'TOTP still applies: with two-factor sign-in on, GitHub brings the page to the code prompt (#mfa= removed), and the code signs in with amr fed+otp',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { page, problems, context } = await e2e.newPage();
      try {
        const email = newCredentials().email;
        standIn().browserAccount = gitHubAccount(email, true);
        await page.goto(`${origin()}/`);
        await stateOf(page, 'signed-out');
        await page.getByRole('button', { name: 'Sign in with GitHub' }).click();
        await stateOf(page, 'signed-in');

        // Two-factor sign-in turned on from the page, by an account that has no password.
        await page.getByRole('button', { name: 'Set up two-factor sign-in' }).click();
        await page.locator('body[data-two-factor="enrolling"]').waitFor();
        const secret = (await page.locator('#totp-secret').innerText()).trim();
        const confirmedAt = Date.now();
        await page.getByLabel('Code from the app').fill(totpCode(secret, confirmedAt));
        await page.getByRole('button', { name: 'Turn on' }).click();
        await page.locator('body[data-two-factor="codes"]').waitFor();
        await page.getByRole('button', { name: 'I have saved them' }).click();
        await page.locator('body[data-two-factor="on"]').waitFor();
        await logOut(page);

        await page.getByRole('button', { name: 'Sign in with GitHub' }).click();
        await page.locator('#mfa-form').waitFor();
        await page.getByRole('status').filter({ hasText: 'Signed in at the provider' }).waitFor();
        assert.equal(await page.locator('body').getAttribute('data-state'), 'signed-out', 'nobody is signed in before the code');
        assert.equal(page.url(), `${origin()}/`, 'the mfa_token is removed from the address bar');
        await screenshot(page, 'external-5-code-prompt');
        // The confirmation spent the step of its code: the next step's, within the server's window.
        await page.locator('#mfa-code').fill(totpCode(secret, Math.max(Date.now(), confirmedAt + STEP_MS)));
        await page.getByRole('button', { name: 'Verify' }).click();
        await stateOf(page, 'signed-in');
        assert.equal((await page.locator('#who').innerText()).split(' · ')[0], email);
        assert.deepEqual(claimsOf(await page.locator('#token-raw').innerText()).amr, ['fed', 'otp']);
        await page.reload();
        await stateOf(page, 'signed-in');
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
    },
  );
});
