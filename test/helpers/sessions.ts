import assert from 'node:assert/strict';
import type { GatepassApp } from '../../src/http/app.js';
import { claimsOf, get } from './client.js';

/** A user's sessions as GET /auth/sessions lists them, and the session a token belongs to. */

export interface SessionBody {
  id: string;
  created_at: string;
  last_used_at: string;
  user_agent: string | null;
  ip: string | null;
  current: boolean;
}

/** The session id (`sid`) a token carries. */
export function sidOf(token: string): string {
  const sid = claimsOf(token).sid;
  assert.equal(typeof sid, 'string', `token without a sid: ${JSON.stringify(claimsOf(token))}`);
  return sid as string;
}

/** GET /auth/sessions, which must answer 200 with a list. */
export async function listSessions(app: GatepassApp, accessToken: string): Promise<SessionBody[]> {
  const response = await get(app, '/auth/sessions', accessToken);
  assert.equal(response.statusCode, 200, response.body);
  const body = response.json<SessionBody[]>();
  assert.ok(Array.isArray(body), response.body);
  return body;
}

/** The ids of `sessions`, sorted. */
export function idsOf(sessions: { id: string }[]): string[] {
  return sessions.map((s) => s.id).sort();
}
