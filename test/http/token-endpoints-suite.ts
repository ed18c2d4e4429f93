import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { ADMIN_ENV, loginAdmin, patchUser, setRole } from '../helpers/admin.js';
import { type Backend, createTestApp, type TestApp } from '../helpers/app.js';
import { type AuditItem, eventsOf } from '../helpers/audit.js';
import { claimsOf, get, ISO_UTC, login, post, refresh, refreshed, send, signUp, type SignedUpUser } from '../helpers/client.js';
import { accessClaims, forge, nowSeconds, refreshClaims } from '../helpers/forge.js';
import { assertRevoked, assertValidation, assertWorks } from '../helpers/responses.js';
import type { Introspection } from '../../src/sessions/token-introspection.js';

/**
 * The standard token endpoints for other services (API.md "Services and token endpoints"): RFC 8414
 * metadata, RFC 7662 introspection, RFC 7009 revocation and the revocation feed's snapshot, over
 * real HTTP (`app.inject`) on a real database, with a real service credential.
 */

const ISSUER = 'https://auth.example.test/gatepass';
const SERVICE_NAME = 'token-endpoints-tests';
const SERVICE_AGENT = 'projects-service/1.0';
const BASIC_CHALLENGE = 'Basic realm="gatepass", charset="UTF-8"';
const INVALID_CLIENT = { detail: 'Invalid service credentials', code: 'invalid_client' };
const ACTIVE_KEYS = ['active', 'exp', 'iat', 'jti', 'role', 'sid', 'sub', 'token_type'];

interface Service {
  clientId: string;
  clientSecret: string;
  authorization: string;
}

type Entry =
  | { kind: 'session'; sid: string; until: string }
  | { kind: 'user'; sub: string; before: string; until: string }
  | { kind: 'token'; jti: string; until: string };

interface FeedPage {
  revocations: Entry[];
  cursor: string;
  more: boolean;
}

type Active = Extract<Introspection, { active: true }>;

function basic(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${clientId}:${secret}`, 'utf8').toString('base64')}`;
}

async function newService(t: TestApp, name: string): Promise<Service> {
  const { clientId, clientSecret } = await t.app.gatepass.serviceCredentials.create(name);
  return { clientId, clientSecret, authorization: basic(clientId, clientSecret) };
}

/** A secret no gatepass instance of this test holds: what another issuer's tokens are signed with. */
function foreignSecret(): string {
  return randomBytes(32).toString('hex');
}

