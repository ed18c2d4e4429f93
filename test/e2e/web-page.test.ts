import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { registerWebPage } from '../../src/http/web.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { REPO_ROOT } from '../helpers/instances.js';

describe('the web page as served at /', () => {
  let t: TestApp;
  before(async () => {
    execFileSync(process.execPath, ['scripts/build-web.mjs'], { cwd: REPO_ROOT, stdio: 'pipe', timeout: 60_000 });
    t = await createTestApp('sqlite');
  });
  after(() => t.close());

  it('serves the built page under the CSP, with scripts and styles from the server only', async () => {
    const page = await t.app.inject({ method: 'GET', url: '/' });
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /script-src 'self'(;|$)/);
    const scripts = [...page.body.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    assert.ok(scripts.length > 0);
    for (const [, attributes = '', content = ''] of scripts) {
      assert.match(attributes, /\bsrc="\/assets\/[\w.-]+\.js"/, 'no inline script');
      assert.equal(content.trim(), '');
    }
    assert.doesNotMatch(page.body, /\bon[a-z]+="/i, 'no inline event handlers');
    assert.doesNotMatch(page.body, /https?:\/\//, 'nothing from a CDN');
    const assets = [...page.body.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((match) => match[1] ?? '');
    assert.deepEqual(assets.sort(), ['/assets/app.css', '/assets/app.js']);
    for (const asset of assets) {
      const answer = await t.app.inject({ method: 'GET', url: asset });
      assert.equal(answer.statusCode, 200, asset);
      assert.match(String(answer.headers['content-type']), asset.endsWith('.js') ? /javascript/ : /text\/css/);
    }
    const bundle = (await t.app.inject({ method: 'GET', url: '/assets/app.js' })).body;
    assert.doesNotMatch(bundle, /localStorage|sessionStorage/, 'the page keeps tokens in memory only');
  });

  it('leaves the API alone: unknown paths stay JSON 404s, other methods on / too, and / is not in the OpenAPI document', async () => {
    for (const url of ['/assets/missing.js', '/nope', '/index.htm']) {
      const answer = await t.app.inject({ method: 'GET', url });
      assert.equal(answer.statusCode, 404, url);
      assert.deepEqual(answer.json(), { detail: 'Not Found', code: 'not_found' });
    }
    const post = await t.app.inject({ method: 'POST', url: '/', payload: {} });
    assert.equal(post.statusCode, 404);
    assert.equal((await t.app.inject({ method: 'GET', url: '/ping' })).json<{ message: string }>().message, 'pong');
    const paths = Object.keys(
      (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json<{ paths: Record<string, unknown> }>().paths,
    );
    assert.ok(paths.includes('/users/me'));
    assert.ok(!paths.includes('/') && !paths.some((p) => p.startsWith('/assets')), paths.join(' '));
  });

  it('without a built page, / answers a JSON 404 that says how to build it', async () => {
    const empty = mkdtempSync(path.join(tmpdir(), 'gatepass-noweb-'));
    const app = Fastify();
    try {
      await registerWebPage(app, empty);
      const answer = await app.inject({ method: 'GET', url: '/' });
      assert.equal(answer.statusCode, 404);
      assert.deepEqual(answer.json(), { detail: 'The web page is not built; run `npm run build`', code: 'not_found' });
    } finally {
      await app.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
