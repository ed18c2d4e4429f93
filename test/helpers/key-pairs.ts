import assert from 'node:assert/strict';
import { createPrivateKey, randomUUID, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import type { GatepassApp } from '../../src/http/app.js';
import type { TestApp } from './app.js';
import { INVALID } from './jwt.js';

/** A gatepass app that signs access tokens with a key pair: its JWKS, its private keys, and what it answers to a token. */

export type Jwk = Record<string, string>;

export function headerOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** GET /.well-known/jwks.json, which must answer 200. */
export async function jwksOf(app: GatepassApp): Promise<{ response: LightMyRequestResponse; keys: Jwk[] }> {
  const response = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
  assert.equal(response.statusCode, 200, response.body);
  return { response, keys: response.json<{ keys: Jwk[] }>().keys };
}

/** The kids the JWKS publishes, sorted. */
export async function kidsOf(app: GatepassApp): Promise<string[]> {
  return (await jwksOf(app)).keys.map((key) => key.kid ?? '').sort();
}

/** GET /users/me with `token`. */
export function me(app: GatepassApp, token: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${token}` } });
}

/** GET /users/me answered 200 for `userId`. */
export function assertMe(response: LightMyRequestResponse, userId: number, what: string): void {
  assert.equal(response.statusCode, 200, `${what}: ${response.body}`);
  assert.equal(response.json<{ id: number }>().id, userId, what);
}

/** The token was refused as invalid, with RFC 6750's challenge. */
export function assertInvalid(response: LightMyRequestResponse, what: string): void {
  assert.equal(response.statusCode, 401, `${what}: expected 401, got ${response.statusCode} ${response.body}`);
  assert.deepEqual(response.json<unknown>(), INVALID, what);
  assert.equal(response.headers['www-authenticate'], 'Bearer error="invalid_token"', what);
}

/** Claims shaped like gatepass's access tokens, dated by `nowMs`. */
export function claimsAt(userId: number, nowMs: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = Math.floor(nowMs / 1000);
  return { sub: String(userId), type: 'access', sid: randomUUID(), role: 'student', jti: randomUUID(), iat, exp: iat + 900, ...overrides };
}

/** The private key `kid` of the app's key directory. */
export function privateKeyOf(t: TestApp, kid: string): KeyObject {
  return createPrivateKey(readFileSync(path.join(t.settings.jwt.keysDir, `${kid}.pem`)));
}
