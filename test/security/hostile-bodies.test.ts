import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { MAX_JSON_DEPTH, MAX_JSON_MEMBERS, MAX_JSON_STRING_LENGTH } from '../../src/http/body-parsing.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { get, post, signUp, type Method } from '../helpers/client.js';

/**
 * Issue 12, property 1 (bounded parsing): JSON depth, member count and string sizes are bounded by a
 * linear scan of the raw text before anything walks the parsed value, so hostile bodies answer 4xx
 * in API.md's shape — never 5xx — and the server keeps answering. Every route that takes a body is
 * found in the app's own OpenAPI document, so a route added later is covered without editing this file.
 */

/** Codes with which the auth guard refuses an access token (API.md "Access-token errors"). */
const ACCESS_TOKEN_CODES = new Set(['not_authenticated', 'invalid_token', 'token_expired', 'token_revoked']);

const ADMIN_EMAIL = 'root@example.com';
const ADMIN_PASSWORD = 'Root-Passphrase-For-Hostile-Bodies-1';

interface BodyRoute {
  method: Method;
  /** The OpenAPI path with every `{param}` filled in. */
  url: string;
  /** Names of the body's top-level properties in the route's JSON schema. */
  fields: string[];
  contentTypes: string[];
  secured: boolean;
}

/** A hostile body, the content type it is sent as, and its name in failure messages. */
interface HostileBody {
  name: string;
  contentType: string;
  payload: string;
}

/**
 * Bodies past the bounds of src/http/body-parsing.ts, or carrying what no field may hold. Most stay
 * under the 16 KiB limit of the auth routes so that they reach the parser rather than the 413 in
 * front of it; those that cannot (a string longer than the string bound) answer 413 there and 422
 * on the routes with the larger limit.
 */
function hostileJsonBodies(fields: string[]): HostileBody[] {
  const json = (name: string, payload: string): HostileBody => ({ name, contentType: 'application/json', payload });
  const field = fields[0] ?? 'x';
  const tooWide = MAX_JSON_MEMBERS + 500;
  const tooLong = MAX_JSON_STRING_LENGTH + 1;
  const wideObject = `{${Array.from({ length: tooWide }, (_, i) => `"k${i}":0`).join(',')}}`;
  const wideArray = `[${Array.from({ length: 5000 }, () => '0').join(',')}]`;
  return [
    json('8,000 nested arrays', '['.repeat(8000) + ']'.repeat(8000)),
    json('2,700 nested objects', '{"a":'.repeat(2700) + '1' + '}'.repeat(2700)),
    json(`7,000 nested arrays in "${field}"`, `{"${field}":${'['.repeat(7000)}${']'.repeat(7000)}}`),
    json(`nesting one level past the bound in "${field}"`, `{"${field}":${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}}`),
    json('2,700 nested objects, unclosed', '{"a":'.repeat(2700)),
    json('7,000 nested arrays, then garbage', `${'['.repeat(7000)}"x\\`),
    json(`${tooWide} keys in one object`, wideObject),
    json(`${tooWide} keys beside "${field}"`, wideObject.replace('{', `{"${field}":"x",`)),
    json('5,000 items in one array', wideArray),
    json(`5,000 items in "${field}"`, `{"${field}":${wideArray}}`),
    json(`${tooWide} copies of "${field}"`, `{${Array.from({ length: tooWide }, () => `"${field}":0`).join(',')}}`),
    ...fields.map((name) => json(`a ${tooLong}-character "${name}"`, JSON.stringify({ [name]: 'a'.repeat(tooLong) }))),
    ...fields.map((name) => json(`a NUL byte in "${name}"`, JSON.stringify({ [name]: 'before\u0000after' }))),
    ...fields.map((name) => json(`2,500 escaped NULs in "${name}"`, `{"${name}":"${'\\u0000'.repeat(2500)}"}`)),
    json(`${tooLong} escaped backslashes in "${field}"`, `{"${field}":"${'\\\\'.repeat(tooLong)}"}`),
    json(`${tooLong} escaped characters in "${field}"`, `{"${field}":"${'\\u00e9'.repeat(tooLong)}"}`),
    json('an unterminated escape', `{"${field}":"\\`),
    json('an invalid escape', `{"${field}":"\\x41"}`),
    json(`a ${tooLong}-character key`, `{"${'k'.repeat(tooLong)}":1}`),
    json('a NUL byte in a key', '{"a\\u0000b":"x"}'),
  ];
}

