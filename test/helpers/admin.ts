import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import type { GatepassApp } from '../../src/http/app.js';
import { call, claimsOf, get, login, register, type Tokens, type UserBody } from './client.js';

/** The bootstrap admin that suites create from ADMIN_EMAIL/ADMIN_PASSWORD, and the admin API's requests. */

export const ADMIN_EMAIL = 'root@example.com';
export const ADMIN_PASSWORD = 'Granite-Heron-Lattice-4821-quay';
export const ADMIN_ENV = { ADMIN_EMAIL, ADMIN_PASSWORD } as const;

export type Role = 'student' | 'teacher' | 'admin';

export const PAGE_KEYS = ['items', 'limit', 'offset', 'total'];

export interface UserPage {
  items: UserBody[];
  total: number;
  limit: number;
  offset: number;
}

/** Logs in the bootstrap admin; checks that the token says admin. */
export async function loginAdmin(app: GatepassApp): Promise<{ id: number; tokens: Tokens }> {
  const tokens = await login(app, { email: ADMIN_EMAIL, password: ADMIN_PASSWORD });
  assert.equal(claimsOf(tokens.access_token).role, 'admin', JSON.stringify(claimsOf(tokens.access_token)));
  return { id: Number(claimsOf(tokens.access_token).sub), tokens };
}

/** PATCH /admin/users/{id}. */
export function patchUser(
  app: GatepassApp,
  id: number | string,
  body: unknown,
  token: string,
  userAgent?: string,
): Promise<LightMyRequestResponse> {
  return call(app, 'PATCH', `/admin/users/${id}`, { body, token, ...(userAgent !== undefined && { userAgent }) });
}

/** A role change that must succeed. */
export async function setRole(app: GatepassApp, adminToken: string, id: number, role: Role): Promise<UserBody> {
  const response = await patchUser(app, id, { role }, adminToken);
  assert.equal(response.statusCode, 200, response.body);
  const user = response.json<UserBody>();
  assert.equal(user.role, role, response.body);
  return user;
}

/** Registers a user, makes them a teacher, and logs them in again (their first token says student). */
export async function signUpTeacher(
  app: GatepassApp,
  adminToken: string,
): Promise<{ email: string; password: string; id: number; tokens: Tokens }> {
  const user = await register(app);
  await setRole(app, adminToken, user.id, 'teacher');
  const tokens = await login(app, user);
  assert.equal(claimsOf(tokens.access_token).role, 'teacher');
  return { ...user, tokens };
}

/** GET /admin/users (with `query`, e.g. `?role=teacher`): a page of exactly {items,total,limit,offset}. */
export async function listUsers(app: GatepassApp, token: string, query = ''): Promise<UserPage> {
  const response = await get(app, `/admin/users${query}`, token);
  assert.equal(response.statusCode, 200, response.body);
  const body = response.json<UserPage>();
  assert.deepEqual(Object.keys(body).sort(), PAGE_KEYS, response.body);
  return body;
}
