import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ADMIN_ENV, ADMIN_PASSWORD, loginAdmin, signUpTeacher } from '../helpers/admin.js';
import { type Backend, createTestApp, type TestApp } from '../helpers/app.js';
import { auditPage } from '../helpers/audit.js';
import { assertError, call, forgot, get, login, post, refresh, refreshed, register, signUp } from '../helpers/client.js';
import { assertForbidden, assertNoSecrets, assertNotAuthenticated, assertTokenRejected } from '../helpers/responses.js';

/** GET /metrics (API.md): protected by default, with METRICS_TOKEN, public, or off. */

/** The value of one sample line (`name{labels} value`) of a Prometheus text body, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1).trim());
}

function requireSample(text: string, series: string): number {
  const value = sample(text, series);
  assert.ok(value !== undefined && !Number.isNaN(value), `no sample ${series} in:\n${text}`);
  return value;
}

const PID = process.pid;

export function defineMetricsSuite(backend: Backend): void {
  describe(`GET /metrics, protected by default (${backend})`, () => {
    let t: TestApp;
    let adminToken: string;
    let studentToken: string;
    let teacherToken: string;
    before(async () => {
      t = await createTestApp(backend, {
        ...ADMIN_ENV,
        ACCOUNT_LOCKOUT_THRESHOLD: '2',
        REFRESH_REUSE_GRACE_SECONDS: '0',
        LOGIN_RATE_LIMIT_PER_MINUTE: '20',
      });
      adminToken = (await loginAdmin(t.app)).tokens.access_token; // login 1, session 1
      studentToken = (await signUp(t.app)).tokens.access_token; // login 2, session 2
      teacherToken = (await signUpTeacher(t.app, adminToken)).tokens.access_token; // login 3, session 3
    });
    after(() => t.close());

    const scrape = (options: { token?: string; authorization?: string } = {}) => call(t.app, 'GET', '/metrics', options);

    it('no auth → 401 Not authenticated; a garbage token → 401 invalid_token; a student or teacher → 403', async () => {
      assertNotAuthenticated(await scrape());
      assertTokenRejected(await scrape({ token: 'scrape-secret-123' }), 'Could not validate credentials', 'invalid_token');
      assertForbidden(await scrape({ token: studentToken }));
      assertForbidden(await scrape({ token: teacherToken }));
    });

    it("an admin's token → 200 Prometheus text with the event counters, rate limits, verification times, active sessions and process metrics", async () => {
      const user = await signUp(t.app); // login 4, session 4
      const second = await login(t.app, user); // login 5, session 5
      await refreshed(t.app, second.refresh_token); // refresh 1
      assert.equal((await refresh(t.app, second.refresh_token)).statusCode, 401); // refresh_reuse_detected 1; session 5 revoked
      assert.equal((await post(t.app, '/auth/login', { email: user.email, password: `${user.password}x` })).statusCode, 401); // login_failure 1
      assert.equal((await post(t.app, '/auth/login', { email: `ghost.${PID}@example.com`, password: user.password })).statusCode, 401); // login_failure 2
      const victim = await register(t.app);
      for (let attempt = 1; attempt <= 2; attempt += 1) {
        assert.equal((await post(t.app, '/auth/login', { email: victim.email, password: `${victim.password}x` })).statusCode, 401); // login_failure 3, 4
      }
      assert.equal((await post(t.app, '/auth/login', victim)).statusCode, 429); // login_locked 1
      for (let attempt = 1; attempt <= 21; attempt += 1) {
        const response = await forgot(t.app, `flood.${attempt}.${PID}@example.com`, { remoteAddress: '203.0.113.9' });
        assert.equal(response.statusCode, attempt <= 20 ? 202 : 429, `forgot ${attempt}`);
      }

      const response = await scrape({ token: adminToken });
      assert.equal(response.statusCode, 200, response.body);
      assert.match(String(response.headers['content-type']), /^text\/plain/);
      const text = response.body;
      assert.match(text, /^# TYPE gatepass_events_total counter$/m);
      assert.equal(requireSample(text, 'gatepass_events_total{event="login_success"}'), 5);
      assert.equal(requireSample(text, 'gatepass_events_total{event="login_failure"}'), 4);
      assert.equal(requireSample(text, 'gatepass_events_total{event="refresh"}'), 1);
      assert.equal(requireSample(text, 'gatepass_events_total{event="refresh_reuse_detected"}'), 1);
      assert.equal(requireSample(text, 'gatepass_events_total{event="login_locked"}'), 1);
      assert.equal(requireSample(text, 'gatepass_rate_limited_total{bucket="password-forgot"}'), 1);
      assert.ok(requireSample(text, 'gatepass_token_verification_seconds_bucket{le="+Inf"}') > 0, text);
      assert.ok(requireSample(text, 'gatepass_token_verification_seconds_count') > 0, text);
      assert.equal(requireSample(text, 'gatepass_active_sessions'), 4);
      assert.ok(requireSample(text, 'gatepass_process_cpu_user_seconds_total') > 0, text);
      assertNoSecrets(text, [ADMIN_PASSWORD, user.password, victim.password, adminToken], '/metrics');

      // The counters agree with the audit trail.
      const failures = (await auditPage(t.app, adminToken, { event: 'login_failure', limit: 200 })).body.items.length;
      assert.equal(failures, 4);
    });
  });

  describe(`GET /metrics with METRICS_TOKEN (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend, { METRICS_TOKEN: 'scrape-secret-123' });
    });
    after(() => t.close());

    it('Bearer METRICS_TOKEN → 200; a wrong token → 401 Could not validate credentials; none → 401; a student → 403', async () => {
      const ok = await call(t.app, 'GET', '/metrics', { authorization: 'Bearer scrape-secret-123' });
      assert.equal(ok.statusCode, 200, ok.body);
      assert.match(String(ok.headers['content-type']), /^text\/plain/);
      assert.match(ok.body, /^gatepass_active_sessions 0$/m);
      assert.ok(!ok.body.includes('scrape-secret-123'));
      assertTokenRejected(
        await call(t.app, 'GET', '/metrics', { authorization: 'Bearer scrape-secret-124' }),
        'Could not validate credentials',
        'invalid_token',
      );
      assertTokenRejected(
        await call(t.app, 'GET', '/metrics', { authorization: 'Bearer scrape-secret-12' }),
        'Could not validate credentials',
        'invalid_token',
      );
      assertNotAuthenticated(await call(t.app, 'GET', '/metrics', { authorization: 'Basic scrape-secret-123' }));
      assertNotAuthenticated(await call(t.app, 'GET', '/metrics'));
      const student = await signUp(t.app);
      assertForbidden(await call(t.app, 'GET', '/metrics', { token: student.tokens.access_token }));
    });
  });

  describe(`GET /metrics with METRICS=public and METRICS=off (${backend})`, () => {
    let open: TestApp;
    let off: TestApp;
    before(async () => {
      open = await createTestApp(backend, { METRICS: 'public' });
      off = await createTestApp(backend, { METRICS: 'off' });
    });
    after(async () => {
      await open.close();
      await off.close();
    });

    it('public: 200 without any credentials', async () => {
      const response = await get(open.app, '/metrics');
      assert.equal(response.statusCode, 200, response.body);
      assert.match(String(response.headers['content-type']), /^text\/plain/);
      assert.match(response.body, /^# TYPE gatepass_events_total counter$/m);
    });

    it('off: 404 Not Found, with or without credentials', async () => {
      assertError(await get(off.app, '/metrics'), 404, 'Not Found', 'not_found');
      const user = await signUp(off.app);
      assertError(await get(off.app, '/metrics', user.tokens.access_token), 404, 'Not Found', 'not_found');
    });
  });
}
