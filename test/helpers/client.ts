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

/** A registered user with the token pair of their first login. */
export interface SignedUpUser {
  email: string;
  password: string;
  id: number;
  tokens: Tokens;
}

/** Registers a new user and logs in. */
export async function signUp(app: GatepassApp): Promise<SignedUpUser> {
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

/** A user as API.md returns it (GET /users/me, the admin API). */
export interface UserBody {
  id: number;
  email: string;
  full_name: string | null;
  role: string;
  is_active: boolean;
  created_at: string;
}

export interface RequestOptions {
  body?: unknown;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  userAgent?: string;
  remoteAddress?: string;
  /** A whole Authorization header (instead of `token`). */
  authorization?: string;
}

/** One request with the headers a real client would send: User-Agent, Bearer token, client address. */
export function call(app: GatepassApp, method: Method, url: string, options: RequestOptions = {}): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = {};
  if (options.userAgent !== undefined) headers['user-agent'] = options.userAgent;
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.authorization !== undefined) headers.authorization = options.authorization;
  return app.inject({
    method,
    url,
    headers,
    ...(options.body !== undefined && { payload: options.body as object }),
    ...(options.remoteAddress !== undefined && { remoteAddress: options.remoteAddress }),
  });
}

/** Logs in with an explicit User-Agent, as a browser or app would send it. */
export async function loginAs(app: GatepassApp, credentials: { email: string; password: string }, userAgent: string): Promise<Tokens> {
  const response = await call(app, 'POST', '/auth/login', {
    body: { email: credentials.email, password: credentials.password },
    userAgent,
  });
  assert.equal(response.statusCode, 200, response.body);
  return response.json<Tokens>();
}

/** POST /auth/refresh with `refreshToken` in the body (and a User-Agent, when given). */
export function refresh(app: GatepassApp, refreshToken: string, userAgent?: string): Promise<LightMyRequestResponse> {
  return call(app, 'POST', '/auth/refresh', { body: { refresh_token: refreshToken }, ...(userAgent !== undefined && { userAgent }) });
}

/** A refresh that must succeed; returns the new pair. */
export async function refreshed(app: GatepassApp, refreshToken: string, userAgent?: string): Promise<Tokens> {
  const response = await refresh(app, refreshToken, userAgent);
  assert.equal(response.statusCode, 200, response.body);
  return response.json<Tokens>();
}

/** The keys of a user object, sorted. */
export const USER_KEYS = ['created_at', 'email', 'email_verified', 'full_name', 'id', 'is_active', 'role'];

/** An ISO 8601 time in UTC, as every `*_at` field of API.md is written. */
export const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** POST /auth/password/forgot, from a given User-Agent or client address when set. */
export function forgot(
  app: GatepassApp,
  email: string,
  options: { userAgent?: string; remoteAddress?: string } = {},
): Promise<LightMyRequestResponse> {
  return call(app, 'POST', '/auth/password/forgot', { body: { email }, ...options });
}

/** POST /auth/password/reset. */
export function resetPassword(app: GatepassApp, token: string, newPassword: string, userAgent?: string): Promise<LightMyRequestResponse> {
  return call(app, 'POST', '/auth/password/reset', {
    body: { token, new_password: newPassword },
    ...(userAgent !== undefined && { userAgent }),
  });
}

/** A POST with an `application/x-www-form-urlencoded` body, as OAuth2 password-flow clients send it. */
export function postForm(app: GatepassApp, url: string, fields: Record<string, string>): Promise<LightMyRequestResponse> {
  return app.inject({
    method: 'POST',
    url,
    payload: new URLSearchParams(fields).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
}
