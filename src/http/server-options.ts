import type { Socket } from 'node:net';
import type { FastifyRequest, FastifyServerOptions } from 'fastify';
import type { Settings } from '../config/settings.js';
import { answerClientError, answerFrameworkError } from './errors.js';

/**
 * Log fields that could hold a credential; pino replaces their values. Explicit paths only: with a
 * wildcard path (`*.password`), pino runs the redaction on the bindings of the child logger that
 * Fastify creates for every request, which cost about a fifth of a small route's throughput.
 * Nothing logs request bodies; these cover a credential passed to a log call by name or in a body.
 */
const LOG_REDACTIONS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  ...['password', 'current_password', 'new_password', 'token', 'access_token', 'refresh_token', 'secret'].flatMap((field) => [
    field,
    `body.${field}`,
    `req.body.${field}`,
  ]),
];

/** TRUST_PROXY as a hop count: the client address is the one the n-th proxy from us received the request from. */
function trustHops(hops: number): (address: string, hop: number) => boolean {
  return (_address, hop) => hop < hops;
}

/** A query-string name worth keeping in a log line: a short identifier, never a value (a token) sent as a bare name. */
const LOGGABLE_QUERY_NAME = /^[A-Za-z_][\w.[\]-]{0,31}$/;

/**
 * The request URL as logged: the path, then each query-string name with its value replaced, because
 * a client may put a token there (`?access_token=…`, which no route accepts, or a reset token) and a
 * request log line is written before any route could refuse it.
 */
function redactedUrl(url: string): string {
  const query = url.indexOf('?');
  if (query === -1) return url;
  const pairs = url
    .slice(query + 1)
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      const name = equals === -1 ? pair : pair.slice(0, equals);
      if (!LOGGABLE_QUERY_NAME.test(name)) return '[redacted]';
      return equals === -1 ? name : `${name}=[redacted]`;
    });
  return `${url.slice(0, query)}?${pairs.join('&')}`;
}

/** Fastify's own `req` log serializer, with the query string's values redacted. */
function serializeRequest(request: FastifyRequest): Record<string, unknown> {
  return {
    method: request.method,
    url: redactedUrl(request.url),
    version: request.headers['accept-version'],
    host: request.host,
    remoteAddress: request.ip,
    // As Fastify's own serializer: a request's socket can be gone by the time it is logged.
    remotePort: (request.socket as Socket | undefined)?.remotePort,
  };
}

/**
 * The server-wide Fastify options of the gatepass server, which no plugin can set: the logger (with
 * every credential redacted), TRUST_PROXY, the body limit, and `{detail, code}` answers to requests
 * refused before routing. A host app that mounts gatepass may start from them: `Fastify(gatepassServerOptions(settings))`.
 */
export function gatepassServerOptions(settings: Settings, options: { logStream?: NodeJS.WritableStream } = {}): FastifyServerOptions {
  return {
    logger: {
      level: settings.logLevel,
      // Fastify logs no bodies, but errors and plugins may carry headers or fields: hide every secret.
      redact: { paths: LOG_REDACTIONS, censor: '[redacted]' },
      serializers: { req: serializeRequest },
      ...(options.logStream !== undefined && { stream: options.logStream }),
    },
    // A hop count as a function: Fastify's own number form believes no X-Forwarded-For at all.
    // proxy-addr calls it with hop 0 for the socket's peer, so `hop < n` trusts the n proxies nearest to us.
    trustProxy: typeof settings.trustProxy === 'number' ? trustHops(settings.trustProxy) : settings.trustProxy,
    bodyLimit: settings.bodyLimitBytes,
    // Errors raised before any route runs (a URL that does not decode, bytes Node's HTTP parser refuses) answer {detail, code} too.
    frameworkErrors: answerFrameworkError,
    clientErrorHandler: answerClientError,
  };
}
