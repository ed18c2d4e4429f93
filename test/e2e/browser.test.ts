import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page, type Response } from 'playwright-core';
import { CHROME_PATH, describeNeeding } from '../helpers/app.js';
import { claimsOf, newCredentials } from '../helpers/client.js';
import { REPO_ROOT, startInstance, type Instance } from '../helpers/instances.js';

const SCREENSHOTS = path.join(REPO_ROOT, 'test-results');
const CHROME_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const ADMIN = { email: 'admin@example.com', password: 'Adm1n-e2e-Pass-Word' };
const TEST_TIMEOUT_MS = 90_000;

/** What went wrong inside a page: uncaught exceptions and console errors (CSP refusals among them). */
function watchPage(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    // A refused request (the 401 of a restore without cookie) is logged by Chromium; it is no fault of the page.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`console: ${message.text()}`);
  });
  return problems;
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `browser-${name}.png`), fullPage: true });
}

async function stateOf(page: Page, state: 'signed-in' | 'signed-out'): Promise<void> {
  await page.locator(`body[data-state="${state}"]`).waitFor();
}

async function registerAndLogIn(page: Page, credentials: { email: string; password: string }): Promise<void> {
  const register = page.locator('#register-form');
  await register.getByLabel('Email').fill(credentials.email);
  await register.getByLabel('Password').fill(credentials.password);
  await register.getByLabel('Full name').fill('Erin Example');
  await register.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('status').filter({ hasText: `Account ${credentials.email} created` }).waitFor();
  const login = page.locator('#login-form');
  assert.equal(await login.getByLabel('Email').inputValue(), credentials.email, 'the login form is prefilled');
  await login.getByLabel('Password').fill(credentials.password);
  await login.getByLabel('Password').press('Enter');
  await stateOf(page, 'signed-in');
}

/** What the attacker's script learns from its fetch. */
interface AttackResult {
  reached: boolean;
  status?: number;
  body?: string;
  error?: string;
}

/** Runs `action` and returns the response of the first request to `url` it causes (no promise is left dangling). */
async function responseTo(page: Page, url: string, action: () => Promise<unknown>, method = 'POST'): Promise<Response> {
  const [response] = await Promise.all([page.waitForResponse((candidate) => candidate.url() === url && candidate.request().method() === method), action()]);
  return response;
}

async function refreshCookieOf(context: BrowserContext): Promise<{ value: string; httpOnly: boolean; sameSite: string; path: string; secure: boolean } | undefined> {
  return (await context.cookies()).find((cookie) => cookie.name === 'gatepass_refresh');
}

