import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FieldError, GatepassError, type ErrorCode } from '../errors.js';
import { TaskOwnerMissingError } from '../store/tasks.js';
import { bearerChallenge, INVALID_CREDENTIALS, TOKEN_FAILURE_STATUS } from '../tokens/failures.js';

/** The one table from a service failure to its HTTP status (API.md). */
const STATUS_BY_CODE: Record<ErrorCode, number> = {
  ...TOKEN_FAILURE_STATUS,
  invalid_credentials: 401,
  user_not_found: 401,
  account_disabled: 403,
  email_taken: 409,
  last_admin: 409,
  not_found: 404,
  invalid_reset_token: 400,
  csrf_failed: 403,
  duplicate_cookie: 400,
  rate_limited: 429,
  account_locked: 429,
  service_unavailable: 503,
  service_exists: 409,
  invalid_client: 401,
  email_not_verified: 403,
  already_verified: 409,
  // API.md answers a bad verification token with code `invalid_token`, status 400 (see PUBLIC_CODES).
  invalid_verification_token: 400,
  invalid_code: 400,
  mfa_required: 403,
  mfa_already_enabled: 409,
  mfa_not_enabled: 409,
  invalid_mfa_token: 401,
  invalid_passkey: 400,
  invalid_credential: 401,
  passkeys_disabled: 404,
  password_not_set: 409,
  last_sign_in_method: 409,
  reauthentication_required: 403,
  unknown_provider: 404,
  provider_unavailable: 503,
};

/** Codes API.md spells differently from the internal one, where one name would mean two statuses. */
const PUBLIC_CODES: Partial<Record<ErrorCode, string>> = { invalid_verification_token: 'invalid_token' };

/**
 * Services authenticate with HTTP Basic (RFC 6749 §2.3.1), so their refusal challenges for Basic
 * (RFC 7617), not for a Bearer token (RFC 6749 §5.2).
 */
const SERVICE_CHALLENGE = 'Basic realm="gatepass", charset="UTF-8"';

export interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

export function sendError(reply: FastifyReply, status: number, code: string, detail: string): FastifyReply {
  return reply.code(status).send({ detail, code });
}

function sendValidationErrors(reply: FastifyReply, issues: ValidationIssue[]): FastifyReply {
  return reply.code(422).send({ detail: issues, code: 'validation_error' });
}

function sendGatepassError(reply: FastifyReply, error: GatepassError): FastifyReply {
  const status = STATUS_BY_CODE[error.code];
  if (error.retryAfterSeconds !== undefined) reply.header('Retry-After', String(error.retryAfterSeconds));
  if (status === 401) reply.header('WWW-Authenticate', error.code === 'invalid_client' ? SERVICE_CHALLENGE : bearerChallenge(error.code));
  return sendError(reply, status, PUBLIC_CODES[error.code] ?? error.code, error.detail);
}

/**
 * Failures of a backing service rather than of the request: the client may retry, so they answer
 * 503, not 500. PostgreSQL class 08 (connection), 57P0x (shutdown), 40001/40P01 (serialization
 * failure, deadlock: the transaction was rolled back whole), socket errors, a busy SQLite.
 */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  '53300',
  '57P01',
  '57P02',
  '57P03',
  '40001',
  '40P01',
  'SQLITE_BUSY',
]);

function isUnavailable(error: { code?: unknown; message?: string }): boolean {
  const code = typeof error.code === 'string' ? error.code : '';
  return (
    UNAVAILABLE_CODES.has(code) ||
    code.startsWith('08') ||
    /Connection terminated|timeout exceeded when trying to connect/i.test(error.message ?? '')
  );
}

/** FastAPI names the request parts this way in `loc`. */
const LOCATION_NAMES: Record<string, string> = { body: 'body', querystring: 'query', params: 'path', headers: 'header' };

