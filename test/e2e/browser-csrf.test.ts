import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { it } from 'node:test';
import type { Page } from 'playwright-core';
import { describeNeeding } from '../helpers/app.js';
import {
  type AttackResult,
  refreshCookieOf,
  registerAndLogIn,
  responseTo,
  screenshot,
  stateOf,
  TEST_TIMEOUT_MS,
  useInstanceAndBrowser,
} from '../helpers/browser.js';
import { claimsOf, newCredentials } from '../helpers/client.js';

/** The cookie defences in Chromium: pages on another origin that try to use or plant a session, by form or by fetch. */

describeNeeding('the web page, Swagger UI and the cookie defences in Chromium', { chrome: true }, () => {
  const e2e = useInstanceAndBrowser();

  it(
    "a page on another origin can neither refresh nor read the victim's session, by fetch or by form",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const gatepass = e2e.instance.url;
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

      const { context, page, problems } = await e2e.newPage();
      try {
        const credentials = newCredentials();
        await page.goto(`${gatepass}/`);
        await stateOf(page, 'signed-out');
        await registerAndLogIn(page, credentials);
        const victimCookie = await refreshCookieOf(context);
        assert.ok(victimCookie !== undefined);
        const victimId = Number(claimsOf(await page.locator('#token-raw').innerText()).sub);
        const refreshesBefore = await e2e.refreshesOf(victimId);

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
        assert.deepEqual(await form.json(), {
          detail: 'Requests authenticated by cookie need the header X-Gatepass-Cookie: 1',
          code: 'csrf_failed',
        });
        assert.match(
          (await form.request().headerValue('cookie')) ?? '',
          /gatepass_refresh=/,
          'same-site: the cookie went along, and was refused',
        );
        await screenshot(evil, '5-csrf-same-site-form');

        // Another site (localhost vs 127.0.0.1): SameSite=Strict keeps the cookie home.
        await evil.goto(`http://localhost:${attackerPort}/`);
        const crossSiteScript = await evil.evaluate<AttackResult>('tryFetch()');
        assert.equal(crossSiteScript.reached, false, JSON.stringify(crossSiteScript));
        const crossSite = await responseTo(evil, `${gatepass}/auth/refresh`, () =>
          evil.getByRole('button', { name: 'win a prize' }).click(),
        );
        assert.equal((await crossSite.request().headerValue('cookie')) ?? '', '', 'cross-site: no cookie sent');
        assert.equal(crossSite.status(), 422, 'without the cookie there is nothing to refresh');
        await screenshot(evil, '5-csrf-cross-site-form');

        // None of it refreshed the victim's session (the server audits every refresh), nor rotated the
        // cookie; and the victim's session goes on.
        assert.equal(await e2e.refreshesOf(victimId), refreshesBefore);
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
    },
  );

  it(
    "a page on another origin can neither sign the browser in to the attacker's account (login CSRF) nor use the victim's cookie, by form or by fetch",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const gatepass = e2e.instance.url;
      const attackerAccount = newCredentials();
      const created = await fetch(`${gatepass}/auth/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(attackerAccount),
      });
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
      const attempt = (page: Page, path: string, init: Record<string, unknown>) =>
        page.evaluate<AttackResult>(`attempt(${JSON.stringify(path)}, ${JSON.stringify(init)})`);
      const jsonLogin = JSON.stringify({ email: attackerAccount.email, password: attackerAccount.password });
      const formLogin = new URLSearchParams({ username: attackerAccount.email, password: attackerAccount.password }).toString();

      const victim = await e2e.newPage();
      const target = await e2e.newPage();
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
        const victimBefore = { refresh: await e2e.refreshesOf(victimId), logout: await e2e.auditedEvents(victimId, 'logout') };
        const attackerLoginsBefore = await e2e.auditedEvents(attackerId, 'login_success');
        const evil = await victim.context.newPage();
        evil.setDefaultTimeout(15_000);

        for (const origin of attackerOrigins) {
          // The old login CSRF: a form that asks for cookie mode with ?cookie=true. Refused; no cookie.
          const form = await responseTo(target.page, `${gatepass}/auth/login?cookie=true`, () =>
            target.page.goto(`${origin}/login-form?query`),
          );
          assert.equal(form.status(), 422, origin);
          assert.deepEqual(await form.json(), {
            detail: [
              {
                loc: ['query', 'cookie'],
                msg: 'Cookie mode is asked for with the header X-Gatepass-Cookie: 1, not a query parameter',
                type: 'value_error',
              },
            ],
            code: 'validation_error',
          });
          assert.equal(await form.headerValue('set-cookie'), null);
          await screenshot(target.page, `7-login-csrf-form-${origin.includes('localhost') ? 'cross' : 'same'}-site`);

          // A script asking for cookie mode properly (the header) needs a CORS preflight, which gatepass refuses.
          await target.page.goto(`${origin}/`);
          const scripted = await attempt(target.page, '/auth/login', {
            headers: { 'Content-Type': 'application/json', 'X-Gatepass-Cookie': '1' },
            body: jsonLogin,
          });
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
        assert.equal(
          await e2e.auditedEvents(attackerId, 'login_success'),
          attackerLoginsBefore,
          'no cookie-mode login of the attacker reached the password check',
        );
        assert.equal(await refreshCookieOf(target.context), undefined, 'the signed-out browser holds no refresh cookie');
        assert.deepEqual({ refresh: await e2e.refreshesOf(victimId), logout: await e2e.auditedEvents(victimId, 'logout') }, victimBefore);
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
            {
              mode: 'no-cors',
              headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'X-Gatepass-Cookie': '1' },
              body: formLogin,
            },
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
        assert.deepEqual({ refresh: await e2e.refreshesOf(victimId), logout: await e2e.auditedEvents(victimId, 'logout') }, victimBefore);
        assert.equal((await refreshCookieOf(victim.context))?.value, victimCookie.value);
        await victim.page.bringToFront();
        assert.equal((await responseTo(victim.page, `${gatepass}/auth/refresh`, () => victim.page.reload())).status(), 200);
        await stateOf(victim.page, 'signed-in');
        assert.match(await victim.page.locator('#who').innerText(), new RegExp(credentials.email.replace(/\./g, '\\.')));
        assert.deepEqual(victim.problems, []);
        // The signed-out browser's tab visited the attacker's pages: Chromium reports the refused preflights there.
        assert.deepEqual(
          target.problems.filter((problem) => !/^console: Access to fetch at .* has been blocked by CORS policy/.test(problem)),
          [],
        );
      } finally {
        await victim.context.close();
        await target.context.close();
        await new Promise((resolve) => attacker.close(resolve));
      }
    },
  );
});
