import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { Secret, TOTP } from 'otpauth';
import type { Page } from 'playwright-core';
import { describeNeeding } from '../helpers/app.js';
import { registerAndLogIn, screenshot, stateOf, TEST_TIMEOUT_MS, useInstanceAndBrowser } from '../helpers/browser.js';
import { claimsOf, newCredentials } from '../helpers/client.js';
import { waitForValue } from '../helpers/instances.js';
import { MAIL_WAIT_MS } from '../helpers/outbox.js';

/**
 * Issue 15 in Chromium: TOTP enrolment on the page (the test reads the key from the page and computes
 * the codes itself), the code prompt at login with a TOTP code and with a recovery code; and the link
 * of a verification email, opened in the browser.
 */

const STEP_MS = 30_000;

/** RFC 6238 as authenticator apps compute it (SHA-1, 6 digits, 30 s), for the moment `at`. */
function totpCode(secret: string, at: number): string {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp: at });
}

/** The links (`…/#verify-email=<TOKEN>`) of the verification mails to `email`, oldest first, with their `token=` lines. */
function verificationMails(outboxDir: string, email: string): { link: string; token: string }[] {
  let files: string[];
  try {
    files = readdirSync(outboxDir).sort();
  } catch {
    return [];
  }
  return files.flatMap((file) => {
    const text = readFileSync(path.join(outboxDir, file), 'utf8');
    if (/^To: (.*)$/m.exec(text)?.[1]?.trim() !== email) return [];
    const link = /(\S+\/#verify-email=\S+)/.exec(text)?.[1];
    const token = /^token=(\S+)$/m.exec(text)?.[1];
    return link === undefined || token === undefined ? [] : [{ link, token }];
  });
}

async function logIn(page: Page, credentials: { email: string; password: string }): Promise<void> {
  const login = page.locator('#login-form');
  await login.getByLabel('Email').fill(credentials.email);
  await login.getByLabel('Password').fill(credentials.password);
  await login.getByLabel('Password').press('Enter');
}

async function logOut(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Log out', exact: true }).click();
  await stateOf(page, 'signed-out');
}

/** The code prompt after a correct password: the login and registration forms give way to it. */
async function codePrompt(page: Page): Promise<void> {
  const prompt = page.locator('#mfa-form');
  await prompt.waitFor();
  assert.equal(await page.locator('#login-form').isVisible(), false);
  assert.equal(await page.locator('#register-form').isVisible(), false);
  assert.equal(await page.locator('body').getAttribute('data-state'), 'signed-out', 'nobody is signed in before the code');
}

async function amrOnPage(page: Page): Promise<unknown> {
  return claimsOf(await page.locator('#token-raw').innerText()).amr;
}

describeNeeding('email verification and two-factor sign-in on the web page in Chromium', { chrome: true }, () => {
  const e2e = useInstanceAndBrowser();

  it(
    'enrols TOTP (QR code, key, confirm, 10 recovery codes), then logs in with a TOTP code and with a recovery code',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { context, page, problems } = await e2e.newPage();
      try {
        const credentials = newCredentials();
        await page.goto(`${e2e.instance.url}/`);
        await stateOf(page, 'signed-out');
        await registerAndLogIn(page, credentials);
        // A new account: the server says TOTP is off (GET /auth/mfa).
        await page.locator('body[data-two-factor="off"]').waitFor();
        assert.deepEqual(await amrOnPage(page), ['pwd']);

        // Enrolment: the QR code (the server's SVG as an image) and the key as text.
        await page.getByRole('button', { name: 'Set up two-factor sign-in' }).click();
        await page.locator('body[data-two-factor="enrolling"]').waitFor();
        const secret = (await page.locator('#totp-secret').innerText()).trim();
        assert.match(secret, /^[A-Z2-7]{16,}$/, `a base32 key: ${secret}`);
        const qr = page.locator('#totp-qr');
        assert.match(String(await qr.getAttribute('src')), /^data:image\/svg\+xml/);
        // Drawn, so the CSP let the data: image in: an image that failed to load has no natural size.
        const drawn = await page.waitForFunction(
          "(() => { const img = document.getElementById('totp-qr'); return img.complete && img.naturalWidth > 0 ? img.naturalWidth : 0; })()",
        );
        assert.ok(Number(await drawn.jsonValue()) > 0);
        assert.equal(await page.locator('#mfa-enrol svg').count(), 0, 'no SVG markup was parsed into the page');
        await screenshot(page, 'mfa-1-enrol');

        // A wrong code is refused and the enrolment stays open.
        const confirmInput = page.getByLabel('Code from the app');
        const wrong = [-1, 0, 1].map((step) => totpCode(secret, Date.now() + step * STEP_MS)).includes('000000') ? '111111' : '000000';
        await confirmInput.fill(wrong);
        await page.getByRole('button', { name: 'Turn on' }).click();
        await page.getByRole('alert').filter({ hasText: 'invalid_code' }).waitFor();
        assert.equal(await page.locator('body').getAttribute('data-two-factor'), 'enrolling');

        const confirmedAt = Date.now();
        await confirmInput.fill(totpCode(secret, confirmedAt));
        await page.getByRole('button', { name: 'Turn on' }).click();
        await page.locator('body[data-two-factor="codes"]').waitFor();
        const recoveryCodes = (await page.locator('#recovery-codes li').allInnerTexts()).map((code) => code.trim());
        assert.equal(recoveryCodes.length, 10);
        assert.equal(new Set(recoveryCodes).size, 10);
        for (const code of recoveryCodes) assert.match(code, /^[0-9a-z]{4}(-[0-9a-z]{4})+$/);
        assert.equal(await page.locator('#totp-secret').innerText(), '', 'the key leaves the page once enrolment is over');
        await screenshot(page, 'mfa-2-recovery-codes');
        await page.getByRole('button', { name: 'I have saved them' }).click();
        await page.locator('body[data-two-factor="on"]').waitFor();
        assert.equal(await page.locator('#recovery-codes li').count(), 0, 'the codes are shown once');
        // A reload keeps the password-only session, whose token cannot say TOTP is on: the server does.
        await page.reload();
        await stateOf(page, 'signed-in');
        await page.locator('body[data-two-factor="on"]').waitFor();
        assert.deepEqual(await amrOnPage(page), ['pwd']);
        await logOut(page);

        // Login with a TOTP code at the prompt; first a wrong one, which leaves the prompt open.
        await logIn(page, credentials);
        await codePrompt(page);
        await screenshot(page, 'mfa-3-code-prompt');
        await page.locator('#mfa-code').fill(wrong);
        await page.getByRole('button', { name: 'Verify' }).click();
        await page.getByRole('alert').filter({ hasText: 'Invalid two-factor code' }).waitFor();
        assert.equal(await page.locator('#mfa-form').isVisible(), true);
        // The confirmation spent the step of its code: the next step's, within the server's window.
        await page.locator('#mfa-code').fill(totpCode(secret, Math.max(Date.now(), confirmedAt + STEP_MS)));
        await page.getByRole('button', { name: 'Verify' }).click();
        await stateOf(page, 'signed-in');
        await page
          .getByRole('status')
          .filter({ hasText: `Logged in as ${credentials.email}` })
          .waitFor();
        assert.deepEqual(await amrOnPage(page), ['pwd', 'otp']);
        await page.locator('body[data-two-factor="on"]').waitFor();
        assert.equal(await page.locator('#mfa-form').isVisible(), false);
        await screenshot(page, 'mfa-4-signed-in-with-code');
        await logOut(page);

        // Login with a recovery code (typed in capitals: spelling does not matter).
        await logIn(page, credentials);
        await codePrompt(page);
        await page.locator('#mfa-code').fill((recoveryCodes[3] ?? '').toUpperCase());
        await page.locator('#mfa-code').press('Enter');
        await stateOf(page, 'signed-in');
        assert.deepEqual(await amrOnPage(page), ['pwd', 'otp']);
        await screenshot(page, 'mfa-5-signed-in-with-recovery-code');
        await logOut(page);

        // The same recovery code is spent; Cancel brings the login form back.
        await logIn(page, credentials);
        await codePrompt(page);
        await page.locator('#mfa-code').fill(recoveryCodes[3] ?? '');
        await page.getByRole('button', { name: 'Verify' }).click();
        await page.getByRole('alert').filter({ hasText: 'Invalid two-factor code' }).waitFor();
        await page.getByRole('button', { name: 'Cancel' }).click();
        await page.locator('#login-form').waitFor();
        assert.equal(await page.locator('#mfa-form').isVisible(), false);
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
    },
  );

  it('regenerates the recovery codes and turns two-factor sign-in off from the page', { timeout: TEST_TIMEOUT_MS }, async () => {
    const { context, page, problems } = await e2e.newPage();
    try {
      const credentials = newCredentials();
      await page.goto(`${e2e.instance.url}/`);
      await stateOf(page, 'signed-out');
      await registerAndLogIn(page, credentials);
      await page.getByRole('button', { name: 'Set up two-factor sign-in' }).click();
      await page.locator('body[data-two-factor="enrolling"]').waitFor();
      const secret = (await page.locator('#totp-secret').innerText()).trim();
      assert.match(secret, /^[A-Z2-7]{16,}$/);
      await page.getByLabel('Code from the app').fill(totpCode(secret, Date.now()));
      await page.getByRole('button', { name: 'Turn on' }).click();
      await page.locator('body[data-two-factor="codes"]').waitFor();
      const first = (await page.locator('#recovery-codes li').allInnerTexts()).map((code) => code.trim());
      await page.getByRole('button', { name: 'I have saved them' }).click();

      await page.locator('#regenerate-code').fill(first[0] ?? '');
      await page.getByRole('button', { name: 'Make new codes' }).click();
      await page.locator('body[data-two-factor="codes"]').waitFor();
      const second = (await page.locator('#recovery-codes li').allInnerTexts()).map((code) => code.trim());
      assert.equal(second.length, 10);
      assert.ok(second.every((code) => !first.includes(code)));
      await page.getByRole('button', { name: 'I have saved them' }).click();

      // An old code no longer works; a new one does.
      await page.locator('#disable-password').fill(credentials.password);
      await page.locator('#disable-code').fill(first[1] ?? '');
      await page.getByRole('button', { name: 'Turn off' }).click();
      await page.getByRole('alert').filter({ hasText: 'invalid_code' }).waitFor();
      await page.locator('#disable-code').fill(second[0] ?? '');
      await page.getByRole('button', { name: 'Turn off' }).click();
      await page.locator('body[data-two-factor="off"]').waitFor();
      await page.getByRole('status').filter({ hasText: 'Two-factor sign-in is off.' }).waitFor();
      await logOut(page);

      await logIn(page, credentials);
      await stateOf(page, 'signed-in');
      assert.deepEqual(await amrOnPage(page), ['pwd']);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('a verification link pasted into the open, signed-in tab is followed there (hashchange)', { timeout: TEST_TIMEOUT_MS }, async () => {
    const { context, page, problems } = await e2e.newPage();
    try {
      const credentials = newCredentials();
      await page.goto(`${e2e.instance.url}/`);
      await stateOf(page, 'signed-out');
      await registerAndLogIn(page, credentials);
      await page.locator('#email-state', { hasText: 'not verified' }).waitFor();
      const [mail] = await waitForValue(
        `a verification mail to ${credentials.email}`,
        () => {
          const mails = verificationMails(e2e.outboxDir, credentials.email);
          return mails.length === 0 ? undefined : mails;
        },
        MAIL_WAIT_MS,
      );
      assert.ok(mail !== undefined);
      // Only the fragment changes: no reload, the page hears a hashchange.
      await page.evaluate(`window.location.hash = ${JSON.stringify(new URL(mail.link).hash)}`);
      await page.locator('#email-state', { hasText: /^verified$/ }).waitFor();
      await page.locator('#email-link-result', { hasText: 'Your email address is verified.' }).waitFor();
      assert.equal(new URL(page.url()).hash, '');
      await page.locator('#token-payload', { hasText: '"email_verified": true' }).waitFor();
      assert.equal(await page.locator('body').getAttribute('data-state'), 'signed-in');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it(
    'follows the link of the verification email: verified on the page and in /users/me, the token gone from the address bar',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { context, page, problems } = await e2e.newPage();
      try {
        const credentials = newCredentials();
        await page.goto(`${e2e.instance.url}/`);
        await stateOf(page, 'signed-out');
        await registerAndLogIn(page, credentials);
        await page.locator('#email-state', { hasText: 'not verified' }).waitFor();
        assert.equal(await page.locator('#email-address').innerText(), credentials.email);
        const mailed = (count: number) =>
          waitForValue(
            `${count} verification mail(s) to ${credentials.email}`,
            () => {
              const mails = verificationMails(e2e.outboxDir, credentials.email);
              return mails.length < count ? undefined : mails;
            },
            MAIL_WAIT_MS,
          );
        await mailed(1);
        await screenshot(page, 'verify-1-unverified');

        // The resend button mails a new link, which replaces the first.
        await page.getByRole('button', { name: 'Resend the verification email' }).click();
        await page.getByRole('status').filter({ hasText: 'A new verification email is on its way' }).waitFor();
        const mails = await mailed(2);
        const { link, token } = mails.at(-1) ?? { link: '', token: '' };
        assert.equal(link, `${e2e.instance.url}/#verify-email=${token}`, 'the link leads to this page');

        // Opened in a new tab of the same browser: spent, reported, and the session restored shows it.
        const tab = await context.newPage();
        const tabProblems: string[] = [];
        tab.on('pageerror', (error) => tabProblems.push(error.message));
        const verify = tab.waitForResponse((response) => response.url() === `${e2e.instance.url}/auth/email/verify`);
        await tab.goto(link);
        assert.equal((await verify).status(), 204);
        await tab.locator('#email-link-result', { hasText: 'Your email address is verified.' }).waitFor();
        await tab.locator('body[data-email-verification="verified"]').waitFor();
        assert.equal(new URL(tab.url()).hash, '', 'the token is gone from the address bar');
        assert.equal(tab.url(), `${e2e.instance.url}/`);
        await stateOf(tab, 'signed-in');
        await tab.locator('#email-state', { hasText: /^verified$/ }).waitFor();
        assert.equal(await tab.getByRole('button', { name: 'Resend the verification email' }).isVisible(), false);
        await screenshot(tab, 'verify-2-link-followed');
        await tab.close();

        // The server agrees: /users/me and the access tokens say verified.
        const login = await fetch(`${e2e.instance.url}/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(credentials),
        });
        assert.equal(login.status, 200);
        const { access_token: accessToken } = (await login.json()) as { access_token: string };
        assert.equal(claimsOf(accessToken).email_verified, true);
        const me = await fetch(`${e2e.instance.url}/users/me`, { headers: { authorization: `Bearer ${accessToken}` } });
        assert.equal(((await me.json()) as { email_verified: boolean }).email_verified, true);

        // The same link again, in a signed-out browser: refused, and said so.
        const stranger = await e2e.newPage();
        try {
          await stranger.page.goto(link);
          await stranger.page.locator('body[data-email-verification="failed"]').waitFor();
          await stranger.page.getByRole('alert').filter({ hasText: 'invalid_token' }).waitFor();
          assert.equal(new URL(stranger.page.url()).hash, '');
          await stateOf(stranger.page, 'signed-out');
          await screenshot(stranger.page, 'verify-3-link-used');
        } finally {
          await stranger.context.close();
        }
        assert.deepEqual(problems, []);
        assert.deepEqual(tabProblems, []);
      } finally {
        await context.close();
      }
    },
  );
});