interface AjvIssue {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

/** Rewrites Ajv's errors into FastAPI's `{loc, msg, type}` items, so seed clients parse them unchanged. */
function toValidationIssues(context: string, errors: AjvIssue[], request: FastifyRequest): ValidationIssue[] {
  const where = LOCATION_NAMES[context] ?? context;
  return errors.map((error) => {
    const path = error.instancePath
      .split('/')
      .slice(1)
      .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
      .map((part) => (/^\d+$/.test(part) ? Number(part) : part));
    const loc: (string | number)[] = [where, ...path];
    const p = error.params;
    switch (error.keyword) {
      case 'required':
        return { loc: [...loc, String(p.missingProperty)], msg: 'Field required', type: 'missing' };
      case 'minLength':
        return { loc, msg: `String should have at least ${String(p.limit)} characters`, type: 'string_too_short' };
      case 'maxLength':
        return { loc, msg: `String should have at most ${String(p.limit)} characters`, type: 'string_too_long' };
      case 'minimum':
        return { loc, msg: `Input should be greater than or equal to ${String(p.limit)}`, type: 'greater_than_equal' };
      case 'maximum':
        return { loc, msg: `Input should be less than or equal to ${String(p.limit)}`, type: 'less_than_equal' };
      case 'format':
        return p.format === 'email'
          ? { loc, msg: 'value is not a valid email address', type: 'value_error' }
          : { loc, msg: `Input should be a valid ${String(p.format)}`, type: 'value_error' };
      case 'additionalProperties':
        return { loc: [...loc, String(p.additionalProperty)], msg: 'Extra inputs are not permitted', type: 'extra_forbidden' };
      case 'type': {
        if (path.length === 0 && context === 'body' && (request.body === undefined || request.body === null)) {
          return { loc, msg: 'Field required', type: 'missing' };
        }
        const expected = String(p.type).split(',')[0];
        const names: Record<string, [string, string]> = {
          string: ['a valid string', 'string_type'],
          integer: ['a valid integer', 'int_type'],
          number: ['a valid number', 'float_type'],
          boolean: ['a valid boolean', 'bool_type'],
          object: ['a valid dictionary', 'dict_type'],
          array: ['a valid list', 'list_type'],
        };
        const [what, type] = names[expected ?? ''] ?? [`of type ${String(p.type)}`, 'type_error'];
        return { loc, msg: `Input should be ${what}`, type };
      }
      default:
        return { loc, msg: error.message ?? 'Invalid value', type: error.keyword };
    }
  });
}

/**
 * Fastify's own failures that a request can cause, each as the `{detail, code}` API.md promises rather
 * than Fastify's `{error, code: "FST_…", message, statusCode}` (whose message echoes the URL, query
 * string included). The body-parsing ones with a FastAPI counterpart are mapped in the error handler.
 */
const FRAMEWORK_ANSWERS: Record<string, [status: number, code: string, detail: string]> = {
  FST_ERR_BAD_URL: [400, 'invalid_url', 'Malformed URL: invalid percent-encoding'],
  FST_ERR_MAX_PARAM_LENGTH: [414, 'uri_too_long', 'A segment of the URL path is too long'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'invalid_content_length', 'Request body size did not match Content-Length'],
  // A constraint strategy of ours failed: a fault of the server, not of the request (none is async today).
  FST_ERR_ASYNC_CONSTRAINT: [500, 'internal_error', 'Internal Server Error'],
};

/**
 * For Fastify's `frameworkErrors` option: errors raised while routing, before any hook or handler
 * runs (a URL that does not decode, an over-long path parameter), which the error handler never sees.
 */
export function answerFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const [status, code, detail] = FRAMEWORK_ANSWERS[error.code] ?? [400, 'bad_request', 'Bad Request'];
  if (status >= 500) request.log.error({ err: error }, 'framework error');
  void sendError(reply, status, code, detail);
}

/**
 * For Fastify's `clientErrorHandler` option: a request Node's HTTP parser refused (no Fastify request
 * exists; the socket is written to directly, then closed), answered in the same shape. Only the error
 * code is logged: Node's error carries the raw bytes received, which may hold an Authorization header.
 */
export function answerClientError(this: FastifyInstance, error: NodeJS.ErrnoException, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, detail] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT' || error.code === 'ERR_HTTP_HEADERS_TIMEOUT'
      ? [408, 'request_timeout', 'Request timed out']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'headers_too_large', 'Request headers are too large']
        : [400, 'bad_request', 'Malformed HTTP request'];
  this.log.debug({ code: error.code }, 'malformed request refused by the HTTP parser');
  if (socket.writable) {
    const body = JSON.stringify({ detail, code });
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/**
 * Installs the error and not-found handlers: every failure leaves as `{detail, code}` (or FastAPI's
 * 422 list), and only a genuine fault of ours becomes a 500 — never bad input.
 */
export function installErrorHandling(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) => sendError(reply, 404, 'not_found', 'Not Found'));

  app.setErrorHandler((error: FastifyError | GatepassError | FieldError, request, reply) => {
    if (error instanceof GatepassError) return sendGatepassError(reply, error);
    // A genuine token of a user whose row is gone: no credential at all.
    if (error instanceof TaskOwnerMissingError) return sendGatepassError(reply, new GatepassError('invalid_token', INVALID_CREDENTIALS));
    if (error instanceof FieldError) return sendValidationErrors(reply, [{ loc: error.loc, msg: error.msg, type: error.type }]);
    if (error.validation !== undefined) {
      return sendValidationErrors(reply, toValidationIssues(error.validationContext ?? 'body', error.validation, request));
    }
    switch (error.code) {
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return sendValidationErrors(reply, [{ loc: ['body'], msg: 'JSON decode error', type: 'json_invalid' }]);
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return sendError(reply, 413, 'payload_too_large', 'Request body is too large');
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return sendError(reply, 415, 'unsupported_media_type', 'Unsupported Content-Type; send application/json');
      default:
        break;
    }
    const framework = FRAMEWORK_ANSWERS[error.code];
    if (framework !== undefined && framework[0] < 500) return sendError(reply, ...framework);
    if (error instanceof SyntaxError) {
      return sendValidationErrors(reply, [{ loc: ['body'], msg: 'JSON decode error', type: 'json_invalid' }]);
    }
    const status = error.statusCode ?? 500;
    if (status >= 400 && status < 500) return sendError(reply, status, 'bad_request', error.message);
    if (isUnavailable(error)) {
      request.log.error({ err: error }, 'backing service unavailable');
      return sendError(reply, 503, 'service_unavailable', 'Service temporarily unavailable; try again shortly');
    }
    request.log.error({ err: error }, 'unhandled error');
    return sendError(reply, 500, 'internal_error', 'Internal Server Error');
  });
}