export function defineTokenEndpointsSuite(backend: Backend): void {
  describe(`token endpoints (${backend})`, () => {
    let t: TestApp;
    let service: Service;
    let adminToken: string;
    let adminId: number;

    before(async () => {
      t = await createTestApp(backend, { ...ADMIN_ENV, JWT_ISSUER: ISSUER });
      service = await newService(t, SERVICE_NAME);
      const admin = await loginAdmin(t.app);
      adminToken = admin.tokens.access_token;
      adminId = admin.id;
    });
    after(() => t.close());

    /** A POST as RFC 7662/7009 clients send it: a urlencoded form, Basic credentials (the suite's service unless given). */
    function postForm(url: string, fields: Record<string, string>, authorization: string | null = service.authorization) {
      return t.app.inject({
        method: 'POST',
        url,
        payload: new URLSearchParams(fields).toString(),
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'user-agent': SERVICE_AGENT,
          ...(authorization !== null && { authorization }),
        },
      });
    }

    function postJson(url: string, body: unknown, authorization: string | null = service.authorization) {
      return t.app.inject({
        method: 'POST',
        url,
        payload: body as object,
        headers: { 'user-agent': SERVICE_AGENT, ...(authorization !== null && { authorization }) },
      });
    }

    function introspect(token: string, hint?: string) {
      return postForm('/oauth/introspect', { token, ...(hint !== undefined && { token_type_hint: hint }) });
    }

    function revoke(token: string, hint?: string) {
      return postForm('/oauth/revoke', { token, ...(hint !== undefined && { token_type_hint: hint }) });
    }

    /** `{"active":false}` and not one field more, never cached. */
    function assertInactive(response: LightMyRequestResponse, what: string): void {
      assert.equal(response.statusCode, 200, `${what}: ${response.body}`);
      assert.deepEqual(response.json(), { active: false }, `${what}: ${response.body}`);
      assert.match(String(response.headers['cache-control']), /\bno-store\b/, what);
    }

    /** An active answer: exactly the fields of API.md, with the token's own claims. */
    function assertActive(response: LightMyRequestResponse, token: string, type: 'access_token' | 'refresh_token', role: string): Active {
      assert.equal(response.statusCode, 200, response.body);
      assert.match(String(response.headers['cache-control']), /\bno-store\b/);
      const body = response.json<Active>();
      assert.deepEqual(Object.keys(body).sort(), ACTIVE_KEYS, response.body);
      const claims = claimsOf(token);
      assert.deepEqual(body, {
        active: true,
        sub: claims.sub,
        sid: claims.sid,
        role,
        exp: claims.exp,
        iat: claims.iat,
        jti: claims.jti,
        token_type: type,
      });
      return body;
    }

    async function assertRevokeAccepted(response: Promise<LightMyRequestResponse>): Promise<void> {
      const answer = await response;
      assert.equal(answer.statusCode, 200, answer.body);
      assert.deepEqual(answer.json(), {}, answer.body);
    }

    function assertInvalidClient(response: LightMyRequestResponse, what: string): void {
      assert.equal(response.statusCode, 401, `${what}: ${response.body}`);
      assert.deepEqual(response.json(), INVALID_CLIENT, `${what}: ${response.body}`);
      assert.equal(response.headers['www-authenticate'], BASIC_CHALLENGE, what);
    }

    async function feedPage(query: string, authorization: string | null = service.authorization): Promise<LightMyRequestResponse> {
      return t.app.inject({ method: 'GET', url: `/auth/revocations${query}`, headers: authorization === null ? {} : { authorization } });
    }

    /** Every entry of the snapshot, paged with `limit` until `more` is false. */
    async function wholeFeed(limit = 1000): Promise<{ entries: Entry[]; pages: FeedPage[] }> {
      const entries: Entry[] = [];
      const pages: FeedPage[] = [];
      const seen = new Set<string>();
      let cursor: string | undefined;
      for (let page = 0; page < 1000; page += 1) {
        const response = await feedPage(`?limit=${limit}${cursor === undefined ? '' : `&after=${cursor}`}`);
        assert.equal(response.statusCode, 200, response.body);
        const body = response.json<FeedPage>();
        assert.deepEqual(Object.keys(body).sort(), ['cursor', 'more', 'revocations'], response.body);
        assert.match(body.cursor, /^[0-9]+$/, response.body);
        // A page holds at most `limit` entries past the cursor; those of the reread window before it may repeat.
        const fresh = body.revocations.filter((entry) => !seen.has(JSON.stringify(entry)));
        assert.ok(fresh.length <= limit, `a page of limit ${limit} held ${fresh.length} entries not seen before: ${response.body}`);
        if (body.more) assert.ok(fresh.length > 0, `a page with more=true brought nothing new: ${response.body}`);
        for (const entry of body.revocations) seen.add(JSON.stringify(entry));
        if (cursor !== undefined) assert.ok(Number(body.cursor) >= Number(cursor), `the cursor went back: ${cursor} → ${body.cursor}`);
        pages.push(body);
        entries.push(...body.revocations);
        if (!body.more) return { entries, pages };
        assert.ok(Number(body.cursor) > Number(cursor ?? -1), `a page with more=true did not advance the cursor: ${response.body}`);
        cursor = body.cursor;
      }
      assert.fail('the feed never said more=false');
    }

    function sessionEntries(entries: Entry[], sid: string): Entry[] {
      return entries.filter((entry) => entry.kind === 'session' && entry.sid === sid);
    }

    function tokenEntries(entries: Entry[], jti: string): Entry[] {
      return entries.filter((entry) => entry.kind === 'token' && entry.jti === jti);
    }

    /** Which revocations exist, as a set of stable keys (the snapshot's order and repeats aside). */
    async function feedKeys(): Promise<Set<string>> {
      return new Set((await wholeFeed()).entries.map((entry) => JSON.stringify(entry)));
    }

    async function serviceEvents(userId: number, event: string): Promise<AuditItem[]> {
      return eventsOf(t.app, adminToken, userId, event);
    }

    describe('authorization server metadata (RFC 8414)', () => {
      it('lists the endpoints under the origin of the request, issuer = JWT_ISSUER, and each URL works', async () => {
        const response = await t.app.inject({
          method: 'GET',
          url: '/.well-known/oauth-authorization-server',
          headers: { host: 'gatepass.example.org:8443' },
        });
        assert.equal(response.statusCode, 200, response.body);
        const body = response.json<Record<string, unknown>>();
        const origin = 'http://gatepass.example.org:8443';
        assert.equal(body.issuer, ISSUER);
        assert.equal(body.jwks_uri, `${origin}/.well-known/jwks.json`);
        assert.equal(body.introspection_endpoint, `${origin}/oauth/introspect`);
        assert.equal(body.revocation_endpoint, `${origin}/oauth/revoke`);
        assert.equal(body.revocation_feed_endpoint, `${origin}/auth/revocations`);
        for (const field of [
          'token_endpoint_auth_methods_supported',
          'introspection_endpoint_auth_methods_supported',
          'revocation_endpoint_auth_methods_supported',
        ]) {
          assert.ok(Array.isArray(body[field]), `${field}: ${response.body}`);
          assert.ok((body[field] as unknown[]).includes('client_secret_basic'), `${field}: ${response.body}`);
        }
        const algorithms = body.access_token_signing_alg_values_supported;
        assert.ok(Array.isArray(algorithms), response.body);
        const header = JSON.parse(Buffer.from(adminToken.split('.')[0] ?? '', 'base64url').toString('utf8')) as { alg: string };
        assert.ok((algorithms as unknown[]).includes(header.alg), `the tokens' ${header.alg} is not among ${JSON.stringify(algorithms)}`);

        // The URLs lead somewhere real: the key set, and endpoints that ask for a service credential.
        const jwks = await get(t.app, new URL(body.jwks_uri).pathname);
        assert.equal(jwks.statusCode, 200, jwks.body);
        assert.ok(Array.isArray(jwks.json<{ keys: unknown[] }>().keys), jwks.body);
        for (const field of ['introspection_endpoint', 'revocation_endpoint']) {
          const path = new URL(String(body[field])).pathname;
          assertInvalidClient(await postForm(path, { token: 'x' }, null), `${field} without a credential`);
        }
        const feed = await feedPage('', null);
        assertInvalidClient(feed, 'revocation_feed_endpoint without a credential');
      });

      it('without a URL issuer, the issuer is the origin the request reached', async () => {
        const other = await createTestApp(backend, { JWT_ISSUER: 'gatepass-internal' });
        try {
          const response = await other.app.inject({
            method: 'GET',
            url: '/.well-known/oauth-authorization-server',
            headers: { host: 'id.example.net' },
          });
          assert.equal(response.statusCode, 200, response.body);
          const body = response.json<Record<string, unknown>>();
          assert.equal(body.issuer, 'http://id.example.net');
          assert.equal(body.introspection_endpoint, 'http://id.example.net/oauth/introspect');
        } finally {
          await other.close();
        }
      });
    });

    describe('introspection (RFC 7662)', () => {
      it('a live access token, as a form and as JSON: active with exactly its claims and token_type access_token', async () => {
        const user = await signUp(t.app);
        const token = user.tokens.access_token;
        const form = assertActive(await introspect(token), token, 'access_token', 'student');
        assert.equal(form.sub, String(user.id));
        const json = await postJson('/oauth/introspect', { token });
        assertActive(json, token, 'access_token', 'student');
        assert.equal(json.body, (await introspect(token)).body);
      });

      it('a live refresh token: active with token_type refresh_token and the user role', async () => {
        const user = await signUp(t.app);
        const body = assertActive(await introspect(user.tokens.refresh_token), user.tokens.refresh_token, 'refresh_token', 'student');
        assert.equal(body.sid, claimsOf(user.tokens.access_token).sid);
        assertActive(
          await postJson('/oauth/introspect', { token: user.tokens.refresh_token, token_type_hint: 'refresh_token' }),
          user.tokens.refresh_token,
          'refresh_token',
          'student',
        );
      });

      it('a wrong or unknown token_type_hint still finds the token', async () => {
        const user = await signUp(t.app);
        const { access_token: access, refresh_token: refreshToken } = user.tokens;
        assertActive(await introspect(access, 'refresh_token'), access, 'access_token', 'student');
        assertActive(await introspect(refreshToken, 'access_token'), refreshToken, 'refresh_token', 'student');
        assertActive(await introspect(access, 'id_token'), access, 'access_token', 'student');
        assertActive(await introspect(refreshToken, 'urn:example:whatever'), refreshToken, 'refresh_token', 'student');
      });

      it('a logged-out access token (and its refresh token) is inactive', async () => {
        const user = await signUp(t.app);
        assertActive(await introspect(user.tokens.access_token), user.tokens.access_token, 'access_token', 'student');
        assert.equal((await post(t.app, '/auth/logout', undefined, user.tokens.access_token)).statusCode, 204);
        assertInactive(await introspect(user.tokens.access_token), 'a logged-out access token');
        assertInactive(await introspect(user.tokens.access_token, 'access_token'), 'a logged-out access token, hinted');
        assertInactive(await introspect(user.tokens.refresh_token), "a logged-out session's refresh token");
      });

      it('a used (rotated) refresh token is inactive; its successor is active', async () => {
        const user = await signUp(t.app);
        const next = await refreshed(t.app, user.tokens.refresh_token);
        assertInactive(await introspect(user.tokens.refresh_token), 'a used refresh token');
        assertInactive(await introspect(user.tokens.refresh_token, 'refresh_token'), 'a used refresh token, hinted');
        assertActive(await introspect(next.refresh_token), next.refresh_token, 'refresh_token', 'student');
        assertActive(await introspect(next.access_token), next.access_token, 'access_token', 'student');
      });

      it('tokens signed with another secret, or forged with the right one but never issued, are inactive', async () => {
        const user = await signUp(t.app);
        const { sid } = claimsOf(user.tokens.access_token);
        const iss = { iss: ISSUER };
        assertInactive(await introspect(forge(t, foreignSecret(), accessClaims(user.id, { sid, ...iss }))), 'a foreign access token');
        assertInactive(await introspect(forge(t, foreignSecret(), refreshClaims(user.id, { sid, ...iss }))), 'a foreign refresh token');
        // Well signed, but no such refresh token was ever stored: introspection must ask the database.
        const unissued = forge(t, t.settings.jwt.refreshSecret, refreshClaims(user.id, { sid, ...iss }));
        assertInactive(await introspect(unissued, 'refresh_token'), 'a refresh token the server never issued');
        // The same claims signed by the server's own access key are accepted, so the refusals above are the signature's.
        const genuine = forge(t, t.settings.jwt.accessSecret, accessClaims(user.id, { sid, ...iss }));
        assertActive(await introspect(genuine), genuine, 'access_token', 'student');
      });

      it('garbage is inactive, form or JSON', async () => {
        const user = await signUp(t.app);
        const [head = '', payload = ''] = user.tokens.access_token.split('.');
        for (const garbage of [
          'garbage',
          'a.b.c',
          `${head}.${payload}.`,
          `${head}.${payload}.${Buffer.from('not the signature').toString('base64url')}`,
          'eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.',
          'x'.repeat(8192),
        ]) {
          assertInactive(await introspect(garbage), `garbage ${garbage.slice(0, 20)}`);
          assertInactive(await postJson('/oauth/introspect', { token: garbage }), `garbage ${garbage.slice(0, 20)} (JSON)`);
        }
      });

      it("after logout-all, the user's refresh and access tokens are inactive", async () => {
        const user = await signUp(t.app);
        const other = await login(t.app, user);
        assertActive(await introspect(other.refresh_token), other.refresh_token, 'refresh_token', 'student');
        assert.equal((await post(t.app, '/auth/logout-all', undefined, user.tokens.access_token)).statusCode, 204);
        for (const token of [user.tokens.refresh_token, other.refresh_token, user.tokens.access_token, other.access_token])
          assertInactive(await introspect(token), 'a token from before logout-all');
      });

      it("a deactivated user's tokens are inactive (by the admin and by the user)", async () => {
        const byAdmin = await signUp(t.app);
        const patched = await patchUser(t.app, byAdmin.id, { is_active: false }, adminToken);
        assert.equal(patched.statusCode, 200, patched.body);
        const bySelf = await signUp(t.app);
        const deactivated = await send(t.app, 'PUT', '/users/me/deactivate', undefined, bySelf.tokens.access_token);
        assert.equal(deactivated.statusCode, 200, deactivated.body);
        for (const user of [byAdmin, bySelf]) {
          assertInactive(await introspect(user.tokens.access_token), "a deactivated user's access token");
          assertInactive(await introspect(user.tokens.refresh_token), "a deactivated user's refresh token");
        }
      });

      it('after a role change, the old access token is inactive; the refresh token is active with the new role', async () => {
        const user = await signUp(t.app);
        await setRole(t.app, adminToken, user.id, 'teacher');
        assertInactive(await introspect(user.tokens.access_token), 'an access token minted before a role change');
        assertActive(await introspect(user.tokens.refresh_token), user.tokens.refresh_token, 'refresh_token', 'teacher');
        const next = await refreshed(t.app, user.tokens.refresh_token);
        assertActive(await introspect(next.access_token), next.access_token, 'access_token', 'teacher');
      });

      it('without a valid service credential: 401 invalid_client with the Basic challenge, the same for any token', async () => {
        const user = await signUp(t.app);
        const live = user.tokens.access_token;
        const refusals: [string, string | null][] = [
          ['no credentials', null],
          ['a wrong secret', basic(service.clientId, `${service.clientSecret}x`)],
          ['an unknown client id', basic(`${service.clientId}x`, service.clientSecret)],
          ["a user's Bearer token", `Bearer ${live}`],
          ["a user's token in Basic", basic(String(user.id), live)],
        ];
        for (const [what, authorization] of refusals) {
          const forLive = await postForm('/oauth/introspect', { token: live }, authorization);
          const forGarbage = await postForm('/oauth/introspect', { token: 'garbage' }, authorization);
          assertInvalidClient(forLive, `${what} (live token)`);
          assertInvalidClient(forGarbage, `${what} (garbage)`);
          assert.equal(forLive.body, forGarbage.body, `${what}: the answer tells live from garbage`);
          assert.ok(!forLive.body.includes('active'), forLive.body);
          assertInvalidClient(await postJson('/oauth/introspect', { token: live }, authorization), `${what} (JSON)`);
        }
        // The same request with the credential is answered: the refusals above are the credential's.
        assertActive(await introspect(live), live, 'access_token', 'student');
      });

      it('a request without `token` is 422; with a credential and a token it is not', async () => {
        assertValidation(await postForm('/oauth/introspect', { token_type_hint: 'access_token' }), { loc: ['body', 'token'] });
        assertValidation(await postJson('/oauth/introspect', {}), { loc: ['body', 'token'] });
        assertValidation(await postForm('/oauth/revoke', {}), { loc: ['body', 'token'] });
        assertInactive(await introspect('t'), 'a one-character token');
      });
    });

    describe('revocation (RFC 7009)', () => {
      it("revoking a refresh token ends its session: no refresh, the session's access token refused, a session entry in the feed", async () => {
        const since = Date.now();
        const user = await signUp(t.app);
        const other = await login(t.app, user);
        const { sid } = claimsOf(user.tokens.refresh_token) as { sid: string };
        assert.equal(sessionEntries((await wholeFeed()).entries, sid).length, 0, 'the session is in the feed before its revocation');

        await assertRevokeAccepted(revoke(user.tokens.refresh_token));

        const refused = await refresh(t.app, user.tokens.refresh_token);
        assert.equal(refused.statusCode, 401, refused.body);
        assertRevoked(await get(t.app, '/users/me', user.tokens.access_token));
        assertInactive(await introspect(user.tokens.refresh_token), 'a revoked refresh token');
        assertInactive(await introspect(user.tokens.access_token), "a revoked session's access token");
        // The user's other session is untouched.
        await assertWorks(t.app, other.access_token, 'the other session');
        await refreshed(t.app, other.refresh_token);

        const entries = sessionEntries((await wholeFeed()).entries, sid);
        assert.ok(entries.length >= 1, `no session entry for ${sid} in the feed`);
        const entry = entries[0] as { kind: 'session'; sid: string; until: string };
        assert.deepEqual(Object.keys(entry).sort(), ['kind', 'sid', 'until']);
        assert.match(entry.until, ISO_UTC);
        assert.ok(Date.parse(entry.until) > Date.now(), `until ${entry.until} is already past`);

        const events = (await serviceEvents(user.id, 'session_revoked')).filter((event) => event.details.session_id === sid);
        assert.equal(events.length, 1, 'one session_revoked event');
        for (const event of events) {
          const raw = JSON.stringify(event);
          assert.equal(event.details.service, SERVICE_NAME, raw);
          assert.equal(event.user_agent, SERVICE_AGENT, raw);
          assert.equal(event.user_id, user.id, raw);
          assert.ok(Date.parse(event.created_at) >= since - 1000, raw);
          assert.ok(!raw.includes('eyJ'), `the audit event holds a token: ${raw}`);
          assert.ok(!raw.includes(service.clientSecret), `the audit event holds the service secret: ${raw}`);
        }
      });

      it('revoking an access token refuses that token only; a token entry with its jti appears in the feed', async () => {
        const since = Date.now();
        const user = await signUp(t.app);
        const sameSession = await refreshed(t.app, user.tokens.refresh_token);
        const otherSession = await login(t.app, user);
        const { jti, sid } = claimsOf(user.tokens.access_token) as { jti: string; sid: string };
        assert.equal(claimsOf(sameSession.access_token).sid, sid);

        await assertRevokeAccepted(postJson('/oauth/revoke', { token: user.tokens.access_token, token_type_hint: 'access_token' }));

        assertRevoked(await get(t.app, '/users/me', user.tokens.access_token));
        assertInactive(await introspect(user.tokens.access_token), 'a revoked access token');
        await assertWorks(t.app, sameSession.access_token, 'another access token of the same session');
        await assertWorks(t.app, otherSession.access_token, "the user's other session");
        assertActive(await introspect(sameSession.refresh_token), sameSession.refresh_token, 'refresh_token', 'student');

        const { entries } = await wholeFeed();
        const tokens = tokenEntries(entries, jti);
        assert.ok(tokens.length >= 1, `no token entry for ${jti} in the feed`);
        assert.deepEqual(Object.keys(tokens[0] ?? {}).sort(), ['jti', 'kind', 'until']);
        assert.match((tokens[0] as { until: string }).until, ISO_UTC);
        assert.equal(sessionEntries(entries, sid).length, 0, 'revoking one access token ended its session');

        const events = (await serviceEvents(user.id, 'token_revoked')).filter((event) => Date.parse(event.created_at) >= since - 1000);
        assert.equal(events.length, 1, JSON.stringify(events));
        const [event] = events as [AuditItem];
        const raw = JSON.stringify(event);
        assert.equal(event.details.service, SERVICE_NAME, raw);
        assert.equal(event.details.session_id, sid, raw);
        assert.equal(event.user_agent, SERVICE_AGENT, raw);
        assert.ok(!raw.includes('eyJ'), `the audit event holds a token: ${raw}`);
      });

      it('a garbage, foreign or expired token: 200 {} and nothing changes', async () => {
        const user = await signUp(t.app);
        const { sid } = claimsOf(user.tokens.access_token);
        const before = await feedKeys();
        const sessionEventsBefore = (await serviceEvents(user.id, 'session_revoked')).length;
        const tokenEventsBefore = (await serviceEvents(user.id, 'token_revoked')).length;
        const now = nowSeconds();
        const expired = { sid, iss: ISSUER, iat: now - 4000, exp: now - 3600 };
        const ignored: [string, string][] = [
          ['garbage', 'garbage'],
          ['alg none', 'eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.'],
          ['a foreign access token', forge(t, foreignSecret(), accessClaims(user.id, { sid, iss: ISSUER }))],
          ['a foreign refresh token', forge(t, foreignSecret(), refreshClaims(user.id, { sid, iss: ISSUER }))],
          ['an expired access token of the session', forge(t, t.settings.jwt.accessSecret, accessClaims(user.id, expired))],
          ['an expired refresh token of the session', forge(t, t.settings.jwt.refreshSecret, refreshClaims(user.id, expired))],
        ];
        for (const [what, token] of ignored) {
          for (const hint of [undefined, 'access_token', 'refresh_token']) {
            const response = await revoke(token, hint);
            assert.equal(response.statusCode, 200, `${what}: ${response.body}`);
            assert.deepEqual(response.json(), {}, what);
          }
        }
        await assertWorks(t.app, user.tokens.access_token, 'the session after revoking tokens that are not its own');
        assertActive(await introspect(user.tokens.refresh_token), user.tokens.refresh_token, 'refresh_token', 'student');
        assert.deepEqual([...(await feedKeys())].sort(), [...before].sort(), 'the feed changed');
        assert.equal((await serviceEvents(user.id, 'session_revoked')).length, sessionEventsBefore);
        assert.equal((await serviceEvents(user.id, 'token_revoked')).length, tokenEventsBefore);
      });

      it('without a valid service credential: 401 invalid_client and the token stays live', async () => {
        const user = await signUp(t.app);
        for (const authorization of [null, basic(service.clientId, 'wrong-secret'), `Bearer ${user.tokens.access_token}`]) {
          assertInvalidClient(await postForm('/oauth/revoke', { token: user.tokens.refresh_token }, authorization), String(authorization));
          assertInvalidClient(await postForm('/oauth/revoke', { token: user.tokens.access_token }, authorization), String(authorization));
        }
        await assertWorks(t.app, user.tokens.access_token, 'the token after refused revocations');
        await refreshed(t.app, user.tokens.refresh_token);
      });

      it('20 concurrent revocations of one refresh token: all 200, one session ended once, the server healthy', async () => {
        const user = await signUp(t.app);
        const other = await login(t.app, user);
        const { sid } = claimsOf(user.tokens.refresh_token) as { sid: string };
        const responses = await Promise.all(Array.from({ length: 20 }, () => revoke(user.tokens.refresh_token)));
        for (const response of responses) {
          assert.equal(response.statusCode, 200, response.body);
          assert.deepEqual(response.json(), {});
        }
        assertRevoked(await get(t.app, '/users/me', user.tokens.access_token));
        assert.equal((await refresh(t.app, user.tokens.refresh_token)).statusCode, 401);
        await assertWorks(t.app, other.access_token, "the user's other session");

        const page = await feedPage('?limit=10000');
        assert.equal(page.statusCode, 200, page.body);
        assert.equal(sessionEntries(page.json<FeedPage>().revocations, sid).length, 1, `one revocation of ${sid} expected: ${page.body}`);
        const ended = (await serviceEvents(user.id, 'session_revoked')).filter((event) => event.details.session_id === sid);
        assert.equal(ended.length, 1, 'only the revocation that ended the session is audited');
        const sessions = await get(t.app, '/users/me/sessions', other.access_token);
        if (sessions.statusCode === 200) assert.ok(!sessions.body.includes(sid), `the revoked session is still listed: ${sessions.body}`);

        const ready = await get(t.app, '/health/ready');
        assert.equal(ready.statusCode, 200, ready.body);
        const fresh = await signUp(t.app);
        assertActive(await introspect(fresh.tokens.access_token), fresh.tokens.access_token, 'access_token', 'student');
      });
    });

    describe('the revocation feed snapshot', () => {
      it("holds a logout's session entry and a role change's user entry", async () => {
        const user = await signUp(t.app);
        const { sid } = claimsOf(user.tokens.access_token) as { sid: string };
        assert.equal((await post(t.app, '/auth/logout', undefined, user.tokens.access_token)).statusCode, 204);
        const demoted = await signUp(t.app);
        await setRole(t.app, adminToken, demoted.id, 'teacher');
        const beforeChange = Date.now();
        await setRole(t.app, adminToken, demoted.id, 'student');
        const afterChange = Date.now();

        const response = await feedPage('');
        assert.equal(response.statusCode, 200, response.body);
        assert.match(String(response.headers['cache-control']), /\bno-store\b/);
        const { entries } = await wholeFeed();
        const sessions = sessionEntries(entries, sid);
        assert.ok(sessions.length >= 1, `no session entry for the logout of ${sid}`);
        const users = entries.filter(
          (entry): entry is Extract<Entry, { kind: 'user' }> => entry.kind === 'user' && entry.sub === String(demoted.id),
        );
        assert.ok(users.length >= 2, `expected a user entry per role change of ${demoted.id}: ${JSON.stringify(users)}`);
        for (const entry of users) {
          assert.deepEqual(Object.keys(entry).sort(), ['before', 'kind', 'sub', 'until'], JSON.stringify(entry));
          assert.match(entry.before, ISO_UTC);
          assert.match(entry.until, ISO_UTC);
          assert.ok(Date.parse(entry.until) > Date.parse(entry.before), JSON.stringify(entry));
          assert.ok(Date.parse(entry.until) > Date.now(), JSON.stringify(entry));
        }
        const latest = Math.max(...users.map((entry) => Date.parse(entry.before)));
        assert.ok(latest >= beforeChange - 1000 && latest <= afterChange + 1000, `the latest cutoff ${new Date(latest).toISOString()}`);
        // A user who was never demoted or logged out has no entry.
        assert.equal(entries.filter((entry) => entry.kind === 'user' && entry.sub === String(adminId)).length, 0);
      });

      it('pages with after and limit: every entry is seen and paging ends with more=false', async () => {
        const sids: string[] = [];
        for (let i = 0; i < 7; i += 1) {
          const user = await signUp(t.app);
          sids.push(String(claimsOf(user.tokens.access_token).sid));
          assert.equal((await post(t.app, '/auth/logout', undefined, user.tokens.access_token)).statusCode, 204);
        }
        const whole = await wholeFeed(1000);
        const all = new Set(whole.entries.map((entry) => JSON.stringify(entry)));
        for (const limit of [1, 2, 3]) {
          const paged = await wholeFeed(limit);
          assert.ok(paged.pages.length > 1, `limit ${limit} gave a single page`);
          assert.ok(paged.pages.slice(0, -1).every((page) => page.more));
          assert.equal(paged.pages.at(-1)?.more, false);
          const seen = new Set(paged.entries.map((entry) => JSON.stringify(entry)));
          for (const sid of sids) assert.equal(sessionEntries(paged.entries, sid).length >= 1, true, `limit ${limit} never showed ${sid}`);
          for (const key of all) assert.ok(seen.has(key), `limit ${limit} never showed ${key}`);
        }
        // From the last cursor on, nothing new.
        const last = await feedPage(`?after=${whole.pages.at(-1)?.cursor}&limit=1000`);
        assert.equal(last.statusCode, 200, last.body);
        assert.equal(last.json<FeedPage>().more, false);
      });

      it('an invalid after or limit is 422; without a service credential, 401', async () => {
        for (const after of ['abc', '-1', '1234567890123456', '1.5', '']) {
          const response = await feedPage(`?after=${after}`);
          const items = assertValidation(response);
          assert.ok(
            items.some((item) => item.loc.includes('after')),
            `after=${after}: ${response.body}`,
          );
        }
        for (const limit of ['0', '10001', 'x']) assertValidation(await feedPage(`?limit=${limit}`));
        // The largest cursors the schema allows are answered (an empty last page), on PostgreSQL's int4 ids too.
        for (const after of ['2147483648', '999999999999999']) {
          const response = await feedPage(`?after=${after}`);
          assert.equal(response.statusCode, 200, `after=${after}: ${response.body}`);
          assert.deepEqual(response.json(), { revocations: [], cursor: after, more: false });
        }

        assertInvalidClient(await feedPage('', null), 'no credentials');
        assertInvalidClient(await feedPage('', basic(service.clientId, 'nope')), 'a wrong secret');
        assertInvalidClient(await feedPage('', `Bearer ${adminToken}`), "an admin's Bearer token");
      });
    });

    describe('concurrency', () => {
      for (const kind of ['access_token', 'refresh_token'] as const) {
        it(`30 introspections of a ${kind.replace('_', ' ')} alongside a logout: none answers active after the logout has answered`, async () => {
          const user = await signUp(t.app);
          const token = user.tokens[kind];
          const state = { loggedOut: false };
          const answers: { startedAfter: boolean; arrivedAfter: boolean; response: LightMyRequestResponse }[] = [];
          const one = async (): Promise<void> => {
            const startedAfter = state.loggedOut;
            const response = await introspect(token);
            answers.push({ startedAfter, arrivedAfter: state.loggedOut, response });
          };
          const pending: Promise<void>[] = [];
          // Ten before the logout, more while it runs, and the rest (at least five) once it has answered.
          for (let i = 0; i < 10; i += 1) pending.push(one());
          const logout = post(t.app, '/auth/logout', undefined, user.tokens.access_token).then((response) => {
            state.loggedOut = true;
            return response;
          });
          while (!state.loggedOut && pending.length < 25) {
            pending.push(one());
            await new Promise((resolve) => setImmediate(resolve));
          }
          assert.equal((await logout).statusCode, 204);
          while (pending.length < 30) pending.push(one());
          await Promise.all(pending);
          assert.equal(answers.length, 30);
          for (const { response, arrivedAfter, startedAfter } of answers) {
            assert.equal(response.statusCode, 200, response.body);
            const body = response.json<{ active: boolean }>();
            if (body.active) {
              assertActive(response, token, kind, 'student');
              assert.ok(
                !arrivedAfter && !startedAfter,
                `an introspection ${startedAfter ? 'started' : 'answered'} after the logout had answered was active: ${response.body}`,
              );
            } else {
              assert.deepEqual(body, { active: false });
            }
          }
          assert.ok(
            answers.some((answer) => answer.startedAfter),
            'no introspection started after the logout: the test proved nothing',
          );
          assertInactive(await introspect(token), 'after the race');
        });
      }
    });
  });

  describe(`introspection of expired tokens, on a moving clock (${backend})`, () => {
    let t: TestApp;
    let service: Service;
    let clock = Date.now();
    before(async () => {
      clock = Date.now();
      t = await createTestApp(backend, {}, { now: () => clock });
      service = await newService(t, 'clock-tests');
    });
    after(() => t.close());

    function introspect(token: string) {
      return t.app.inject({
        method: 'POST',
        url: '/oauth/introspect',
        payload: new URLSearchParams({ token }).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: service.authorization },
      });
    }

    it('an access token is active until it expires (leeway included), then inactive; the refresh token lives on', async () => {
      const user: SignedUpUser = await signUp(t.app);
      const active = await introspect(user.tokens.access_token);
      assert.equal(active.json<{ active: boolean }>().active, true, active.body);
      clock += 60_000;
      assert.equal((await introspect(user.tokens.access_token)).json<{ active: boolean }>().active, true, 'a minute later');
      // 15 minutes and the 30 s leeway, and a minute more.
      clock += 900_000 + 30_000;
      const expired = await introspect(user.tokens.access_token);
      assert.equal(expired.statusCode, 200, expired.body);
      assert.deepEqual(expired.json(), { active: false });
      const stillRefreshable = await introspect(user.tokens.refresh_token);
      assert.equal(stillRefreshable.json<{ active: boolean }>().active, true, stillRefreshable.body);
      // Past the refresh token's 7 days, it too is inactive.
      clock += 7 * 24 * 3600 * 1000;
      assert.deepEqual((await introspect(user.tokens.refresh_token)).json(), { active: false });
    });
  });
}
