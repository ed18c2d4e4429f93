import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import type { GatepassApp } from '../../src/http/app.js';
import { assertError, get, type Tokens, type UserBody } from './client.js';

/** The answers of API.md that many suites check: refusals, FastAPI's 422, and a token that still works. */

export interface ValidationItem {
  loc: (string | number)[];
  msg: string;
  type: string;
}

/** No token presented: 401 with plain `WWW-Authenticate: Bearer`, no error parameter. */
export function assertNotAuthenticated(response: LightMyRequestResponse): void {
  assertError(response, 401, 'Not authenticated', 'not_authenticated');
  assert.equal(response.headers['www-authenticate'], 'Bearer');
}

/** A presented token refused: API.md's body and `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750 §3.1). */
export function assertTokenRejected(response: LightMyRequestResponse, detail: string, code: string): void {
  assertError(response, 401, detail, code);
  assert.equal(response.headers['www-authenticate'], 'Bearer error="invalid_token"');
}

/** A token refused because its session, user or role changed since it was minted. */
export function assertRevoked(response: LightMyRequestResponse): void {
  assertTokenRejected(response, 'Token has been revoked', 'token_revoked');
}

/** A valid token whose role lacks the permission: 403. */
export function assertForbidden(response: LightMyRequestResponse): void {
  assertError(response, 403, 'Not enough permissions', 'forbidden');
}

/**
 * FastAPI's 422: `detail` is a non-empty list of exactly `{loc, msg, type}`, `code` is validation_error.
 * When `loc` is given, one item names it (with `type`, when given) and every item points inside `within`
 * (by default `loc` itself).
 */
export function assertValidation(
  response: LightMyRequestResponse,
  expected?: { loc: (string | number)[]; type?: string; within?: (string | number)[] },
): ValidationItem[] {
  assert.equal(response.statusCode, 422, response.body);
  const body = response.json<{ detail: ValidationItem[]; code: string }>();
  assert.deepEqual(Object.keys(body).sort(), ['code', 'detail'], response.body);
  assert.equal(body.code, 'validation_error');
  assert.ok(Array.isArray(body.detail) && body.detail.length > 0, response.body);
  for (const item of body.detail) {
    assert.deepEqual(Object.keys(item).sort(), ['loc', 'msg', 'type'], response.body);
    assert.ok(Array.isArray(item.loc) && item.loc.length > 0, response.body);
    assert.equal(typeof item.msg, 'string');
    assert.ok(item.msg.length > 0);
    assert.equal(typeof item.type, 'string');
  }
  if (expected !== undefined) {
    const match = body.detail.find((item) => JSON.stringify(item.loc) === JSON.stringify(expected.loc));
    assert.ok(match !== undefined, `no item with loc ${JSON.stringify(expected.loc)} in ${response.body}`);
    if (expected.type !== undefined) assert.equal(match.type, expected.type, response.body);
    const within = expected.within ?? expected.loc;
    for (const item of body.detail) assert.deepEqual(item.loc.slice(0, within.length), within, response.body);
  }
  return body.detail;
}

/** The access token is accepted by GET /users/me; returns the user it names. */
export async function assertWorks(app: GatepassApp, accessToken: string, what: string): Promise<UserBody> {
  const response = await get(app, '/users/me', accessToken);
  assert.equal(response.statusCode, 200, `${what}: ${response.statusCode} ${response.body}`);
  return response.json<UserBody>();
}

/** Nothing in `text` looks like a password hash or a JWT, and none of `secrets` appears in it. */
export function assertNoSecrets(text: string, secrets: string[], where: string): void {
  assert.ok(!text.includes('$argon2'), `${where} contains a password hash`);
  assert.ok(!text.includes('eyJ'), `${where} contains something shaped like a JWT`);
  for (const secret of secrets) assert.ok(!text.includes(secret), `${where} contains a secret the test used (${secret.slice(0, 6)}…)`);
}

const TOKEN_KEYS = ['access_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'token_type'];

/** A 200 token answer with the default lifetimes (15 minutes, 7 days), never cached; returns the pair. */
export function assertTokenResponse(response: LightMyRequestResponse): Tokens {
  assert.equal(response.statusCode, 200, response.body);
  assert.match(String(response.headers['cache-control']), /\bno-store\b/);
  const body = response.json<Tokens>();
  assert.deepEqual(Object.keys(body).sort(), TOKEN_KEYS);
  assert.equal(body.token_type, 'bearer');
  assert.equal(body.expires_in, 900);
  assert.equal(body.refresh_expires_in, 604800);
  assert.equal(typeof body.access_token, 'string');
  assert.equal(typeof body.refresh_token, 'string');
  assert.equal(body.access_token.split('.').length, 3);
  assert.equal(body.refresh_token.split('.').length, 3);
  return body;
}