function hostileFormBodies(fields: string[]): HostileBody[] {
  const form = (name: string, payload: string): HostileBody => ({ name, contentType: 'application/x-www-form-urlencoded', payload });
  const field = fields[0] ?? 'x';
  const tooWide = MAX_JSON_MEMBERS + 500;
  return [
    form('5,000 fields', Array.from({ length: 5000 }, () => 'a=').join('&')),
    form(`${tooWide} copies of "${field}"`, Array.from({ length: tooWide }, () => `${field}=x`).join('&')),
    form('a deep bracketed name', `a${'[a]'.repeat(5000)}=1`),
    form(`a ${MAX_JSON_STRING_LENGTH + 1}-character value`, `${field}=${'a'.repeat(MAX_JSON_STRING_LENGTH + 1)}`),
    form('a NUL byte', `${field}=a%00b`),
    form('5,000 escaped NULs', `${field}=${'%00'.repeat(5000)}`),
    form('broken escapes', `${field}=${'%'.repeat(5000)}`),
  ];
}

interface OpenApiOperation {
  requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> };
  security?: unknown[];
}

/** Every operation of /openapi.json with a request body. */
async function bodyRoutes(app: TestApp['app']): Promise<BodyRoute[]> {
  const document = (await get(app, '/openapi.json')).json<{ paths: Record<string, Record<string, OpenApiOperation>> }>();
  const routes: BodyRoute[] = [];
  for (const [pathTemplate, operations] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      const content = operation.requestBody?.content;
      if (content === undefined) continue;
      const fields = new Set<string>();
      for (const media of Object.values(content)) for (const name of Object.keys(media.schema?.properties ?? {})) fields.add(name);
      routes.push({
        method: method.toUpperCase() as Method,
        // The body is parsed before path parameters are validated and before the handler looks
        // anything up, so any id reaches the parser; 1 exists anyway (the admin, the first task).
        url: pathTemplate.replace(/\{[^}]+\}/g, '1'),
        fields: [...fields],
        contentTypes: Object.keys(content),
        secured: (operation.security ?? []).length > 0,
      });
    }
  }
  return routes;
}

function assertRefusedInShape(response: LightMyRequestResponse, context: string): void {
  assert.ok(response.statusCode >= 400 && response.statusCode < 500, `${context} → ${response.statusCode} ${response.body.slice(0, 300)}`);
  const body = response.json<Record<string, unknown>>();
  assert.ok('detail' in body && typeof body.code === 'string', `${context} → ${response.body.slice(0, 300)}`);
  assert.ok(!('error' in body), `${context} → ${response.body.slice(0, 300)}`);
}

