import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { BrowserContext, Page } from 'playwright-core';
import { totpCode } from '../../src/accounts/mfa/totp.js';
import { describeNeeding } from '../helpers/app.js';
import { registerAndLogIn, screenshot, stateOf, TEST_TIMEOUT_MS, useInstanceAndBrowser } from '../helpers/browser.js';
import { claimsOf, newCredentials } from '../helpers/client.js';

/**
 * Issue 16 in Chromium: a passkey added on the page (a virtual authenticator of the DevTools
 * protocol, with a discoverable credential and user verification), a sign-in with it without typing
 * an email, then the passkey deleted on the page and the sign-in refused; and a passkey as the second
 * step of a password login when two-factor sign-in is on.
 *
 * WebAuthn wants a secure context and an RP ID that is a domain: the page is opened at
 * http://localhost:PORT, the origin the instance's relying party is set to.
 */

async function addVirtualAuthenticator(context: BrowserContext, page: Page): Promise<string> {
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return authenticatorId;
}

async function logOut(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Log out', exact: true }).click();
  await stateOf(page, 'signed-out');
}

describeNeeding('passkeys on the web page in Chromium', { chrome: true }, () => {
  const e2e = useInstanceAndBrowser({
    env: (port) => ({
      PUBLIC_URL: `http://localhost:${port}`,
      WEBAUTHN_RP_ID: 'localhost',
      WEBAUTHN_ORIGINS: `http://localhost:${port}`,
    }),
  });

  /** Opens the page at http://localhost:PORT (the relying party's origin) with a virtual authenticator, signed out. */
  async function openWithAuthenticator(context: BrowserContext, page: Page): Promise<void> {
    await addVirtualAuthenticator(context, page);
    await page.goto(`${e2e.instance.url.replace('127.0.0.1', 'localhost')}/`);
    await stateOf(page, 'signed-out');
  }

  it(
    'adds a passkey, signs in with it without an email (amr hwk/swk), deletes it, and the next passkey sign-in fails',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { context, page, problems } = await e2e.newPage();
      try {
        await openWithAuthenticator(context, page);
        const credentials = newCredentials();
        assert.equal(await page.locator('#passkey-login').isEnabled(), true, 'Chromium supports WebAuthn here');
        await registerAndLogIn(page, credentials);

        // No passkey yet; then one added under a name.
        await page.locator('#passkeys-empty').filter({ hasText: 'No passkeys yet.' }).waitFor();
        await page.locator('#passkey-name').fill('Virtual key');
        await page.getByRole('button', { name: 'Add a passkey' }).click();
        await page.getByRole('status').filter({ hasText: 'Passkey "Virtual key" added.' }).waitFor();
        const item = page.locator('#passkey-list li');
        await item.first().waitFor();
        assert.equal(await item.count(), 1);
        assert.match(await item.first().innerText(), /Virtual key/);
        assert.match(await item.first().innerText(), /not used yet/);
        assert.equal(await page.locator('#passkeys-empty').isVisible(), false);
        await screenshot(page, 'passkeys-1-added');

        // Renamed in place.
        await page.getByLabel('Name of passkey Virtual key').fill('Laptop');
        await page.locator('#passkey-list').getByRole('button', { name: 'Rename' }).click();
        await page.getByRole('status').filter({ hasText: 'Passkey renamed to "Laptop".' }).waitFor();
        await page.locator('#passkey-list li strong').filter({ hasText: 'Laptop' }).waitFor();

        await logOut(page);
        // Sign-in with the passkey: no email, no password typed.
        // The login form kept the address of the password login: emptied, so that nothing is typed.
        await page.locator('#login-email').fill('');
        await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
        await stateOf(page, 'signed-in');
        await page
          .getByRole('status')
          .filter({ hasText: `Logged in as ${credentials.email}` })
          .waitFor();
        assert.equal((await page.locator('#who').innerText()).split(' · ')[0], credentials.email);
        const amr = claimsOf(await page.locator('#token-raw').innerText()).amr;
        assert.ok(
          JSON.stringify(amr) === '["hwk"]' || JSON.stringify(amr) === '["swk"]',
          `a passkey sign-in's amr: ${JSON.stringify(amr)}`,
        );
        // Signed in by cookie mode as a login is: the session survives a reload.
        await page.reload();
        await stateOf(page, 'signed-in');
        await page.locator('#passkey-list li').filter({ hasText: 'last used' }).waitFor();
        await screenshot(page, 'passkeys-2-signed-in-with-passkey');

        // Deleted on the page: the list empties, and the authenticator's credential signs in no more.
        await page.getByRole('button', { name: 'Delete passkey Laptop' }).click();
        await page.getByRole('status').filter({ hasText: 'Passkey "Laptop" deleted.' }).waitFor();
        await page.locator('#passkeys-empty').filter({ hasText: 'No passkeys yet.' }).waitFor();
        assert.equal(await page.locator('#passkey-list li').count(), 0);
        await logOut(page);

        await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
        await page.getByRole('alert').filter({ hasText: 'Passkey sign-in failed' }).filter({ hasText: 'invalid_credential' }).waitFor();
        assert.equal(await page.locator('body').getAttribute('data-state'), 'signed-out');
        await screenshot(page, 'passkeys-3-deleted-refused');
        // Chromium logs the refused verification (401) as a failed resource; nothing else may go wrong.
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
    },
  );

  it(
    'with two-factor sign-in on, the code prompt offers the passkey instead: signed in with amr ["pwd","hwk"|"swk"]',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { context, page, problems } = await e2e.newPage();
      try {
        await openWithAuthenticator(context, page);
        const credentials = newCredentials();
        await registerAndLogIn(page, credentials);
        await page.getByRole('button', { name: 'Add a passkey' }).click();
        await page.locator('#passkey-list li').first().waitFor();

        // TOTP on, through the page's own enrolment.
        await page.getByRole('button', { name: 'Set up two-factor sign-in' }).click();
        await page.locator('body[data-two-factor="enrolling"]').waitFor();
        const secret = (await page.locator('#totp-secret').innerText()).trim();
        await page.getByLabel('Code from the app').fill(totpCode(secret, Date.now()));
        await page.getByRole('button', { name: 'Turn on' }).click();
        await page.locator('body[data-two-factor="codes"]').waitFor();
        await page.getByRole('button', { name: 'I have saved them' }).click();
        await logOut(page);

        await page.locator('#login-email').fill(credentials.email);
        await page.locator('#login-password').fill(credentials.password);
        await page.getByRole('button', { name: 'Log in', exact: true }).click();
        const usePasskey = page.getByRole('button', { name: 'Use a passkey instead' });
        await usePasskey.waitFor();
        await screenshot(page, 'passkeys-4-second-step-offered');
        await usePasskey.click();
        await stateOf(page, 'signed-in');
        const amr = JSON.stringify(claimsOf(await page.locator('#token-raw').innerText()).amr);
        assert.ok(amr === '["pwd","hwk"]' || amr === '["pwd","swk"]', `a password and passkey sign-in's amr: ${amr}`);
        await page.reload();
        await stateOf(page, 'signed-in');
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
    },
  );
});
