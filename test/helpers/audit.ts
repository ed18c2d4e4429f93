import assert from 'node:assert/strict';
import type { GatepassApp } from '../../src/http/app.js';
import { get, ISO_UTC } from './client.js';

/** Reading the audit trail (GET /admin/audit) and checking its events. */

export const AUDIT_KEYS = ['actor_id', 'created_at', 'details', 'event', 'id', 'ip', 'user_agent', 'user_id'];

export interface AuditItem {
  id: number;
  created_at: string;
  event: string;
  user_id: number | null;
  actor_id: number | null;
  ip: string | null;
  user_agent: string | null;
  details: Record<string, unknown>;
}

export interface AuditPage {
  items: AuditItem[];
  next_before: number | null;
}

/** One page of GET /admin/audit with `query`; every event has exactly the audit keys. */
export async function auditPage(
  app: GatepassApp,
  token: string,
  query: Record<string, string | number>,
): Promise<{ raw: string; body: AuditPage }> {
  const search = new URLSearchParams(Object.entries(query).map(([key, value]): [string, string] => [key, String(value)])).toString();
  const response = await get(app, `/admin/audit${search === '' ? '' : `?${search}`}`, token);
  assert.equal(response.statusCode, 200, response.body);
  const body = response.json<AuditPage>();
  assert.deepEqual(Object.keys(body).sort(), ['items', 'next_before'], response.body);
  for (const item of body.items) assert.deepEqual(Object.keys(item).sort(), AUDIT_KEYS, JSON.stringify(item));
  return { raw: response.body, body };
}

/** Events of one user (and one name), newest first. */
export async function eventsOf(app: GatepassApp, token: string, userId: number, event?: string): Promise<AuditItem[]> {
  const { body } = await auditPage(app, token, { user_id: userId, limit: 200, ...(event !== undefined && { event }) });
  return body.items;
}

/** Walks the whole trail with the `before` cursor; returns every page's raw body and the events. */
export async function allAuditPages(
  app: GatepassApp,
  token: string,
  limit: number,
  filter: Record<string, string | number> = {},
): Promise<{ raws: string[]; items: AuditItem[] }> {
  const raws: string[] = [];
  const items: AuditItem[] = [];
  let cursor: number | null = null;
  for (let page = 0; page < 10_000; page += 1) {
    const { raw, body } = await auditPage(app, token, { ...filter, limit, ...(cursor !== null && { before: cursor }) });
    raws.push(raw);
    items.push(...body.items);
    assert.ok(body.items.length <= limit, raw);
    if (body.items.length === limit)
      assert.equal(body.next_before, body.items.at(-1)?.id, `a full page must point past its last event: ${raw}`);
    else assert.equal(body.next_before, null, `a short page is the last one: ${raw}`);
    if (body.next_before === null) return { raws, items };
    cursor = body.next_before;
  }
  assert.fail('the audit cursor never ended');
}

/** An audit event as API.md asks: time, user id, ip, user agent (and who acted, and small details). */
export function assertEvent(
  item: AuditItem | undefined,
  expected: { event: string; userId: number | null; actorId?: number | null; userAgent: string | null; ip?: string | null; since: number },
): AuditItem {
  assert.ok(item !== undefined, `no ${expected.event} event`);
  const raw = JSON.stringify(item);
  assert.deepEqual(Object.keys(item).sort(), AUDIT_KEYS, raw);
  assert.equal(item.event, expected.event, raw);
  assert.equal(item.user_id, expected.userId, raw);
  assert.equal(item.actor_id, expected.actorId ?? null, raw);
  assert.equal(item.ip, expected.ip === undefined ? '127.0.0.1' : expected.ip, raw);
  assert.equal(item.user_agent, expected.userAgent, raw);
  assert.match(item.created_at, ISO_UTC, raw);
  const at = Date.parse(item.created_at);
  assert.ok(at >= expected.since - 1000 && at <= Date.now() + 1000, `event time ${item.created_at} is outside the test's run: ${raw}`);
  // The page is typed by a cast, not checked: here `details` is what the server sent, not yet the object AuditItem declares.
  const details: unknown = item.details;
  assert.ok(typeof details === 'object' && details !== null && !Array.isArray(details), raw);
  return item;
}
