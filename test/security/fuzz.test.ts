import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { get, signUp, type Method } from '../helpers/client.js';
import { HS256_HEADER, accessClaims, assertAccepted, bearer, hs, refresh, withAuthorization } from './kit.js';

/**
 * Property-based attacks with fast-check over real HTTP handling (`app.inject`). Every property
 * asserts: no 5xx, the app still answers afterwards, errors are API.md's JSON (no stack trace,
 * ASVS V7.4.1), and a token that is not byte-for-byte a genuine one is never accepted.
 * Runs are bounded (NUM_RUNS per property) so the file stays within a few seconds.
 */

const NUM_RUNS = 300;
const TOKEN_CODES = new Set(['invalid_token', 'not_authenticated']);

/** Visible ASCII, tab, and Latin-1: what an HTTP/1.1 header value may carry (RFC 9110 §5.5). */
const headerChar = fc
  .oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.constant(0x09), fc.integer({ min: 0x80, max: 0xff }))
  .map((code) => String.fromCharCode(code));
const headerValue = fc.string({ unit: headerChar, maxLength: 300 });
const base64urlSegment = fc.string({
  unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('')),
  maxLength: 120,
});
/** Header names that matter to JOSE or to JavaScript objects. */
const joseKey = fc.constantFrom(
  'alg',
  'typ',
  'cty',
  'kid',
  'crit',
  'b64',
  'jwk',
  'jku',
  'x5u',
  'x5c',
  'x5t',
  'toString',
  'valueOf',
  '__proto__',
  'constructor',
  'hasOwnProperty',
);

type Mutation =
  | { kind: 'flip'; index: number; bit: number }
  | { kind: 'insert'; index: number; char: string }
  | { kind: 'delete'; index: number }
  | { kind: 'replace'; index: number; char: string };

const mutationChar = fc.oneof(
  fc.constantFrom(...'AQgw_-.=+/ %\t\u0000é'.split('')),
  fc.integer({ min: 0x21, max: 0x7e }).map((code) => String.fromCharCode(code)),
);
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), index: fc.nat(), bit: fc.integer({ min: 0, max: 6 }) }),
  fc.record({ kind: fc.constant('insert' as const), index: fc.nat(), char: mutationChar }),
  fc.record({ kind: fc.constant('delete' as const), index: fc.nat() }),
  fc.record({ kind: fc.constant('replace' as const), index: fc.nat(), char: mutationChar }),
);

function mutate(token: string, mutations: Mutation[]): string {
  let result = token;
  for (const step of mutations) {
    const index = result.length === 0 ? 0 : step.index % (result.length + (step.kind === 'insert' ? 1 : 0));
    switch (step.kind) {
      case 'flip':
        if (result.length > 0)
          result = result.slice(0, index) + String.fromCharCode(result.charCodeAt(index) ^ (1 << step.bit)) + result.slice(index + 1);
        break;
      case 'insert':
        result = result.slice(0, index) + step.char + result.slice(index);
        break;
      case 'delete':
        result = result.slice(0, index) + result.slice(index + 1);
        break;
      case 'replace':
        result = result.slice(0, index) + step.char + result.slice(index + 1);
        break;
    }
  }
  return result;
}

/** No 5xx, and any error is API.md's JSON shape without internals (ASVS V7.4.1). */
function assertHandled(response: LightMyRequestResponse, context: string): void {
  assert.ok(response.statusCode < 500, `${context} → ${response.statusCode} ${response.body.slice(0, 300)}`);
  if (response.statusCode >= 400) {
    const body = response.json<{ detail?: unknown; code?: unknown }>();
    assert.equal(typeof body.code, 'string', `${context} → ${response.body.slice(0, 300)}`);
    assert.ok(!/\bat .+\.(ts|js):\d+/.test(response.body), `stack trace leaked: ${response.body.slice(0, 300)}`);
  }
}

function assertTokenRefused(response: LightMyRequestResponse, context: string): void {
  assertHandled(response, context);
  assert.equal(response.statusCode, 401, `${context} → ${response.statusCode} ${response.body.slice(0, 300)}`);
  assert.ok(TOKEN_CODES.has(response.json<{ code: string }>().code), `${context} → ${response.body}`);
}

