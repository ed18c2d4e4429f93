import { Type, type Static } from '@sinclair/typebox';
import { GatepassError } from '../../errors.js';
import type { SessionRow } from '../../store/schema.js';
import { accountOf, authOf } from '../auth-guard.js';
import { clientInfo } from '../client-info.js';
import { BEARER_SECURITY, LoginPassword, NewPassword, SessionFields, errorResponses, sessionFields } from '../schemas.js';
import type { RoutePlugin, SessionServices } from '../types.js';
import { MfaCode } from './mfa.js';

const SessionOut = Type.Object(
  { ...SessionFields, current: Type.Boolean({ description: 'the session of the token making this request' }) },
  { $id: 'Session' },
);

function sessionOut(session: SessionRow, currentSessionId: string): Static<typeof SessionOut> {
  return { ...sessionFields(session), current: session.id === currentSessionId };
}

const schemaBase = { tags: ['auth'], security: BEARER_SECURITY };

const listSchema = {
  ...schemaBase,
  summary: 'Your live sessions, most recently used first',
  response: { 200: Type.Array(SessionOut), ...errorResponses(401) },
};

const endOneSchema = {
  ...schemaBase,
  summary: 'End one of your sessions',
  description: "Its refresh tokens and access tokens stop working at once. Another user's session answers 404.",
  params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }),
  response: { 204: Type.Null(), ...errorResponses(401, 404) },
};

const endAllSchema = {
  ...schemaBase,
  summary: 'End every session',
  description: 'Every session and every access token of the user issued before now is refused.',
  response: { 204: Type.Null(), ...errorResponses(401) },
};

const changePasswordSchema = {
  ...schemaBase,
  summary: 'Change your password',
  description:
    'Needs the current password, and a current two-factor `code` when TOTP is on (403 `mfa_required` without one, 400 `invalid_code`). ' +
    'Every other session ends; this one stays signed in.',
  body: Type.Object({ current_password: LoginPassword, new_password: NewPassword, code: Type.Optional(MfaCode) }),
  response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 413, 415, 422, 429) },
};

const removePasswordSchema = {
  ...schemaBase,
  summary: 'Remove your password (sign in with passkeys or linked accounts only)',
  description:
    'Needs the current password, and a current two-factor `code` when TOTP is on. Refused with 409 `last_sign_in_method` ' +
    'unless the account keeps another way to sign in (a passkey or a linked account). Every other session ends. ' +
    'Password reset (POST /auth/password/forgot) sets a password again.',
  body: Type.Object({ current_password: LoginPassword, code: Type.Optional(MfaCode) }),
  response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 409, 413, 415, 422, 429) },
};

/** The signed-in user's sessions: review them, end one, end all, or change or remove the password. */
export const sessionRoutes: RoutePlugin<SessionServices> = async (app, { sessions, accounts, mfa, guards, authBodyLimitBytes }) => {
  const onRequest = guards.requireUser;

  app.get('/auth/sessions', { onRequest, schema: listSchema }, async (request) => {
    const auth = authOf(request);
    return (await sessions.listSessions(auth.userId)).map((session) => sessionOut(session, auth.sessionId));
  });

  app.delete('/auth/sessions/:id', { onRequest, schema: endOneSchema }, async (request, reply) => {
    const { userId } = authOf(request);
    if (!(await sessions.endSession(userId, request.params.id, { event: 'session_revoked', userId, client: clientInfo(request) }))) {
      throw new GatepassError('not_found', 'Session not found');
    }
    return reply.code(204).send(null);
  });

  app.post('/auth/logout-all', { onRequest, schema: endAllSchema }, async (request, reply) => {
    const { userId } = authOf(request);
    await sessions.endAllSessions(userId, { event: 'logout_all', userId, client: clientInfo(request) });
    return reply.code(204).send(null);
  });

  app.post('/auth/password/change', { onRequest, bodyLimit: authBodyLimitBytes, schema: changePasswordSchema }, async (request, reply) => {
    const auth = authOf(request);
    await mfa.requireFreshCode(accountOf(request), request.body.code, clientInfo(request), 'password_change');
    await accounts.changePassword(
      auth.userId,
      auth.sessionId,
      request.body.current_password,
      request.body.new_password,
      clientInfo(request),
    );
    return reply.code(204).send(null);
  });

  app.post('/auth/password/remove', { onRequest, bodyLimit: authBodyLimitBytes, schema: removePasswordSchema }, async (request, reply) => {
    const auth = authOf(request);
    await mfa.requireFreshCode(accountOf(request), request.body.code, clientInfo(request), 'password_removal');
    await accounts.removePassword(auth.userId, auth.sessionId, request.body.current_password, clientInfo(request));
    return reply.code(204).send(null);
  });
};
