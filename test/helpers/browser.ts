import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page, type Response } from 'playwright-core';
import { CHROME_PATH } from './app.js';
import { REPO_ROOT, freePort, startInstance, type Instance } from './instances.js';

/** A gatepass process serving the built web page, and Debian's Chromium driven by playwright-core. */

export const SCREENSHOTS = path.join(REPO_ROOT, 'test-results');
const CHROME_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
export const ADMIN = { email: 'admin@example.com', password: 'Adm1n-e2e-Pass-Word' };
export const TEST_TIMEOUT_MS = 90_000;

/** What went wrong inside a page: uncaught exceptions and console errors (CSP refusals among them). */
export function watchPage(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
  page.on('console', (message) => {
    // A refused request (the 401 of a restore without cookie) is logged by Chromium; it is no fault of the page.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`console: ${message.text()}`);
  });
  return problems;
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SCREENSHOTS, `browser-${name}.png`), fullPage: true });
}

export async function stateOf(page: Page, state: 'signed-in' | 'signed-out'): Promise<void> {
  await page.locator(`body[data-state="${state}"]`).waitFor();
}

export async function registerAndLogIn(page: Page, credentials: { email: string; password: string }): Promise<void> {
  const register = page.locator('#register-form');
  await register.getByLabel('Email').fill(credentials.email);
  await register.getByLabel('Password').fill(credentials.password);
  await register.getByLabel('Full name').fill('Erin Example');
  await register.getByRole('button', { name: 'Create account' }).click();
  await page
    .getByRole('status')
    .filter({ hasText: `Account ${credentials.email} created` })
    .waitFor();
  const login = page.locator('#login-form');
  assert.equal(await login.getByLabel('Email').inputValue(), credentials.email, 'the login form is prefilled');
  await login.getByLabel('Password').fill(credentials.password);
  await login.getByLabel('Password').press('Enter');
  await stateOf(page, 'signed-in');
}

/** What the attacker's script learns from its fetch. */
export interface AttackResult {
  reached: boolean;
  status?: number;
  body?: string;
  error?: string;
}

/** Runs `action` and returns the response of the first request to `url` it causes (no promise is left dangling). */
export async function responseTo(page: Page, url: string, action: () => Promise<unknown>, method = 'POST'): Promise<Response> {
  const [response] = await Promise.all([
    page.waitForResponse((candidate) => candidate.url() === url && candidate.request().method() === method),
    action(),
  ]);
  return response;
}

export async function refreshCookieOf(
  context: BrowserContext,
): Promise<{ value: string; httpOnly: boolean; sameSite: string; path: string; secure: boolean } | undefined> {
  return (await context.cookies()).find((cookie) => cookie.name === 'gatepass_refresh');
}

export interface BrowserFixture {
  /** The gatepass process (started in the describe's before hook). */
  readonly instance: Instance;
  readonly browser: Browser;
  /** Where the instance writes its mail (OutboxMailer): verification and reset tokens. */
  readonly outboxDir: string;
  /** How many events of a kind the server has audited for a user (asked as the admin, over the API). */
  auditedEvents(userId: number, event: string): Promise<number>;
  /** How many refreshes the server has audited for a user. */
  refreshesOf(userId: number): Promise<number>;
  newPage(viewport?: { width: number; height: number }): Promise<{ context: BrowserContext; page: Page; problems: string[] }>;
}

export interface InstanceOptions {
  /**
   * More settings for the instance, given the port it will listen on (e.g. a PUBLIC_URL of
   * `http://localhost:PORT`); asynchronous when something must be started for them first (an OpenID
   * provider that registers the callback URL on that port).
   */
  env?: (port: number) => Record<string, string> | Promise<Record<string, string>>;
}

/**
 * Declares the enclosing describe's hooks: before its tests, build the web page, start a gatepass
 * process with ADMIN on a private SQLite database and launch Chromium; after them, stop both.
 */
export function useInstanceAndBrowser(options: InstanceOptions = {}): BrowserFixture {
  let instance: Instance | undefined;
  let browser: Browser | undefined;
  let dataDir: string | undefined;

  before(async () => {
    // The instance runs from source but serves the built page: build it now, from the current source.
    execFileSync(process.execPath, ['scripts/build-web.mjs'], { cwd: REPO_ROOT, stdio: 'pipe', timeout: 60_000 });
    mkdirSync(SCREENSHOTS, { recursive: true });
    dataDir = mkdtempSync(path.join(tmpdir(), 'gatepass-e2e-'));
    const port = await freePort();
    instance = await startInstance(
      {
        JWT_SECRET: randomBytes(32).toString('hex'),
        JWT_REFRESH_SECRET: randomBytes(32).toString('hex'),
        DATABASE_URL: `sqlite:${path.join(dataDir, 'gatepass.db')}`,
        GATEPASS_DATA_DIR: dataDir,
        ADMIN_EMAIL: ADMIN.email,
        ADMIN_PASSWORD: ADMIN.password,
        LOGIN_RATE_LIMIT_PER_MINUTE: '0',
        ACCOUNT_LOCKOUT_THRESHOLD: '0',
        ...(await options.env?.(port)),
      },
      undefined,
      undefined,
      { port },
    );
    browser = await chromium.launch({ executablePath: CHROME_PATH, args: CHROME_ARGS, timeout: 30_000 });
  });

  after(async () => {
    await browser?.close();
    await instance?.stop();
    if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
  });

  const fixture: BrowserFixture = {
    get instance() {
      assert.ok(instance !== undefined, 'the gatepass instance is started by the before hook');
      return instance;
    },
    get browser() {
      assert.ok(browser !== undefined, 'Chromium is launched by the before hook');
      return browser;
    },
    get outboxDir() {
      assert.ok(dataDir !== undefined, 'the data directory is made by the before hook');
      return path.join(dataDir, 'outbox');
    },
    async auditedEvents(userId, event) {
      const url = fixture.instance.url;
      const login = await fetch(`${url}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(ADMIN),
      });
      assert.equal(login.status, 200);
      const { access_token: token } = (await login.json()) as { access_token: string };
      const audit = await fetch(`${url}/admin/audit?user_id=${userId}&event=${event}&limit=200`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(audit.status, 200);
      return ((await audit.json()) as { items: unknown[] }).items.length;
    },
    refreshesOf(userId) {
      return fixture.auditedEvents(userId, 'refresh');
    },
    async newPage(viewport = { width: 1280, height: 900 }) {
      const context = await fixture.browser.newContext({ viewport });
      const page = await context.newPage();
      page.setDefaultTimeout(15_000);
      return { context, page, problems: watchPage(page) };
    },
  };
  return fixture;
}
