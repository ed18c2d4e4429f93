import { Type, type Static } from '@sinclair/typebox';
import { FieldError } from '../../errors.js';
import type { SessionRow } from '../../store/schema.js';
import { accountOf, authOf } from '../auth-guard.js';
import { clientInfo } from '../client-info.js';
import {
  AuditEventOut,
  BEARER_SECURITY,
  Email,
  FullName,
  LoginPassword,
  MessageResponse,
  SessionFields,
  TaskOut,
  UserOut,
  auditEventOut,
  errorResponses,
  sessionFields,
  taskOut,
  userOut,
  refTo,
} from '../schemas.js';
import type { RoutePlugin, UserServices } from '../types.js';
import { MfaCode } from './mfa.js';
import { IdentityOut, identityOut } from './external-sign-in.js';
import { PasskeyOut, passkeyOut } from './passkeys.js';

const schemaBase = { tags: ['users'], security: BEARER_SECURITY };
const NullableTime = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);
const NullableString = Type.Union([Type.String(), Type.Null()]);

const ExportedSession = Type.Object({ ...SessionFields, revoked_at: NullableTime, revoked_reason: NullableString });

const meSchema = { ...schemaBase, summary: 'The signed-in user', response: { 200: refTo(UserOut), ...errorResponses(401) } };

const updateSchema = {
  ...schemaBase,
  summary: 'Update your profile',
  description:
    '`full_name` changes at once. `email` needs `current_password` beside it (401 when wrong; counts toward the lockout; an ' +
    'account without a password: a sign-in of this session less than 5 minutes ago, else 403 `reauthentication_required`) and ' +
    'does not change at once: a verification email goes to the new address, and the account switches to it when that token is ' +
    'used (POST /auth/email/verify); until then the answer, and the account, keep the current email. 409 `email_taken` when ' +
    'the new address has an account; 429 past 3 verification emails per account and hour. With two-factor sign-in on, an email ' +
    'change also needs a current `code` (403 `mfa_required` without, 400 `invalid_code` when wrong): whoever holds the address ' +
    'can reset the password.',
  body: Type.Object({
    full_name: Type.Optional(FullName),
    email: Type.Optional(Email),
    current_password: Type.Optional(LoginPassword),
    code: Type.Optional(MfaCode),
  }),
  response: { 200: refTo(UserOut), ...errorResponses(400, 401, 403, 409, 413, 415, 422, 429) },
};

const statusSchema = {
  ...schemaBase,
  summary: 'Account status (as in the seed lab)',
  response: { 200: Type.Object({ email: Type.String(), is_active: Type.Boolean(), message: Type.String() }), ...errorResponses(401) },
};

const deactivateSchema = {
  ...schemaBase,
  summary: 'Deactivate your account',
  description:
    'Every session ends and every token of the account stops working; logging in then answers 403. 409 `last_admin` for the last active admin.',
  response: { 200: MessageResponse, ...errorResponses(401, 409) },
};

const exportSchema = {
  ...schemaBase,
  summary: 'Everything stored about you (data portability)',
  response: {
    200: Type.Object({
      exported_at: Type.String({ format: 'date-time' }),
      user: refTo(UserOut),
      sessions: Type.Array(ExportedSession),
      tasks: Type.Array(refTo(TaskOut)),
      audit_events: Type.Array(refTo(AuditEventOut)),
      two_factor: Type.Object({ totp_enabled: Type.Boolean(), recovery_codes_left: Type.Integer() }),
      passkeys: Type.Array(PasskeyOut),
      external_identities: Type.Array(IdentityOut, { description: 'linked external sign-in identities; never a provider token' }),
    }),
    ...errorResponses(401),
  },
};

