import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import type { GatepassApp } from '../../src/http/app.js';

export interface Tokens {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  refresh_expires_in: number;
}

let counter = 0;
/** A fresh, valid, uncommon email and password for each call. */
export function newCredentials(): { email: string; password: string } {
  counter += 1;
  return { email: `user${counter}.${process.pid}@example.com`, password: `Tr0ub4dor&3-${counter}-horse` };
}

export type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One request over Fastify's inject, with an optional JSON body and Bearer token. */
export function send(app: GatepassApp, method: Method, url: string, body?: unknown, token?: string): Promise<LightMyRequestResponse> {
  return app.inject({
    method,
    url,
    ...(body !== undefined && { payload: body as object }),
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
}

export function post(app: GatepassApp, url: string, body?: unknown, token?: string): Promise<LightMyRequestResponse> {
  return send(app, 'POST', url, body, token);
}

export function get(app: GatepassApp, url: string, token?: string): Promise<LightMyRequestResponse> {
  return send(app, 'GET', url, undefined, token);
}

export async function register(app: GatepassApp, credentials = newCredentials()): Promise<{ email: string; password: string; id: number }> {
  const response = await post(app, '/auth/register', credentials);
  assert.equal(response.statusCode, 201, response.body);
  return { ...credentials, id: response.json<{ id: number }>().id };
}

export async function login(app: GatepassApp, credentials: { email: string; password: string }): Promise<Tokens> {
  const response = await post(app, '/auth/login', { email: credentials.email, password: credentials.password });
  assert.equal(response.statusCode, 200, response.body);
  return response.json<Tokens>();
}

/** Registers a new user and logs in. */
export async function signUp(app: GatepassApp): Promise<{ email: string; password: string; id: number; tokens: Tokens }> {
  const user = await register(app);
  return { ...user, tokens: await login(app, user) };
}

/** Asserts an API.md error answer: status, `detail` and `code`. */
export function assertError(response: LightMyRequestResponse, status: number, detail: string, code: string): void {
  assert.equal(response.statusCode, status, response.body);
  assert.deepEqual(response.json(), { detail, code });
  if (status === 401) assert.match(String(response.headers['www-authenticate']), /^Bearer/);
}

/** Decodes a JWT's payload without verifying it (test inspection only). */
export function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}
