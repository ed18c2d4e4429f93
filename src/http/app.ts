import cookie from '@fastify/cookie';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest, type RawReplyDefaultExpression, type RawRequestDefaultExpression, type RawServerDefault } from 'fastify';
import type { Settings } from '../config/settings.js';
import { createServices, type Services } from '../services.js';
import { UserRepository } from '../store/users.js';
import type { Clock } from '../tokens/token-service.js';
import { createGuards, type Guards } from './auth-guard.js';
import { installBodyParsing } from './body-parsing.js';
import { registerDocs } from './docs.js';
import { answerClientError, answerFrameworkError, installErrorHandling } from './errors.js';
import { installSecurityHeaders } from './security-headers.js';
import { adminRoutes } from './routes/admin.js';
import { authRoutes } from './routes/auth.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';
import { sessionRoutes } from './routes/sessions.js';
import { taskRoutes } from './routes/tasks.js';
import { userRoutes } from './routes/users.js';
import { SHARED_SCHEMAS } from './schemas.js';
import { installValidation } from './validation.js';
import { registerWebPage } from './web.js';

declare module 'fastify' {
  interface FastifyInstance {
    gatepass: AppServices;
  }
}

export type GatepassApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

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
    remotePort: request.socket?.remotePort,
  };
}

/** Everything the routes need: the services, and the guards of protected routes. */
export interface AppServices extends Services {
  guards: Guards;
}

export interface BuildAppOptions {
  /** The clock every service reads; tests pass their own to move time. */
  now?: Clock;
  /** Where log lines go (newline-delimited JSON); standard output by default. Tests capture them here. */
  logStream?: NodeJS.WritableStream;
  /** Directory relative SQLite paths resolve against. */
  cwd?: string;
}

/**
 * The app factory: creates the services of `settings` (database, Redis, …) and returns a Fastify
 * instance with every route registered. Closing the app closes the services.
 */
export async function buildApp(settings: Settings, options: BuildAppOptions = {}): Promise<GatepassApp> {
  const now = options.now ?? Date.now;
  const app = Fastify({
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
  }).withTypeProvider<TypeBoxTypeProvider>();

  const services = await createServices(settings, { now, cwd: options.cwd, log: app.log });
  app.addHook('onClose', () => services.close());
  const { tokens, revocations, metrics } = services;
  const users = new UserRepository(services.database.db);
  const routeServices: AppServices = {
    ...services,
    guards: createGuards({
      tokens,
      revocations,
      rolePermissions: settings.rolePermissions,
      observeVerification: (seconds) => metrics.observeVerification(seconds),
      findUser: (id) => users.findById(id),
    }),
  };

  app.decorateRequest('auth', null);
  app.decorateRequest('account', null);
  // The services, for plugins and tests that build on this app (e.g. signing a token with its key).
  app.decorate('gatepass', routeServices);

  installErrorHandling(app);
  await installSecurityHeaders(app, settings);
  await installBodyParsing(app);
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
  installValidation(app, SHARED_SCHEMAS);
  await registerDocs(app);
  await registerWebPage(app);

  // Only the auth routes read or set a cookie (cookie mode), so only they pay for parsing them.
  await app.register(async (auth) => {
    await auth.register(cookie);
    authRoutes(auth, routeServices);
  });
  for (const routes of [healthRoutes, sessionRoutes, userRoutes, taskRoutes, adminRoutes, metricsRoutes]) routes(app, routeServices);
  return app;
}
