import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import type { GatepassApp } from '../../src/http/app.js';
import { isHmacAlgorithm } from '../../src/tokens/jws.js';
import { type Backend, createTestApp, type TestApp } from '../helpers/app.js';
import { get, type Method, send } from '../helpers/client.js';
import { assertValidation } from '../helpers/responses.js';

/**
 * Health, docs and robustness (API.md): /ping and the health checks, the OpenAPI document and its
 * pages, and answers to malformed bodies, wrong content types and oversized input.
 */

/** A request with a raw body and explicit headers, for the robustness checks. */
function raw(
  app: GatepassApp,
  method: Method,
  url: string,
  payload: string,
  headers: Record<string, string>,
): Promise<LightMyRequestResponse> {
  return app.inject({ method, url, payload, headers });
}

export function defineHealthSuite(backend: Backend): void {
  describe(`health, docs and robustness (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    it('GET /ping answers exactly {"status":"ok","message":"pong"}', async () => {
      const response = await get(t.app, '/ping');
      assert.equal(response.statusCode, 200);
      assert.deepEqual(response.json(), { status: 'ok', message: 'pong' });
    });

    it('GET /health/ready answers 200 with status ok when the database answers', async () => {
      const response = await get(t.app, '/health/ready');
      assert.equal(response.statusCode, 200, response.body);
      assert.equal(response.json<{ status: string }>().status, 'ok');
    });

    it('GET /.well-known/jwks.json publishes no key for HMAC, and only the public signing key for key pairs', async () => {
      const response = await get(t.app, '/.well-known/jwks.json');
      assert.equal(response.statusCode, 200);
      const { keys } = response.json<{ keys: Record<string, string>[] }>();
      if (isHmacAlgorithm(t.settings.jwt.algorithm)) assert.deepEqual(keys, []);
      else {
        assert.equal(keys.length, 1);
        assert.equal(keys[0]?.alg, t.settings.jwt.algorithm);
        assert.equal(keys[0].use, 'sig');
        for (const privateMember of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) assert.equal(keys[0][privateMember], undefined, privateMember);
      }
      assert.ok(!response.body.includes(t.settings.jwt.accessSecret));
      assert.ok(!response.body.includes(t.settings.jwt.refreshSecret));
    });

    it('an unknown route answers 404 {"detail":"Not Found","code":"not_found"}', async () => {
      for (const [method, url] of [
        ['GET', '/no/such/route'],
        ['POST', '/auth/nothing'],
        ['DELETE', '/users'],
      ] as const) {
        const response = await send(t.app, method, url);
        assert.equal(response.statusCode, 404, `${method} ${url}: ${response.body}`);
        assert.deepEqual(response.json(), { detail: 'Not Found', code: 'not_found' });
      }
    });

    it('malformed JSON answers 422 json_invalid, not 500', async () => {
      for (const url of ['/auth/login', '/auth/register', '/auth/refresh']) {
        const response = await raw(t.app, 'POST', url, '{"email": "a@example.com", ', { 'content-type': 'application/json' });
        const detail = assertValidation(response);
        assert.ok(
          detail.some((item) => item.type === 'json_invalid'),
          `${url}: ${response.body}`,
        );
      }
    });

    it('a Content-Type other than JSON or form answers 415 unsupported_media_type', async () => {
      for (const contentType of ['text/plain', 'application/xml']) {
        const response = await raw(t.app, 'POST', '/auth/login', '{"email":"a@example.com","password":"whatever-pw"}', {
          'content-type': contentType,
        });
        assert.equal(response.statusCode, 415, `${contentType}: ${response.body}`);
        const body = response.json<{ detail: string; code: string }>();
        assert.deepEqual(Object.keys(body).sort(), ['code', 'detail']);
        assert.equal(body.code, 'unsupported_media_type');
        assert.ok(body.detail.length > 0);
      }
    });

    it('a JSON body over 16 KiB on /auth/login answers 413 payload_too_large', async () => {
      const payload = JSON.stringify({ email: 'big@example.com', password: 'x'.repeat(17 * 1024) });
      const response = await raw(t.app, 'POST', '/auth/login', payload, { 'content-type': 'application/json' });
      assert.equal(response.statusCode, 413, response.body);
      assert.deepEqual(response.json(), { detail: 'Request body is too large', code: 'payload_too_large' });
    });

    it('an empty JSON body answers 422', async () => {
      for (const url of ['/auth/login', '/auth/register', '/auth/refresh']) {
        const response = await raw(t.app, 'POST', url, '', { 'content-type': 'application/json' });
        assertValidation(response);
      }
    });

    it('a JSON array or scalar as the body answers 422', async () => {
      for (const payload of ['[]', '[{"email":"a@example.com","password":"whatever-pw"}]', '"text"', '42', 'null']) {
        const response = await raw(t.app, 'POST', '/auth/login', payload, { 'content-type': 'application/json' });
        assertValidation(response);
      }
    });

    it('GET /openapi.json is an OpenAPI 3 document of every route', async () => {
      const response = await get(t.app, '/openapi.json');
      assert.equal(response.statusCode, 200);
      const doc = response.json<{
        openapi: string;
        paths: Record<string, Record<string, { security?: unknown; requestBody?: { content?: Record<string, unknown> } }>>;
        components?: { securitySchemes?: Record<string, { type?: string; flows?: { password?: { tokenUrl?: string } } }> };
      }>();
      assert.match(doc.openapi, /^3\./);
      const expected: Record<string, string[]> = {
        '/ping': ['get'],
        '/health/ready': ['get'],
        '/.well-known/jwks.json': ['get'],
        '/auth/register': ['post'],
        '/register': ['post'],
        '/auth/login': ['post'],
        '/login': ['post'],
        '/auth/refresh': ['post'],
        '/auth/logout': ['post'],
        '/users/me': ['get', 'patch'],
        '/users/me/status': ['get'],
        '/users/me/deactivate': ['put'],
        '/tasks': ['get', 'post'],
        '/tasks/{id}': ['get', 'patch', 'delete'],
      };
      for (const [path, methods] of Object.entries(expected)) {
        const item = doc.paths[path];
        assert.ok(item !== undefined, `${path} missing from ${Object.keys(doc.paths).join(', ')}`);
        for (const method of methods) assert.ok(item[method] !== undefined, `${method.toUpperCase()} ${path} missing`);
      }
      const scheme = doc.components?.securitySchemes?.OAuth2PasswordBearer;
      assert.ok(scheme !== undefined, 'OAuth2PasswordBearer security scheme missing');
      assert.equal(scheme.type, 'oauth2');
      assert.equal(scheme.flows?.password?.tokenUrl, '/auth/login');
      // Protected routes name the scheme, so Swagger UI sends the token.
      assert.deepEqual(doc.paths['/users/me']?.get?.security, [{ OAuth2PasswordBearer: [] }]);
      assert.deepEqual(doc.paths['/tasks']?.post?.security, [{ OAuth2PasswordBearer: [] }]);
      const loginContent = doc.paths['/auth/login']?.post?.requestBody?.content ?? {};
      assert.ok('application/json' in loginContent, JSON.stringify(loginContent));
      assert.ok('application/x-www-form-urlencoded' in loginContent, JSON.stringify(loginContent));
      // No secret in the document.
      assert.ok(!response.body.includes(t.settings.jwt.accessSecret));
    });

    it('GET /docs serves the Swagger UI HTML (after a redirect, if any)', async () => {
      let url = '/docs';
      let response = await get(t.app, url);
      for (let hops = 0; hops < 5 && response.statusCode >= 300 && response.statusCode < 400; hops += 1) {
        const location = response.headers.location;
        assert.ok(typeof location === 'string', 'redirect without Location');
        const next = new URL(location, `http://localhost${url}`);
        url = next.pathname + next.search;
        response = await get(t.app, url);
      }
      assert.equal(response.statusCode, 200, `${url}: ${response.body.slice(0, 200)}`);
      assert.match(String(response.headers['content-type']), /^text\/html/);
      assert.match(response.body, /<html/i);
    });
  });
}