describe('fuzzing over HTTP with fast-check (HS256 server)', () => {
  let t: TestApp;
  let user: Awaited<ReturnType<typeof signUp>>;
  before(async () => {
    t = await createTestApp('sqlite');
    user = await signUp(t.app);
  });
  after(() => t.close());

  /** After each property: the process is alive and the genuine token still works. */
  async function assertStillServing(): Promise<void> {
    assert.equal((await get(t.app, '/ping')).statusCode, 200);
    assertAccepted(await bearer(t.app, user.tokens.access_token), user.id);
  }

  it('ASVS V3.5.3 control: the genuine token and a hand-built one are accepted before fuzzing', async () => {
    assertAccepted(await bearer(t.app, user.tokens.access_token), user.id);
    assertAccepted(await bearer(t.app, hs(HS256_HEADER, accessClaims(user.id), t.settings.jwt.accessSecret)), user.id);
  });

  it('jwt_tool -M at (fuzz): random strings and random dotted segments as a Bearer token are refused with 401', async () => {
    const token = fc.oneof(
      headerValue,
      fc.tuple(base64urlSegment, base64urlSegment, base64urlSegment).map((parts) => parts.join('.')),
      fc.array(base64urlSegment, { minLength: 0, maxLength: 6 }).map((parts) => parts.join('.')),
    );
    await fc.assert(
      fc.asyncProperty(token, async (value) => {
        assertTokenRefused(await withAuthorization(t.app, `Bearer ${value}`), `Bearer ${JSON.stringify(value)}`);
      }),
      { numRuns: NUM_RUNS },
    );
    await assertStillServing();
  });

  it('ASVS V3.5.3: flip/insert/delete/replace mutations of a genuine access token are never accepted', async () => {
    const genuine = user.tokens.access_token;
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 4 }), async (mutations) => {
        const mutated = mutate(genuine, mutations);
        // Excluded: mutations that give back the genuine token, also after the spaces the Bearer syntax allows around it.
        fc.pre(mutated.replace(/^ +| +$/g, '') !== genuine);
        assertTokenRefused(await withAuthorization(t.app, `Bearer ${mutated}`), `mutated ${JSON.stringify(mutations)}`);
      }),
      { numRuns: NUM_RUNS },
    );
    await assertStillServing();
  });

  it('ASVS V3.5.3: mutations of a genuine refresh token are never exchanged at /auth/refresh', async () => {
    const genuine = user.tokens.refresh_token;
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (mutations) => {
        const mutated = mutate(genuine, mutations);
        fc.pre(mutated !== genuine);
        const response = await refresh(t.app, mutated);
        assertHandled(response, `refresh ${JSON.stringify(mutations)}`);
        assert.notEqual(response.statusCode, 200, `a mutated refresh token was exchanged: ${JSON.stringify(mutations)}`);
      }),
      { numRuns: NUM_RUNS },
    );
    // The genuine one was never consumed by the fuzzing.
    assert.equal((await refresh(t.app, genuine)).statusCode, 200);
    await assertStillServing();
  });

  it("RFC 8725 §3.1 / Burp JWT Editor: random JOSE headers over valid claims, MAC'd with the real secret, never 5xx and only the plain HS256 header passes", async () => {
    const algValue = fc.oneof(
      fc.constantFrom('HS256', 'none', 'HS512', 'RS256', 'hs256', ''),
      fc.jsonValue({ maxDepth: 2 }),
      fc.dictionary(joseKey, fc.jsonValue({ maxDepth: 1 }), { maxKeys: 4 }),
    );
    const header = fc.record({
      alg: algValue,
      rest: fc.dictionary(fc.oneof(joseKey, fc.string({ maxLength: 8 })), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
    });
    await fc.assert(
      fc.asyncProperty(header, async ({ alg, rest }) => {
        const jose: Record<string, unknown> = { ...rest, alg };
        const response = await bearer(t.app, hs(jose, accessClaims(user.id), t.settings.jwt.accessSecret));
        assertHandled(response, `header ${JSON.stringify(jose)}`);
        const plain =
          jose.alg === 'HS256' &&
          (jose.typ === undefined || jose.typ === 'JWT') &&
          ['crit', 'b64', 'jwk', 'jku', 'x5u', 'x5c', 'x5t'].every((name) => !Object.prototype.hasOwnProperty.call(jose, name));
        if (!plain) assert.equal(response.statusCode, 401, `accepted header ${JSON.stringify(jose)}`);
      }),
      { numRuns: NUM_RUNS },
    );
    await assertStillServing();
  });

  it('ASVS V5.1.4: random JSON bodies on /auth/login never answer 5xx or 200', async () => {
    const loginish = fc.record(
      {
        email: fc.oneof(fc.emailAddress(), fc.string(), fc.jsonValue()),
        password: fc.oneof(fc.string({ maxLength: 140 }), fc.jsonValue()),
      },
      { requiredKeys: [] },
    );
    const body = fc.oneof({ weight: 8, arbitrary: fc.jsonValue({ maxDepth: 3 }) }, { weight: 2, arbitrary: loginish });
    await fc.assert(
      fc.asyncProperty(body, async (payload) => {
        const response = await t.app.inject({
          method: 'POST',
          url: '/auth/login',
          payload: JSON.stringify(payload),
          headers: { 'content-type': 'application/json' },
        });
        assertHandled(response, `login ${JSON.stringify(payload).slice(0, 200)}`);
        assert.notEqual(response.statusCode, 200);
      }),
      { numRuns: NUM_RUNS },
    );
    await assertStillServing();
  });

  it('ASVS V5.1.4 (found by the header fuzzer): POST /auth/login with no body at all answers 422, not 500', async () => {
    // What `curl -X POST /auth/login` sends: no Content-Type, no body.
    for (const url of ['/auth/login', '/login']) {
      const response = await t.app.inject({ method: 'POST', url });
      assertHandled(response, `bare POST ${url}`);
      assert.equal(response.statusCode, 422, response.body);
      assert.equal(response.json<{ code: string }>().code, 'validation_error');
    }
    await assertStillServing();
  });

  it('ASVS V5.1.4: random JSON bodies on /auth/register never answer 5xx, and never grant a role', async () => {
    const registerish = fc.record(
      {
        email: fc.oneof(fc.emailAddress(), fc.string()),
        password: fc.oneof(fc.string({ maxLength: 140 }), fc.jsonValue()),
        full_name: fc.jsonValue(),
        role: fc.constantFrom('admin', 'teacher', 'student'),
        is_active: fc.boolean(),
      },
      { requiredKeys: [] },
    );
    const body = fc.oneof({ weight: 8, arbitrary: fc.jsonValue({ maxDepth: 3 }) }, { weight: 2, arbitrary: registerish });
    await fc.assert(
      fc.asyncProperty(body, async (payload) => {
        const response = await t.app.inject({
          method: 'POST',
          url: '/auth/register',
          payload: JSON.stringify(payload),
          headers: { 'content-type': 'application/json' },
        });
        assertHandled(response, `register ${JSON.stringify(payload).slice(0, 200)}`);
        if (response.statusCode === 201) assert.equal(response.json<{ role: string }>().role, 'student');
      }),
      { numRuns: NUM_RUNS },
    );
    await assertStillServing();
  });

  it('ASVS V5.1.4: random JSON bodies on /auth/refresh never answer 5xx or 200', async () => {
    const body = fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.record({ refresh_token: fc.oneof(headerValue, fc.jsonValue()) }));
    await fc.assert(
      fc.asyncProperty(body, async (payload) => {
        const response = await t.app.inject({
          method: 'POST',
          url: '/auth/refresh',
          payload: JSON.stringify(payload),
          headers: { 'content-type': 'application/json' },
        });
        assertHandled(response, `refresh ${JSON.stringify(payload).slice(0, 200)}`);
        assert.notEqual(response.statusCode, 200);
      }),
      { numRuns: NUM_RUNS },
    );
    await assertStillServing();
  });

  it('ASVS V5.1.4: random JSON bodies on POST /tasks and PATCH /tasks/{id} never answer 5xx', async () => {
    const taskish = fc.record(
      { title: fc.oneof(fc.string({ maxLength: 220 }), fc.jsonValue()), description: fc.jsonValue(), done: fc.jsonValue() },
      { requiredKeys: [] },
    );
    const body = fc.oneof(fc.jsonValue({ maxDepth: 3 }), taskish);
    const id = fc.oneof(
      fc.integer({ min: -5, max: 5 }).map(String),
      fc.constantFrom('abc', '1e3', '9999999999', '%00', '1.5', '0x1'),
      fc.webSegment(),
    );
    await fc.assert(
      fc.asyncProperty(body, id, fc.constantFrom<Method>('POST', 'PATCH'), async (payload, taskId, method) => {
        const url = method === 'POST' ? '/tasks' : `/tasks/${taskId}`;
        const response = await t.app.inject({
          method,
          url,
          payload: JSON.stringify(payload),
          headers: { 'content-type': 'application/json', authorization: `Bearer ${user.tokens.access_token}` },
        });
        assertHandled(response, `${method} ${url} ${JSON.stringify(payload).slice(0, 200)}`);
      }),
      { numRuns: NUM_RUNS },
    );
    await assertStillServing();
  });

  it('RFC 9110 §5.5: random header values (Authorization, Content-Type, Cookie, Origin, X-Forwarded-For, …) never answer 5xx', async () => {
    const reserved = new Set(['content-length', 'transfer-encoding', 'connection', 'expect', 'upgrade', 'te', 'trailer', 'keep-alive']);
    const headerName = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/).filter((name) => !reserved.has(name));
    const headers = fc.record(
      {
        authorization: fc.oneof(
          headerValue,
          headerValue.map((value) => `Bearer ${value}`),
        ),
        'content-type': fc.oneof(
          headerValue,
          fc.constantFrom(
            'application/json',
            'application/json; charset=utf-16',
            'application/x-www-form-urlencoded',
            'text/plain',
            'multipart/form-data; boundary=x',
            'application/json;;',
          ),
        ),
        cookie: headerValue,
        origin: headerValue,
        'x-forwarded-for': headerValue,
        'user-agent': headerValue,
        accept: headerValue,
        host: headerValue,
        'x-gatepass-cookie': headerValue,
      },
      { requiredKeys: [] },
    );
    const routes: [Method, string][] = [
      ['GET', '/users/me'],
      ['GET', '/tasks'],
      ['POST', '/tasks'],
      ['POST', '/auth/login'],
      ['POST', '/auth/refresh'],
      ['POST', '/auth/logout'],
      ['GET', '/ping'],
      ['GET', '/auth/sessions'],
    ];
    await fc.assert(
      fc.asyncProperty(
        headers,
        fc.tuple(headerName, headerValue),
        fc.constantFrom(...routes),
        fc.option(fc.jsonValue({ maxDepth: 2 })),
        async (named, [name, value], [method, url], body) => {
          const all: Record<string, string> = { [name]: value, ...named };
          const response = await t.app.inject({
            method,
            url,
            headers: all,
            ...(method !== 'GET' && body !== null && { payload: JSON.stringify(body) }),
          });
          assertHandled(response, `${method} ${url} ${JSON.stringify(all).slice(0, 300)}`);
        },
      ),
      { numRuns: NUM_RUNS },
    );
    await assertStillServing();
  });

  it('RFC 8725 §3.1: random query strings and path segments on protected routes never answer 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.webQueryParameters(), fc.webSegment(), async (query, segment) => {
        for (const url of [`/tasks?${query}`, `/tasks/${segment}`, `/auth/sessions/${segment}`]) {
          const response = await bearer(t.app, user.tokens.access_token, url);
          assertHandled(response, `GET ${url}`);
        }
      }),
      { numRuns: NUM_RUNS },
    );
    await assertStillServing();
  });
});
