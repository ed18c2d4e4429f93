import { Type, type Static, type TObject, type TSchema, type TUnsafe } from '@sinclair/typebox';
import type { AuditEvent } from '../audit/audit-log.js';
import type { SessionRow } from '../store/schema.js';
import type { Task } from '../store/tasks.js';
import type { User } from '../store/users.js';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../passwords/policy.js';

/**
 * The JSON Schemas of the API: one source for validation, for serialisation (a response schema
 * drops every field it does not name, so a password hash can never leak) and for /openapi.json.
 */

export const ErrorResponse = Type.Object(
  { detail: Type.String(), code: Type.String() },
  { $id: 'ErrorResponse', description: 'Every failure except validation' },
);

export const ValidationErrorResponse = Type.Object(
  {
    detail: Type.Array(
      Type.Object({
        loc: Type.Array(Type.Union([Type.String(), Type.Integer()])),
        msg: Type.String(),
        type: Type.String(),
      }),
    ),
    code: Type.Literal('validation_error'),
  },
  { $id: 'ValidationErrorResponse', description: "FastAPI's 422 shape" },
);

/** A `$ref` to a shared schema (one with an `$id`), typed as that schema: TypeBox 0.34's Ref takes the id alone. */
export function refTo<T extends TSchema>(schema: T): TUnsafe<Static<T>> {
  if (schema.$id === undefined) throw new Error('refTo needs a schema with an $id');
  return Type.Unsafe<Static<T>>(Type.Ref(schema.$id));
}

/** Declares the error answers of a route in the OpenAPI document. */
export function errorResponses(...statuses: number[]): Record<number, TSchema> {
  return Object.fromEntries(statuses.map((status) => [status, status === 422 ? refTo(ValidationErrorResponse) : refTo(ErrorResponse)]));
}

export const Email = Type.String({ format: 'email', maxLength: 320, examples: ['alice@example.com'] });

export const NewPassword = Type.String({
  minLength: PASSWORD_MIN_LENGTH,
  maxLength: PASSWORD_MAX_LENGTH,
  description: `${PASSWORD_MIN_LENGTH}–${PASSWORD_MAX_LENGTH} characters, not a common password`,
});

/** Login accepts any stored password length; the cap only bounds the hashing work. */
export const LoginPassword = Type.String({ minLength: 1, maxLength: 1024 });

export const FullName = Type.Union([Type.String({ maxLength: 200 }), Type.Null()]);

export const UserOut = Type.Object(
  {
    id: Type.Integer(),
    email: Type.String(),
    full_name: Type.Union([Type.String(), Type.Null()]),
    role: Type.String(),
    is_active: Type.Boolean(),
    email_verified: Type.Boolean(),
    created_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'User' },
);

export function userOut(user: User): Static<typeof UserOut> {
  return {
    id: user.id,
    email: user.email,
    full_name: user.fullName,
    role: user.role,
    is_active: user.isActive,
    email_verified: user.emailVerified,
    created_at: new Date(user.createdAt).toISOString(),
  };
}

export const TokenResponse = Type.Object(
  {
    access_token: Type.String(),
    refresh_token: Type.Optional(
      Type.String({
        description:
          'absent in cookie mode, where it is set as the HttpOnly cookie (__Host-gatepass_refresh over HTTPS, gatepass_refresh over HTTP)',
      }),
    ),
    token_type: Type.Literal('bearer'),
    expires_in: Type.Integer({ description: 'access token lifetime, seconds' }),
    refresh_expires_in: Type.Integer({ description: 'refresh token lifetime, seconds' }),
  },
  { $id: 'TokenResponse' },
);

export const MessageResponse = Type.Object({ message: Type.String() });

export const TaskOut = Type.Object(
  {
    id: Type.Integer(),
    title: Type.String(),
    description: Type.Union([Type.String(), Type.Null()]),
    done: Type.Boolean(),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  },
  { $id: 'Task' },
);

export function taskOut(task: Task): Static<typeof TaskOut> {
  return {
    id: task.id,
    title: task.title,
    description: task.description,
    done: task.done,
    created_at: new Date(task.createdAt).toISOString(),
    updated_at: new Date(task.updatedAt).toISOString(),
  };
}

export const AuditEventOut = Type.Object(
  {
    id: Type.Integer(),
    created_at: Type.String({ format: 'date-time' }),
    event: Type.String(),
    user_id: Type.Union([Type.Integer(), Type.Null()]),
    actor_id: Type.Union([Type.Integer(), Type.Null()]),
    ip: Type.Union([Type.String(), Type.Null()]),
    user_agent: Type.Union([Type.String(), Type.Null()]),
    details: Type.Record(Type.String(), Type.Unknown()),
  },
  { $id: 'AuditEvent' },
);

export function auditEventOut(event: AuditEvent): Static<typeof AuditEventOut> {
  return {
    id: event.id,
    created_at: new Date(event.createdAt).toISOString(),
    event: event.event,
    user_id: event.userId,
    actor_id: event.actorId,
    ip: event.ip,
    user_agent: event.userAgent,
    details: event.details,
  };
}

const NullableString = Type.Union([Type.String(), Type.Null()]);

/** The fields of a session that every answer about one shows (the session list, the data export). */
export const SessionFields = {
  id: Type.String(),
  created_at: Type.String({ format: 'date-time' }),
  last_used_at: Type.String({ format: 'date-time' }),
  user_agent: NullableString,
  ip: NullableString,
};

export function sessionFields(session: SessionRow): Static<TObject<typeof SessionFields>> {
  return {
    id: session.id,
    created_at: new Date(session.created_at).toISOString(),
    last_used_at: new Date(session.last_used_at).toISOString(),
    user_agent: session.user_agent,
    ip: session.ip,
  };
}

/** Shared schemas registered once with Fastify so routes and the OpenAPI document can refer to them. */
export const SHARED_SCHEMAS = [ErrorResponse, ValidationErrorResponse, UserOut, TokenResponse, TaskOut, AuditEventOut];

/** The OpenAPI security requirement of routes behind the access-token guard. */
export const BEARER_SECURITY = [{ OAuth2PasswordBearer: [] }];
/** Routes that other services call with their credential (HTTP Basic). */
export const SERVICE_SECURITY = [{ ServiceCredential: [] }];