const deleteSchema = {
  ...schemaBase,
  summary: 'Delete your account',
  description:
    'Needs your password (an account without one: a sign-in of this session less than 5 minutes ago, else 403 ' +
    '`reauthentication_required`), and a current two-factor `code` when TOTP is on (403 `mfa_required` without one, 400 ' +
    '`invalid_code`). Erases the user, their sessions and tasks; every token stops working. 409 `last_admin` for the last active admin.',
  body: Type.Object({ password: Type.Optional(LoginPassword), code: Type.Optional(MfaCode) }),
  response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 409, 413, 415, 422, 429) },
};

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function exportedSession(session: SessionRow): Static<typeof ExportedSession> {
  return { ...sessionFields(session), revoked_at: iso(session.revoked_at), revoked_reason: session.revoked_reason };
}

/** The signed-in user's own account: read, change, export, deactivate, delete. */
export const userRoutes: RoutePlugin<UserServices> = async (
  app,
  { accounts, emailVerification, mfa, passkeys, externalSignIn, sessions, tasks, audit, guards, now, authBodyLimitBytes },
) => {
  const onRequest = guards.requireUser;

  app.get('/users/me', { onRequest, schema: meSchema }, async (request) => userOut(accountOf(request)));

  app.patch('/users/me', { onRequest, bodyLimit: authBodyLimitBytes, schema: updateSchema }, async (request) => {
    const { userId } = authOf(request);
    const { full_name: fullName, email, current_password: currentPassword } = request.body;
    // An email change needs the current password beside it (re-authentication: an account without
    // one, a recent sign-in); without an email, the body must at least change the name.
    if (email === undefined && currentPassword !== undefined) throw new FieldError(['body', 'email'], 'Field required', 'missing');
    if (email === undefined && fullName === undefined) throw new FieldError(['body', 'full_name'], 'Field required', 'missing');
    let user = accountOf(request);
    if (email !== undefined) {
      await mfa.requireFreshCode(user, request.body.code, clientInfo(request), 'email_change');
      const proof = { password: currentPassword, passwordField: 'current_password', sessionId: authOf(request).sessionId };
      user = await emailVerification.requestEmailChange(userId, email, proof, clientInfo(request));
    }
    if (fullName !== undefined) user = await accounts.updateProfile(userId, { fullName });
    return userOut(user);
  });

  app.get('/users/me/status', { onRequest, schema: statusSchema }, async (request) => {
    const user = accountOf(request);
    return {
      email: user.email,
      is_active: user.isActive,
      message: `Hello ${user.email}! Your account is ${user.isActive ? 'active' : 'inactive'}.`,
    };
  });

  app.put('/users/me/deactivate', { onRequest, schema: deactivateSchema }, async (request) => {
    await accounts.deactivate(authOf(request).userId, clientInfo(request));
    return { message: 'Account deactivated successfully' };
  });

  app.get('/users/me/export', { onRequest, schema: exportSchema }, async (request, reply) => {
    const { userId } = authOf(request);
    const [userSessions, userTasks, events, twoFactor, userPasskeys, identities] = await Promise.all([
      sessions.allSessions(userId),
      tasks.all(userId),
      audit.forUser(userId),
      mfa.status(userId),
      passkeys.list(userId),
      externalSignIn.identities(userId),
    ]);
    reply.header('Cache-Control', 'no-store');
    return {
      exported_at: new Date(now()).toISOString(),
      user: userOut(accountOf(request)),
      sessions: userSessions.map(exportedSession),
      tasks: userTasks.map(taskOut),
      audit_events: events.map(auditEventOut),
      // Whether a second factor is on, never its secret or codes.
      two_factor: { totp_enabled: twoFactor.totpEnabled, recovery_codes_left: twoFactor.recoveryCodesLeft },
      passkeys: userPasskeys.map(passkeyOut),
      external_identities: identities.map(identityOut),
    };
  });

  app.delete('/users/me', { onRequest, bodyLimit: authBodyLimitBytes, schema: deleteSchema }, async (request, reply) => {
    await mfa.requireFreshCode(accountOf(request), request.body.code, clientInfo(request), 'account_deletion');
    const { userId, sessionId } = authOf(request);
    await accounts.deleteAccount(userId, { password: request.body.password, passwordField: 'password', sessionId });
    return reply.code(204).send(null);
  });
};