describe('hostile bodies on every route that takes one', () => {
  let t: TestApp;
  let routes: BodyRoute[];
  let userToken: string;
  let adminToken: string;
  before(async () => {
    t = await createTestApp('sqlite', { ADMIN_EMAIL, ADMIN_PASSWORD, LOG_LEVEL: 'silent' });
    routes = await bodyRoutes(t.app);
    const user = await signUp(t.app);
    userToken = user.tokens.access_token;
    assert.equal((await post(t.app, '/tasks', { title: 'first task' }, userToken)).statusCode, 201);
    const admin = await post(t.app, '/auth/login', { email: ADMIN_EMAIL, password: ADMIN_PASSWORD });
    assert.equal(admin.statusCode, 200, admin.body);
    adminToken = admin.json<{ access_token: string }>().access_token;
  });
  after(() => t.close());

  it('the OpenAPI document lists the body routes of API.md', () => {
    const listed = new Set(routes.map((route) => `${route.method} ${route.url}`));
    for (const expected of [
      'POST /auth/register',
      'POST /auth/login',
      'POST /auth/refresh',
      'PATCH /users/me',
      'POST /tasks',
      'PATCH /admin/users/1',
    ]) {
      assert.ok(listed.has(expected), `${expected} missing from ${[...listed].join(', ')}`);
    }
  });

  it('answers every deep, wide, long, NUL and escape-laden body with a 4xx {detail, code}, and keeps answering /ping', async () => {
    let sent = 0;
    for (const route of routes) {
      const token = !route.secured ? undefined : route.url.startsWith('/admin') ? adminToken : userToken;
      const bodies = [
        ...hostileJsonBodies(route.fields),
        ...(route.contentTypes.includes('application/x-www-form-urlencoded') ? hostileFormBodies(route.fields) : []),
      ];
      for (const body of bodies) {
        const response = await t.app.inject({
          method: route.method,
          url: route.url,
          payload: body.payload,
          headers: { 'content-type': body.contentType, ...(token !== undefined && { authorization: `Bearer ${token}` }) },
        });
        const context = `${route.method} ${route.url} with ${body.name}`;
        assertRefusedInShape(response, context);
        // A refused access token would mean the body was never parsed: the case would prove nothing.
        if (route.secured)
          assert.ok(
            !ACCESS_TOKEN_CODES.has(response.json<{ code: string }>().code),
            `${context}: the token was refused (${response.body})`,
          );
        assert.equal((await get(t.app, '/ping')).statusCode, 200, `/ping after ${context}`);
        sent += 1;
      }
    }
    assert.ok(sent >= routes.length * 20, `only ${sent} hostile bodies sent`);
    // No hostile body got as far as ending the session its token belongs to.
    assert.equal((await get(t.app, '/users/me', userToken)).statusCode, 200);
    assert.equal((await get(t.app, '/users/me', adminToken)).statusCode, 200);
  });

  it("refuses nesting past the bound as a 422 in FastAPI's shape, and accepts nesting at the bound", async () => {
    const nested = (depth: number) => `{"refresh_token":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;
    const over = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      payload: nested(MAX_JSON_DEPTH + 1),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(over.statusCode, 422, over.body);
    assert.deepEqual(over.json(), {
      detail: [{ loc: ['body'], msg: `JSON nested deeper than ${MAX_JSON_DEPTH} levels`, type: 'json_too_deep' }],
      code: 'validation_error',
    });
    // At the bound the body is parsed and reaches the schema, which wants a string there.
    const at = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      payload: nested(MAX_JSON_DEPTH),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(at.statusCode, 422, at.body);
    assert.deepEqual(
      at.json<{ detail: { loc: unknown[]; type: string }[] }>().detail.map((issue) => [issue.loc, issue.type]),
      [[['body', 'refresh_token'], 'string_type']],
    );
  });

  it('refuses a container with more members than the bound, and a string longer than the bound', async () => {
    const wide = await post(
      t.app,
      '/tasks',
      { title: 'wide', ...Object.fromEntries(Array.from({ length: MAX_JSON_MEMBERS }, (_, i) => [`k${i}`, 0])) },
      userToken,
    );
    assert.equal(wide.statusCode, 422, wide.body);
    assert.deepEqual(wide.json(), {
      detail: [{ loc: ['body'], msg: `JSON object or array with more than ${MAX_JSON_MEMBERS} members`, type: 'json_too_wide' }],
      code: 'validation_error',
    });
    const long = await post(t.app, '/tasks', { title: 'long', description: 'é'.repeat(MAX_JSON_STRING_LENGTH + 1) }, userToken);
    assert.equal(long.statusCode, 422, long.body);
    assert.deepEqual(long.json(), {
      detail: [{ loc: ['body'], msg: `JSON string longer than ${MAX_JSON_STRING_LENGTH} characters`, type: 'json_string_too_long' }],
      code: 'validation_error',
    });
  });

  it('counts escapes as the characters they stand for, and never mistakes escaped quotes or brackets for structure', async () => {
    // 2,000 escaped quotes and brackets: a scanner that missed an escape would see 2,000 open arrays.
    const description = '"['.repeat(2000);
    const created = await post(t.app, '/tasks', { title: 'escapes', description }, userToken);
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(created.json<{ description: string }>().description, description);
    // 9,000 characters written as \uXXXX escapes (54,000 bytes, as Python's json.dumps sends them) stay under the bound.
    const accented = 'é'.repeat(9000);
    const escaped = JSON.stringify({ title: 'escaped', description: accented }).replace(/é/g, '\\u00e9');
    const response = await t.app.inject({
      method: 'POST',
      url: '/tasks',
      payload: escaped,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${userToken}` },
    });
    assert.equal(response.statusCode, 201, response.body);
    assert.equal(response.json<{ description: string }>().description, accented);
  });

  it('bounds urlencoded forms alike: fields, and the length of each', async () => {
    const form = (payload: string) =>
      t.app.inject({ method: 'POST', url: '/login', payload, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const wide = await form(Array.from({ length: MAX_JSON_MEMBERS + 1 }, (_, i) => (i === 0 ? 'username=a' : 'a=')).join('&'));
    assert.equal(wide.statusCode, 422, wide.body);
    assert.deepEqual(wide.json(), {
      detail: [{ loc: ['body'], msg: `Form with more than ${MAX_JSON_MEMBERS} fields`, type: 'form_too_wide' }],
      code: 'validation_error',
    });
    const nul = await form('username=a%00b&password=x');
    assert.equal(nul.statusCode, 422, nul.body);
    assert.deepEqual(nul.json<{ detail: unknown[] }>().detail[0], {
      loc: ['body', 'username'],
      msg: 'String should not contain NUL characters',
      type: 'string_nul',
    });
  });

  it('agrees with the parser on random JSON: refused for depth exactly when nested past the bound, whatever the strings hold', async () => {
    const depthOf = (value: unknown): number =>
      typeof value === 'object' && value !== null ? 1 + Math.max(0, ...Object.values(value).map(depthOf)) : 0;
    const boundTypes = new Set(['json_too_deep', 'json_too_wide', 'json_string_too_long']);
    // Strings full of quotes, backslashes, brackets and escapes: what a scan that missed one would misread.
    const tricky = fc.string({ unit: fc.constantFrom('"', '\\', '[', ']', '{', '}', ',', 'u', '0', 'a', '\n', '\u0001', 'é', '😀') });
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        tricky,
        fc.integer(),
        fc.constant(null),
        fc.array(tie('node'), { maxLength: 4 }),
        fc.dictionary(tricky, tie('node'), { maxKeys: 4 }),
      ),
    })).node;
    await fc.assert(
      fc.asyncProperty(value, fc.integer({ min: 0, max: MAX_JSON_DEPTH + 3 }), async (inner, wrappers) => {
        const payload = `{"x":${'['.repeat(wrappers)}${JSON.stringify(inner)}${']'.repeat(wrappers)}}`;
        const depth = 1 + wrappers + depthOf(inner);
        const response = await t.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          payload,
          headers: { 'content-type': 'application/json' },
        });
        assert.equal(response.statusCode, 422, response.body);
        const type = response.json<{ detail: { type: string }[] }>().detail[0]?.type ?? '';
        if (depth > MAX_JSON_DEPTH) assert.equal(type, 'json_too_deep', `depth ${depth}: ${payload.slice(0, 200)}`);
        else assert.ok(!boundTypes.has(type), `depth ${depth} refused as ${type}: ${payload.slice(0, 200)}`);
      }),
      { numRuns: 300 },
    );
  });

  it('reports a NUL byte with the location of the string, in a value or a key', async () => {
    const value = await post(t.app, '/tasks', { title: 'nul', description: ['ok', 'a\u0000b'] }, userToken);
    assert.equal(value.statusCode, 422, value.body);
    assert.deepEqual(value.json<{ detail: unknown[] }>().detail[0], {
      loc: ['body', 'description', 1],
      msg: 'String should not contain NUL characters',
      type: 'string_nul',
    });
    const key = await post(t.app, '/auth/refresh', { refresh_token: 'x', 'a\u0000b': 1 });
    assert.equal(key.statusCode, 422, key.body);
    assert.deepEqual(key.json<{ detail: unknown[] }>().detail[0], {
      loc: ['body', 'a\u0000b'],
      msg: 'String should not contain NUL characters',
      type: 'string_nul',
    });
  });
});
