import { Type } from '@sinclair/typebox';
import type { AppServices, GatepassApp } from '../app.js';
import { accountOf, authOf } from '../auth-guard.js';
import { clientInfo } from '../client-info.js';
import { AuditEventOut, BEARER_SECURITY, FullName, LoginPassword, MessageResponse, TaskOut, UserOut, auditEventOut, errorResponses, taskOut, userOut } from '../schemas.js';

export function userRoutes(app: GatepassApp, { accounts, sessions, tasks, audit, guards, settings, now }: AppServices): void {
  const common = { onRequest: guards.requireUser } as const;
  const schemaBase = { tags: ['users'], security: BEARER_SECURITY };

  app.get(
    '/users/me',
    { ...common, schema: { ...schemaBase, summary: 'The signed-in user', response: { 200: Type.Ref(UserOut), ...errorResponses(401) } } },
    async (request) => userOut(accountOf(request)),
  );

  app.patch(
    '/users/me',
    {
      ...common,
      schema: {
        ...schemaBase,
        summary: 'Update your profile',
        body: Type.Object({ full_name: FullName }),
        response: { 200: Type.Ref(UserOut), ...errorResponses(401, 413, 415, 422) },
      },
    },
    async (request) => userOut(await accounts.updateProfile(authOf(request).userId, { fullName: request.body.full_name })),
  );

  app.get(
    '/users/me/status',
    {
      ...common,
      schema: {
        ...schemaBase,
        summary: 'Account status (as in the seed lab)',
        response: { 200: Type.Object({ email: Type.String(), is_active: Type.Boolean(), message: Type.String() }), ...errorResponses(401) },
      },
    },
    async (request) => {
      const user = accountOf(request);
      return {
        email: user.email,
        is_active: user.isActive,
        message: `Hello ${user.email}! Your account is ${user.isActive ? 'active' : 'inactive'}.`,
      };
    },
  );

  app.put(
    '/users/me/deactivate',
    {
      ...common,
      schema: {
        ...schemaBase,
        summary: 'Deactivate your account',
        description:
          'Every session ends and every token of the account stops working; logging in then answers 403. ' +
          '409 `last_admin` for the last active admin.',
        response: { 200: MessageResponse, ...errorResponses(401, 409) },
      },
    },
    async (request) => {
      await accounts.deactivate(authOf(request).userId, clientInfo(request));
      return { message: 'Account deactivated successfully' };
    },
  );

  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  const NullableTime = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);
  app.get(
    '/users/me/export',
    {
      ...common,
      schema: {
        ...schemaBase,
        summary: 'Everything stored about you (data portability)',
        response: {
          200: Type.Object({
            exported_at: Type.String({ format: 'date-time' }),
            user: Type.Ref(UserOut),
            sessions: Type.Array(
              Type.Object({
                id: Type.String(),
                created_at: Type.String({ format: 'date-time' }),
                last_used_at: Type.String({ format: 'date-time' }),
                user_agent: Type.Union([Type.String(), Type.Null()]),
                ip: Type.Union([Type.String(), Type.Null()]),
                revoked_at: NullableTime,
                revoked_reason: Type.Union([Type.String(), Type.Null()]),
              }),
            ),
            tasks: Type.Array(Type.Ref(TaskOut)),
            audit_events: Type.Array(Type.Ref(AuditEventOut)),
          }),
          ...errorResponses(401),
        },
      },
    },
    async (request, reply) => {
      const { userId } = authOf(request);
      const user = accountOf(request);
      const [userSessions, userTasks, events] = await Promise.all([
        sessions.allSessions(userId),
        tasks.all(userId),
        audit.forUser(userId),
      ]);
      reply.header('Cache-Control', 'no-store');
      return {
        exported_at: new Date(now()).toISOString(),
        user: userOut(user),
        sessions: userSessions.map((session) => ({
          id: session.id,
          created_at: new Date(session.created_at).toISOString(),
          last_used_at: new Date(session.last_used_at).toISOString(),
          user_agent: session.user_agent,
          ip: session.ip,
          revoked_at: iso(session.revoked_at),
          revoked_reason: session.revoked_reason,
        })),
        tasks: userTasks.map(taskOut),
        audit_events: events.map(auditEventOut),
      };
    },
  );

  app.delete(
    '/users/me',
    {
      ...common,
      bodyLimit: settings.authBodyLimitBytes,
      schema: {
        ...schemaBase,
        summary: 'Delete your account',
        description: 'Needs your password. Erases the user, their sessions and tasks; every token stops working. 409 `last_admin` for the last active admin.',
        body: Type.Object({ password: LoginPassword }),
        response: { 204: Type.Null(), ...errorResponses(401, 409, 413, 415, 422) },
      },
    },
    async (request, reply) => {
      await accounts.deleteAccount(authOf(request).userId, request.body.password);
      return reply.code(204).send(null);
    },
  );
}
