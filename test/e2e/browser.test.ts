import assert from 'node:assert/strict';
import path from 'node:path';
import { it } from 'node:test';
import { describeNeeding } from '../helpers/app.js';
import {
  ADMIN,
  refreshCookieOf,
  registerAndLogIn,
  responseTo,
  screenshot,
  SCREENSHOTS,
  stateOf,
  TEST_TIMEOUT_MS,
  useInstanceAndBrowser,
} from '../helpers/browser.js';
import { claimsOf, newCredentials } from '../helpers/client.js';

/** The web page and Swagger UI in Chromium: the whole flow, errors, the admin views, Authorize, and a phone-width screen. */

describeNeeding('the web page, Swagger UI and the cookie defences in Chromium', { chrome: true }, () => {
  const e2e = useInstanceAndBrowser();

  it('register → log in → add a task → reload (silent refresh) → the decoded token → log out', { timeout: TEST_TIMEOUT_MS }, async () => {
    const { context, page, problems } = await e2e.newPage();
    try {
      const credentials = newCredentials();
      await page.goto(`${e2e.instance.url}/`);
      await stateOf(page, 'signed-out');
      await screenshot(page, '1-signed-out');
      await registerAndLogIn(page, credentials);
      assert.match(await page.locator('#who').innerText(), new RegExp(`${credentials.email.replace(/\./g, '\\.')} · student`));

      const title = 'Write the browser test';
      await page.getByLabel('New task').fill(title);
      await page.getByLabel('New task').press('Enter');
      const task = page.locator('#task-list li', { hasText: title });
      await task.waitFor();
      await task.getByRole('checkbox').check();
      await page.locator('#task-list li.done', { hasText: title }).waitFor();

      // Reload: the access token (memory) is gone; the HttpOnly cookie brings the session back.
      const cookieBefore = await refreshCookieOf(context);
      assert.ok(cookieBefore !== undefined, 'login set the refresh cookie');
      assert.equal((await responseTo(page, `${e2e.instance.url}/auth/refresh`, () => page.reload())).status(), 200);
      await stateOf(page, 'signed-in');
      await page.locator('#task-list li.done', { hasText: title }).waitFor();
      assert.notEqual((await refreshCookieOf(context))?.value, cookieBefore.value, 'the refresh rotated the cookie');

      // The token, cracked open.
      const raw = await page.locator('#token-raw').innerText();
      const [headerSegment, payloadSegment, signatureSegment] = raw.split('.');
      assert.equal(await page.locator('#token-raw .seg-header').innerText(), headerSegment);
      assert.equal(await page.locator('#token-raw .seg-payload').innerText(), payloadSegment);
      assert.equal(await page.locator('#token-raw .seg-signature').innerText(), signatureSegment);
      const colours = await page.evaluate<string[]>(
        "['.seg-header', '.seg-payload', '.seg-signature'].map((selector) => getComputedStyle(document.querySelector(selector)).color)",
      );
      assert.equal(new Set(colours).size, 3, `three colours: ${colours.join(', ')}`);
      const header = JSON.parse(await page.locator('#token-header').innerText()) as Record<string, unknown>;
      const payload = JSON.parse(await page.locator('#token-payload').innerText()) as Record<string, unknown>;
      assert.deepEqual(header, { alg: 'HS256', typ: 'JWT' });
      assert.deepEqual(payload, claimsOf(raw));
      assert.equal(payload.type, 'access');
      assert.equal(payload.role, 'student');
      assert.equal(await page.locator('#token-signature').innerText(), signatureSegment);
      assert.match(await page.locator('#token-panel').innerText(), /Base64 is not encryption/);
      const countdown = page.locator('#countdown');
      const first = await countdown.innerText();
      assert.match(first, /^1[45]:\d\d$/, `countdown ${first}`);
      await page.locator('#countdown', { hasNotText: first }).waitFor({ timeout: 5000 });
      await page.locator('#sessions-panel li.current', { hasText: 'this browser' }).waitFor();
      await screenshot(page, '1-token-and-tasks');

      // Nothing readable by script holds a token; the refresh cookie exists, but HttpOnly.
      const storage = await page.evaluate<{ local: string; session: string; cookie: string }>(
        '({ local: JSON.stringify({ ...localStorage }), session: JSON.stringify({ ...sessionStorage }), cookie: document.cookie })',
      );
      for (const [where, content] of Object.entries(storage)) {
        assert.doesNotMatch(content, /eyJ/, `${where} holds no JWT`);
        assert.ok(!content.includes(raw), `${where} holds no access token`);
      }
      assert.doesNotMatch(storage.cookie, /gatepass_refresh/);
      const cookie = await refreshCookieOf(context);
      assert.ok(cookie !== undefined);
      assert.deepEqual([cookie.httpOnly, cookie.secure, cookie.sameSite, cookie.path], [true, true, 'Strict', '/auth']);

      await page.getByRole('button', { name: 'Log out', exact: true }).click();
      await stateOf(page, 'signed-out');
      await page.getByRole('status').filter({ hasText: 'Logged out.' }).waitFor();
      assert.equal(await refreshCookieOf(context), undefined, 'logout cleared the cookie');
      await page.reload();
      await stateOf(page, 'signed-out');
      assert.equal(await page.locator('#login-form').isVisible(), true);
      await screenshot(page, '1-logged-out');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it("shows the server's detail in an alert", { timeout: TEST_TIMEOUT_MS }, async () => {
    const { context, page, problems } = await e2e.newPage();
    try {
      await page.goto(`${e2e.instance.url}/`);
      await stateOf(page, 'signed-out');
      const login = page.locator('#login-form');
      await login.getByLabel('Email').fill('nobody@example.com');
      await login.getByLabel('Password').fill('not-the-password');
      await login.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('alert').filter({ hasText: 'Incorrect email or password (401 invalid_credentials)' }).waitFor();

      const register = page.locator('#register-form');
      await register.getByLabel('Email').fill(newCredentials().email);
      await register.getByLabel('Password').fill('short');
      await register.getByRole('button', { name: 'Create account' }).click();
      await page
        .getByRole('alert')
        .filter({ hasText: 'password: String should have at least 8 characters (422 validation_error)' })
        .waitFor();
      await screenshot(page, '2-error-alert');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('an admin sees the users and the audit log, and changes a role', { timeout: TEST_TIMEOUT_MS }, async () => {
    const student = newCredentials();
    const created = await fetch(`${e2e.instance.url}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(student),
    });
    assert.equal(created.status, 201);
    const studentId = ((await created.json()) as { id: number }).id;

    const { context, page, problems } = await e2e.newPage();
    try {
      await page.goto(`${e2e.instance.url}/`);
      await stateOf(page, 'signed-out');
      const login = page.locator('#login-form');
      await login.getByLabel('Email').fill(ADMIN.email);
      await login.getByLabel('Password').fill(ADMIN.password);
      await login.getByRole('button', { name: 'Log in' }).click();
      await stateOf(page, 'signed-in');
      await page.locator('#admin-panel').waitFor();
      const row = page.locator(`#users-table tr[data-user-id="${studentId}"]`);
      await row.waitFor();
      const select = row.getByLabel(`Role of ${student.email}`);
      assert.equal(await select.inputValue(), 'student');
      await select.selectOption('teacher');
      await page
        .getByRole('status')
        .filter({ hasText: `${student.email} is now teacher.` })
        .waitFor();
      await page.locator('#audit-table tbody tr', { hasText: 'role_changed' }).first().waitFor();
      await screenshot(page, '3-admin');

      // The change is real: the student's next login carries the new role.
      const answer = await fetch(`${e2e.instance.url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(student),
      });
      assert.equal(claimsOf(((await answer.json()) as { access_token: string }).access_token).role, 'teacher');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('Swagger UI at /docs: Authorize with the password flow, then Try it out on GET /users/me', { timeout: TEST_TIMEOUT_MS }, async () => {
    const credentials = newCredentials();
    const created = await fetch(`${e2e.instance.url}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(credentials),
    });
    assert.equal(created.status, 201);
    const { context, page, problems } = await e2e.newPage();
    try {
      await page.goto(`${e2e.instance.url}/docs`);
      await page.locator('.swagger-ui .btn.authorize').first().click();
      const dialog = page.locator('.modal-ux');
      await dialog.locator('#oauth_username').fill(credentials.email);
      await dialog.locator('#oauth_password').fill(credentials.password);
      const login = await responseTo(page, `${e2e.instance.url}/auth/login`, () =>
        dialog.getByRole('button', { name: 'Apply given OAuth2 credentials' }).click(),
      );
      assert.equal(login.status(), 200);
      await dialog.getByText('Authorized').waitFor();
      await screenshot(page, '4-swagger-authorized');
      // The dialog lists every security scheme (the user's password flow, and the service credential of /oauth/*), each with a Close.
      await dialog.getByRole('button', { name: 'Close' }).first().click();

      const operation = page.locator('#operations-users-get_users_me');
      await operation.locator('.opblock-summary').first().click();
      await operation.getByRole('button', { name: 'Try it out' }).click();
      const answer = await responseTo(
        page,
        `${e2e.instance.url}/users/me`,
        () => operation.getByRole('button', { name: 'Execute' }).click(),
        'GET',
      );
      assert.equal(answer.status(), 200);
      assert.match(answer.request().headers().authorization ?? '', /^Bearer eyJ/);
      const status = operation.locator('.live-responses-table tbody .response .response-col_status').first();
      await status.waitFor();
      assert.equal((await status.innerText()).trim(), '200');
      assert.match(
        await operation.locator('.live-responses-table tbody .response .response-col_description').first().innerText(),
        new RegExp(credentials.email.replace(/\./g, '\\.')),
      );
      await operation.screenshot({ path: path.join(SCREENSHOTS, 'browser-4-swagger-try-it-out.png') });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it(
    'at phone width (375 px) the login form fits, works from the keyboard, and the page never scrolls sideways',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { context, page, problems } = await e2e.newPage({ width: 375, height: 740 });
      try {
        const credentials = newCredentials();
        const created = await fetch(`${e2e.instance.url}/auth/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(credentials),
        });
        assert.equal(created.status, 201);
        await page.goto(`${e2e.instance.url}/`);
        await stateOf(page, 'signed-out');
        const form = page.locator('#login-form');
        for (const part of [form, form.getByLabel('Email'), form.getByLabel('Password'), form.getByRole('button', { name: 'Log in' })]) {
          assert.equal(await part.isVisible(), true);
          const box = await part.boundingBox();
          assert.ok(box !== null && box.x >= 0 && box.x + box.width <= 375 && box.width > 0, `inside 375 px: ${JSON.stringify(box)}`);
        }
        const pageWidth = () => page.evaluate<number>('document.documentElement.scrollWidth');
        assert.ok((await pageWidth()) <= 375, `page width ${await pageWidth()}`);
        await screenshot(page, '6-phone-login');

        // Keyboard only: the email field has focus after load; Tab to the password, Enter to submit.
        await page.locator('#login-email:focus').waitFor();
        await page.keyboard.type(credentials.email);
        await page.keyboard.press('Tab');
        await page.keyboard.type(credentials.password);
        await page.keyboard.press('Enter');
        await stateOf(page, 'signed-in');
        await page.locator('#session-list li').first().waitFor();
        assert.ok((await pageWidth()) <= 375, `signed-in page width ${await pageWidth()}`);
        await screenshot(page, '6-phone-signed-in');
        assert.deepEqual(problems, []);
      } finally {
        await context.close();
      }
    },
  );
});
