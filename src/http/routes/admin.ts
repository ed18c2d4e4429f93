import { Type } from '@sinclair/typebox';
import { ROLES } from '../../tokens/roles.js';
import { AUDIT_EVENTS } from '../../audit/audit-log.js';
import { authOf } from '../auth-guard.js';
import { clientInfo } from '../client-info.js';
import { AuditEventOut, BEARER_SECURITY, UserOut, auditEventOut, errorResponses, userOut, refTo } from '../schemas.js';
import type { AdminServices, RoutePlugin } from '../types.js';

const UserId = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }) });
const Role = Type.Union(ROLES.map((role) => Type.Literal(role)));
const schemaBase = { tags: ['admin'], security: BEARER_SECURITY };

const listUsersSchema = {
  ...schemaBase,
  summary: 'List users (users:read)',
  description:
    '`email` matches any part of the address; `role` is exact; `email_verified` (true or false) filters by the flag. Oldest first.',
  querystring: Type.Object({
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
    offset: Type.Integer({ minimum: 0, maximum: 1_000_000_000, default: 0 }),
    email: Type.Optional(Type.String({ minLength: 1, maxLength: 320 })),
    role: Type.Optional(Role),
    email_verified: Type.Optional(Type.Boolean()),
  }),
  response: {
    200: Type.Object({ items: Type.Array(refTo(UserOut)), total: Type.Integer(), limit: Type.Integer(), offset: Type.Integer() }),
    ...errorResponses(401, 403, 422),
  },
};

const getUserSchema = {
  ...schemaBase,
  summary: 'One user (users:read)',
  params: UserId,
  response: { 200: refTo(UserOut), ...errorResponses(401, 403, 404, 422) },
};

const updateUserSchema = {
  ...schemaBase,
  summary: "Change a user's role or active flag (users:write)",
  description:
    "Takes effect on the user's next request: older access tokens are refused, and the next refresh carries the new role. " +
    "403 when the new role, or the user's current one, has a permission the caller's role lacks; " +
    '409 `last_admin` when the change would leave no active admin.',
  params: UserId,
  body: Type.Object({ role: Type.Optional(Role), is_active: Type.Optional(Type.Boolean()) }),
  response: { 200: refTo(UserOut), ...errorResponses(401, 403, 404, 409, 413, 415, 422) },
};

const revokeSessionsSchema = {
  ...schemaBase,
  summary: 'End every session of a user (users:write)',
  params: UserId,
  response: { 204: Type.Null(), ...errorResponses(401, 403, 404, 422) },
};

const auditSchema = {
  ...schemaBase,
  summary: 'Audit events, newest first (audit:read)',
  description: 'Cursor pagination: pass the `id` of the last event of a page as `before` to get the next page (`next_before`).',
  querystring: Type.Object({
    user_id: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_147_483_647 })),
    event: Type.Optional(Type.Union(AUDIT_EVENTS.map((event) => Type.Literal(event)))),
    limit: Type.Integer({ minimum: 1, maximum: 200, default: 50 }),
    before: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_147_483_647 })),
  }),
  response: {
    200: Type.Object({ items: Type.Array(refTo(AuditEventOut)), next_before: Type.Union([Type.Integer(), Type.Null()]) }),
    ...errorResponses(401, 403, 422),
  },
};

const resetMfaSchema = {
  ...schemaBase,
  summary: "Remove a user's second factor (users:write)",
  description:
    'For a user who lost their authenticator and recovery codes: TOTP and every recovery code are removed (audited `mfa_reset`); ' +
    'their next login asks for the password only. 409 `mfa_not_enabled` when there is nothing to remove.',
  params: UserId,
  response: { 204: Type.Null(), ...errorResponses(401, 403, 404, 409, 422) },
};

/** The administrators' API (API.md "/admin"); each route names the permission it needs. */
export const adminRoutes: RoutePlugin<AdminServices> = async (app, { admin, mfa, audit, guards }) => {
  const canRead = guards.requirePermission('users:read');
  const canWrite = guards.requirePermission('users:write');

  app.get('/admin/users', { onRequest: canRead, schema: listUsersSchema }, async (request) => {
    const page = await admin.listUsers({ ...request.query, emailVerified: request.query.email_verified });
    return { items: page.items.map(userOut), total: page.total, limit: request.query.limit, offset: request.query.offset };
  });

  app.get('/admin/users/:id', { onRequest: canRead, schema: getUserSchema }, async (request) =>
    userOut(await admin.getUser(request.params.id)),
  );

  app.patch('/admin/users/:id', { onRequest: canWrite, schema: updateUserSchema }, async (request) => {
    const actor = { userId: authOf(request).userId, client: clientInfo(request) };
    const user = await admin.updateUser(actor, request.params.id, {
      ...(request.body.role !== undefined && { role: request.body.role }),
      ...(request.body.is_active !== undefined && { isActive: request.body.is_active }),
    });
    return userOut(user);
  });

  app.post('/admin/users/:id/revoke-sessions', { onRequest: canWrite, schema: revokeSessionsSchema }, async (request, reply) => {
    await admin.revokeSessions({ userId: authOf(request).userId, client: clientInfo(request) }, request.params.id);
    return reply.code(204).send(null);
  });

  app.delete('/admin/users/:id/mfa', { onRequest: canWrite, schema: resetMfaSchema }, async (request, reply) => {
    const actor = { userId: authOf(request).userId, client: clientInfo(request) };
    await admin.userToManage(actor, request.params.id);
    await mfa.reset(request.params.id, actor);
    return reply.code(204).send(null);
  });

  app.get('/admin/audit', { onRequest: guards.requirePermission('audit:read'), schema: auditSchema }, async (request) => {
    const { user_id: userId, event, limit, before } = request.query;
    const items = await audit.query({
      limit,
      ...(userId !== undefined && { userId }),
      ...(event !== undefined && { event }),
      ...(before !== undefined && { before }),
    });
    return { items: items.map(auditEventOut), next_before: items.length === limit ? (items.at(-1)?.id ?? null) : null };
  });
};