describeNeeding('the web page, Swagger UI and the cookie defences in Chromium', { chrome: true }, () => {
  let instance: Instance;
  let browser: Browser;
  let dataDir: string;

  before(async () => {
    // The instance runs from source but serves the built page: build it now, from the current source.
    execFileSync(process.execPath, ['scripts/build-web.mjs'], { cwd: REPO_ROOT, stdio: 'pipe', timeout: 60_000 });
    mkdirSync(SCREENSHOTS, { recursive: true });
    dataDir = mkdtempSync(path.join(tmpdir(), 'gatepass-e2e-'));
    instance = await startInstance({
      JWT_SECRET: randomBytes(32).toString('hex'),
      JWT_REFRESH_SECRET: randomBytes(32).toString('hex'),
      DATABASE_URL: `sqlite:${path.join(dataDir, 'gatepass.db')}`,
      GATEPASS_DATA_DIR: dataDir,
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      LOGIN_RATE_LIMIT_PER_MINUTE: '0',
      ACCOUNT_LOCKOUT_THRESHOLD: '0',
    });
    browser = await chromium.launch({ executablePath: CHROME_PATH, args: CHROME_ARGS, timeout: 30_000 });
  });

  after(async () => {
    await browser?.close();
    await instance?.stop();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  });

  /** How many events of a kind the server has audited for a user (asked as the admin, over the API). */
  async function auditedEvents(userId: number, event: string): Promise<number> {
    const login = await fetch(`${instance.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ADMIN) });
    assert.equal(login.status, 200);
    const { access_token: token } = (await login.json()) as { access_token: string };
    const audit = await fetch(`${instance.url}/admin/audit?user_id=${userId}&event=${event}&limit=200`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(audit.status, 200);
    return ((await audit.json()) as { items: unknown[] }).items.length;
  }

  /** How many refreshes the server has audited for a user. */
  function refreshesOf(userId: number): Promise<number> {
    return auditedEvents(userId, 'refresh');
  }

  async function newPage(viewport = { width: 1280, height: 900 }): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    return { context, page, problems: watchPage(page) };
  }

  it('register → log in → add a task → reload (silent refresh) → the decoded token → log out', { timeout: TEST_TIMEOUT_MS }, async () => {
    const { context, page, problems } = await newPage();
    try {
      const credentials = newCredentials();
      await page.goto(`${instance.url}/`);
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
      assert.equal((await responseTo(page, `${instance.url}/auth/refresh`, () => page.reload())).status(), 200);
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
    const { context, page, problems } = await newPage();
    try {
      await page.goto(`${instance.url}/`);
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
      await page.getByRole('alert').filter({ hasText: 'password: String should have at least 8 characters (422 validation_error)' }).waitFor();
      await screenshot(page, '2-error-alert');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('an admin sees the users and the audit log, and changes a role', { timeout: TEST_TIMEOUT_MS }, async () => {
    const student = newCredentials();
    const created = await fetch(`${instance.url}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(student) });
    assert.equal(created.status, 201);
    const studentId = ((await created.json()) as { id: number }).id;

    const { context, page, problems } = await newPage();
    try {
      await page.goto(`${instance.url}/`);
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
      await page.getByRole('status').filter({ hasText: `${student.email} is now teacher.` }).waitFor();
      await page.locator('#audit-table tbody tr', { hasText: 'role_changed' }).first().waitFor();
      await screenshot(page, '3-admin');

      // The change is real: the student's next login carries the new role.
      const answer = await fetch(`${instance.url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(student) });
      assert.equal(claimsOf(((await answer.json()) as { access_token: string }).access_token).role, 'teacher');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it('Swagger UI at /docs: Authorize with the password flow, then Try it out on GET /users/me', { timeout: TEST_TIMEOUT_MS }, async () => {
    const credentials = newCredentials();
    const created = await fetch(`${instance.url}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(credentials) });
    assert.equal(created.status, 201);
    const { context, page, problems } = await newPage();
    try {
      await page.goto(`${instance.url}/docs`);
      await page.locator('.swagger-ui .btn.authorize').first().click();
      const dialog = page.locator('.modal-ux');
      await dialog.locator('#oauth_username').fill(credentials.email);
      await dialog.locator('#oauth_password').fill(credentials.password);
      const login = await responseTo(page, `${instance.url}/auth/login`, () => dialog.getByRole('button', { name: 'Apply given OAuth2 credentials' }).click());
      assert.equal(login.status(), 200);
      await dialog.getByText('Authorized').waitFor();
      await screenshot(page, '4-swagger-authorized');
      await dialog.getByRole('button', { name: 'Close' }).click();

      const operation = page.locator('#operations-users-get_users_me');
      await operation.locator('.opblock-summary').first().click();
      await operation.getByRole('button', { name: 'Try it out' }).click();
      const answer = await responseTo(page, `${instance.url}/users/me`, () => operation.getByRole('button', { name: 'Execute' }).click(), 'GET');
      assert.equal(answer.status(), 200);
      assert.match(answer.request().headers().authorization ?? '', /^Bearer eyJ/);
      const status = operation.locator('.live-responses-table tbody .response .response-col_status').first();
      await status.waitFor();
      assert.equal((await status.innerText()).trim(), '200');
      assert.match(await operation.locator('.live-responses-table tbody .response .response-col_description').first().innerText(), new RegExp(credentials.email.replace(/\./g, '\\.')));
      await operation.screenshot({ path: path.join(SCREENSHOTS, 'browser-4-swagger-try-it-out.png') });
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  it("a page on another origin can neither refresh nor read the victim's session, by fetch or by form", { timeout: TEST_TIMEOUT_MS }, async () => {
    const gatepass = instance.url;
    // The attacker's page: a script that tries the refresh with the custom header, and a plain form post.
    const attacker = http.createServer((_request, response) => {
      response.setHeader('content-type', 'text/html; charset=utf-8');
      response.end(`<!doctype html><title>attacker</title>
        <form id="csrf" method="POST" action="${gatepass}/auth/refresh"><button>win a prize</button></form>
        <script>
          window.tryFetch = async () => {
            try {
              const r = await fetch('${gatepass}/auth/refresh', { method: 'POST', credentials: 'include', headers: { 'X-Gatepass-Cookie': '1' } });
              return { reached: true, status: r.status, body: await r.text() };
            } catch (error) {
              return { reached: false, error: String(error) };
            }
          };
          window.tryBlindFetch = () => fetch('${gatepass}/auth/refresh', { method: 'POST', credentials: 'include', mode: 'no-cors' })
            .then((r) => r.type, (error) => String(error));
        </script>`);
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    const attackerPort = (attacker.address() as AddressInfo).port;

    const { context, page, problems } = await newPage();
    try {
      const credentials = newCredentials();
      await page.goto(`${gatepass}/`);
      await stateOf(page, 'signed-out');
      await registerAndLogIn(page, credentials);
      const victimCookie = await refreshCookieOf(context);
      assert.ok(victimCookie !== undefined);
      const victimId = Number(claimsOf(await page.locator('#token-raw').innerText()).sub);
      const refreshesBefore = await refreshesOf(victimId);

      // Same site (127.0.0.1), another origin (port): SameSite lets the cookie go, the server's checks must stop it.
      const evil = await context.newPage();
      evil.setDefaultTimeout(15_000);
      await evil.goto(`http://127.0.0.1:${attackerPort}/`);
      const scripted = await evil.evaluate<AttackResult>('tryFetch()');
      assert.equal(scripted.reached, false, `the preflight must fail: ${JSON.stringify(scripted)}`);
      assert.match(scripted.error ?? '', /TypeError: Failed to fetch/);

      // A "simple" request needs no preflight: it goes (same site, so the cookie goes along) but without
      // the custom header, and its answer is unreadable (Cross-Origin-Resource-Policy even withholds the opaque one).
      let blindResult = '';
      const [blind] = await Promise.all([
        evil.waitForRequest((request) => request.url() === `${gatepass}/auth/refresh` && request.method() === 'POST'),
        (async () => (blindResult = await evil.evaluate<string>('tryBlindFetch()')))(),
      ]);
      assert.match(blindResult, /^(opaque|TypeError: Failed to fetch)$/);
      assert.equal((await blind.allHeaders())['x-gatepass-cookie'], undefined);
      // The server did answer (its refusal comes below from the audit log); the browser withheld even the opaque answer.
      assert.match(blind.failure()?.errorText ?? 'delivered', /^(delivered|net::ERR_BLOCKED_BY_RESPONSE)/);

      const form = await responseTo(evil, `${gatepass}/auth/refresh`, () => evil.getByRole('button', { name: 'win a prize' }).click());
      assert.equal(form.status(), 403);
      assert.deepEqual(await form.json(), { detail: 'Requests authenticated by cookie need the header X-Gatepass-Cookie: 1', code: 'csrf_failed' });
      assert.match((await form.request().headerValue('cookie')) ?? '', /gatepass_refresh=/, 'same-site: the cookie went along, and was refused');
      await screenshot(evil, '5-csrf-same-site-form');

      // Another site (localhost vs 127.0.0.1): SameSite=Strict keeps the cookie home.
      await evil.goto(`http://localhost:${attackerPort}/`);
      const crossSiteScript = await evil.evaluate<AttackResult>('tryFetch()');
      assert.equal(crossSiteScript.reached, false, JSON.stringify(crossSiteScript));
      const crossSite = await responseTo(evil, `${gatepass}/auth/refresh`, () => evil.getByRole('button', { name: 'win a prize' }).click());
      assert.equal((await crossSite.request().headerValue('cookie')) ?? '', '', 'cross-site: no cookie sent');
      assert.equal(crossSite.status(), 422, 'without the cookie there is nothing to refresh');
      await screenshot(evil, '5-csrf-cross-site-form');

      // None of it refreshed the victim's session (the server audits every refresh), nor rotated the
      // cookie; and the victim's session goes on.
      assert.equal(await refreshesOf(victimId), refreshesBefore);
      assert.equal((await refreshCookieOf(context))?.value, victimCookie.value);
      await page.bringToFront();
      assert.equal((await responseTo(page, `${gatepass}/auth/refresh`, () => page.reload())).status(), 200);
      await stateOf(page, 'signed-in');
      assert.match(await page.locator('#who').innerText(), new RegExp(credentials.email.replace(/\./g, '\\.')));
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
      await new Promise((resolve) => attacker.close(resolve));
    }
  });

  it("a page on another origin can neither sign the browser in to the attacker's account (login CSRF) nor use the victim's cookie, by form or by fetch", { timeout: TEST_TIMEOUT_MS }, async () => {
    const gatepass = instance.url;
    const attackerAccount = newCredentials();
    const created = await fetch(`${gatepass}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(attackerAccount) });
    assert.equal(created.status, 201);
    const attackerId = ((await created.json()) as { id: number }).id;
    const html = (text: string) => text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
    // The attacker's site: /login-form auto-submits the OAuth2 form with the attacker's credentials (with
    // ?cookie=true, the request of the old login CSRF, when asked with ?query); / offers `attempt(path, init)`,
    // a fetch with the browser's credentials.
    const attacker = http.createServer((request, response) => {
      response.setHeader('content-type', 'text/html; charset=utf-8');
      const url = new URL(request.url ?? '/', 'http://attacker.invalid');
      if (url.pathname === '/login-form') {
        const action = `${gatepass}/auth/login${url.search === '?query' ? '?cookie=true' : ''}`;
        response.end(`<!doctype html><title>win a prize</title>
          <form method="POST" action="${html(action)}">
            <input name="username" value="${html(attackerAccount.email)}"><input name="password" value="${html(attackerAccount.password)}">
          </form>
          <script>document.forms[0].submit();</script>`);
        return;
      }
      response.end(`<!doctype html><title>attacker</title>
        <script>
          window.attempt = async (path, init) => {
            try {
              const r = await fetch('${gatepass}' + path, { method: 'POST', credentials: 'include', ...init });
              return { reached: true, status: r.status, body: r.type === 'opaque' ? 'opaque' : await r.text() };
            } catch (error) {
              return { reached: false, error: String(error) };
            }
          };
        </script>`);
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    const attackerPort = (attacker.address() as AddressInfo).port;
    // Same site as gatepass (127.0.0.1, another port: SameSite lets cookies go) and another site (localhost).
    const attackerOrigins = [`http://127.0.0.1:${attackerPort}`, `http://localhost:${attackerPort}`];
    const attempt = (page: Page, path: string, init: Record<string, unknown>) => page.evaluate<AttackResult>(`attempt(${JSON.stringify(path)}, ${JSON.stringify(init)})`);
    const jsonLogin = JSON.stringify({ email: attackerAccount.email, password: attackerAccount.password });
    const formLogin = new URLSearchParams({ username: attackerAccount.email, password: attackerAccount.password }).toString();

    const victim = await newPage();
    const target = await newPage();
    try {
      // A signed-in victim (whose cookie the attacker would use) and a browser that is signed out (which
      // the attacker would sign in to the attacker's own account).
      const credentials = newCredentials();
      await victim.page.goto(`${gatepass}/`);
      await stateOf(victim.page, 'signed-out');
      await registerAndLogIn(victim.page, credentials);
      const victimCookie = await refreshCookieOf(victim.context);
      assert.ok(victimCookie !== undefined);
      const victimId = Number(claimsOf(await victim.page.locator('#token-raw').innerText()).sub);
      const victimBefore = { refresh: await refreshesOf(victimId), logout: await auditedEvents(victimId, 'logout') };
      const attackerLoginsBefore = await auditedEvents(attackerId, 'login_success');
      const evil = await victim.context.newPage();
      evil.setDefaultTimeout(15_000);

      for (const origin of attackerOrigins) {
        // The old login CSRF: a form that asks for cookie mode with ?cookie=true. Refused; no cookie.
        const form = await responseTo(target.page, `${gatepass}/auth/login?cookie=true`, () => target.page.goto(`${origin}/login-form?query`));
        assert.equal(form.status(), 422, origin);
        assert.deepEqual(await form.json(), {
          detail: [{ loc: ['query', 'cookie'], msg: 'Cookie mode is asked for with the header X-Gatepass-Cookie: 1, not a query parameter', type: 'value_error' }],
          code: 'validation_error',
        });
        assert.equal(await form.headerValue('set-cookie'), null);
        await screenshot(target.page, `7-login-csrf-form-${origin.includes('localhost') ? 'cross' : 'same'}-site`);

        // A script asking for cookie mode properly (the header) needs a CORS preflight, which gatepass refuses.
        await target.page.goto(`${origin}/`);
        const scripted = await attempt(target.page, '/auth/login', { headers: { 'Content-Type': 'application/json', 'X-Gatepass-Cookie': '1' }, body: jsonLogin });
        assert.equal(scripted.reached, false, `${origin}: the preflight must fail: ${JSON.stringify(scripted)}`);
        assert.match(scripted.error ?? '', /TypeError: Failed to fetch/);

        // Nor can it refresh or log out the victim with the victim's cookie.
        await evil.goto(`${origin}/`);
        for (const path of ['/auth/refresh', '/auth/logout']) {
          const withHeader = await attempt(evil, path, { headers: { 'X-Gatepass-Cookie': '1' } });
          assert.equal(withHeader.reached, false, `${origin} ${path}: ${JSON.stringify(withHeader)}`);
          // A no-cors request goes without a preflight, but a no-cors request cannot carry the header.
          await attempt(evil, path, { mode: 'no-cors', headers: { 'X-Gatepass-Cookie': '1' } });
        }
      }
      assert.equal(await auditedEvents(attackerId, 'login_success'), attackerLoginsBefore, 'no cookie-mode login of the attacker reached the password check');
      assert.equal(await refreshCookieOf(target.context), undefined, 'the signed-out browser holds no refresh cookie');
      assert.deepEqual({ refresh: await refreshesOf(victimId), logout: await auditedEvents(victimId, 'logout') }, victimBefore);
      assert.equal((await refreshCookieOf(victim.context))?.value, victimCookie.value);

      // Requests that do not ask for cookie mode are plain logins: the tokens go to a body the attacker's
      // page cannot read, and no cookie is set — whatever a form or a no-cors script sends.
      for (const origin of attackerOrigins) {
        const form = await responseTo(target.page, `${gatepass}/auth/login`, () => target.page.goto(`${origin}/login-form`));
        assert.equal(form.status(), 200, origin);
        assert.equal(await form.headerValue('set-cookie'), null);
        assert.equal(typeof ((await form.json()) as { refresh_token?: unknown }).refresh_token, 'string');
        await target.page.goto(`${origin}/`);
        for (const init of [
          { mode: 'no-cors', headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Gatepass-Cookie': '1' }, body: formLogin },
          { mode: 'no-cors', headers: { 'Content-Type': 'text/plain', 'X-Gatepass-Cookie': '1' }, body: jsonLogin },
        ]) {
          const [sent] = await Promise.all([
            target.page.waitForRequest((request) => request.url() === `${gatepass}/auth/login` && request.method() === 'POST'),
            attempt(target.page, '/auth/login', init),
          ]);
          assert.equal((await sent.allHeaders())['x-gatepass-cookie'], undefined, 'the browser dropped the header');
        }
      }
      assert.deepEqual(await target.context.cookies(gatepass), [], 'no cookie of gatepass in the signed-out browser');
      await target.page.goto(`${gatepass}/`);
      await stateOf(target.page, 'signed-out');

      // The victim's session goes on, untouched.
      assert.deepEqual({ refresh: await refreshesOf(victimId), logout: await auditedEvents(victimId, 'logout') }, victimBefore);
      assert.equal((await refreshCookieOf(victim.context))?.value, victimCookie.value);
      await victim.page.bringToFront();
      assert.equal((await responseTo(victim.page, `${gatepass}/auth/refresh`, () => victim.page.reload())).status(), 200);
      await stateOf(victim.page, 'signed-in');
      assert.match(await victim.page.locator('#who').innerText(), new RegExp(credentials.email.replace(/\./g, '\\.')));
      assert.deepEqual(victim.problems, []);
      // The signed-out browser's tab visited the attacker's pages: Chromium reports the refused preflights there.
      assert.deepEqual(target.problems.filter((problem) => !/^console: Access to fetch at .* has been blocked by CORS policy/.test(problem)), []);
    } finally {
      await victim.context.close();
      await target.context.close();
      await new Promise((resolve) => attacker.close(resolve));
    }
  });

  it('at phone width (375 px) the login form fits, works from the keyboard, and the page never scrolls sideways', { timeout: TEST_TIMEOUT_MS }, async () => {
    const { context, page, problems } = await newPage({ width: 375, height: 740 });
    try {
      const credentials = newCredentials();
      const created = await fetch(`${instance.url}/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(credentials) });
      assert.equal(created.status, 201);
      await page.goto(`${instance.url}/`);
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
  });
});
