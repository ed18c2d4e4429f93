import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { loadSettings, type Settings } from '../config/settings.js';
import { createServices } from '../services.js';
import type { Clock } from '../tokens/token-service.js';
import { createGuards } from './auth-guard.js';
import { installBodyParsing } from './body-parsing.js';
import { registerDocs } from './docs.js';
import { installErrorHandling } from './errors.js';
import { adminRoutes } from './routes/admin.js';
import { authRoutes } from './routes/auth.js';
import { emailVerificationRoutes } from './routes/email-verification.js';
import { externalSignInRoutes } from './routes/external-sign-in.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';
import { mfaRoutes } from './routes/mfa.js';
import { passkeyRoutes } from './routes/passkeys.js';
import { sessionRoutes } from './routes/sessions.js';
import { taskRoutes } from './routes/tasks.js';
import { userRoutes } from './routes/users.js';
import { oauthRoutes } from './routes/oauth.js';
import { revocationFeedRoutes } from './routes/revocation-feed.js';
import { serviceRoutes } from './routes/services.js';
import { SHARED_SCHEMAS } from './schemas.js';
import { installSecurityHeaders } from './security-headers.js';
import { createServiceAuth } from './service-auth.js';
import type { AppServices, GatepassApp } from './types.js';
import { installValidation } from './validation.js';
import { registerWebPage } from './web.js';

export interface GatepassOptions {
  /** The settings; by default `loadSettings(process.env, { cwd })` (the environment, then `.env`). */
  settings?: Settings;
  /**
   * Where the API is mounted, e.g. `/auth-api`: every route of API.md, the docs and the refresh
   * cookie's path move under it. Without one, gatepass answers the app's unknown routes too.
   */
  prefix?: string;
  /** Swagger UI at `<prefix>/docs` and the document at `<prefix>/openapi.json`; default: unless the app already has @fastify/swagger. */
  docs?: boolean;
  /** The clock every service reads; tests pass their own to move time. */
  now?: Clock;
  /** Directory `.env` and relative SQLite paths resolve against. */
  cwd?: string;
}

/** The services and guards of routes, made from `settings`. */
async function createAppServices(settings: Settings, host: FastifyInstance, options: GatepassOptions): Promise<AppServices> {
  const services = await createServices(settings, { now: options.now, cwd: options.cwd, log: host.log });
  const { tokens, revocations, metrics, accounts } = services;
  const guards = {
    ...createGuards({
      tokens,
      revocations,
      rolePermissions: settings.rolePermissions,
      observeVerification: (seconds) => metrics.observeVerification(seconds),
      // A missing user is refused by currentUser itself, with the guard's own answer.
      findUser: (id) => accounts.currentUser(id),
    }),
    ...createServiceAuth(services.serviceCredentials),
  };
  return { ...services, guards };
}

/** JWT_ISSUER when it is an http(s) URL, which RFC 8414 requires of an issuer. */
function urlIssuer(issuer: string | undefined): string | undefined {
  if (issuer === undefined || !URL.canParse(issuer)) return undefined;
  return ['https:', 'http:'].includes(new URL(issuer).protocol) ? issuer : undefined;
}

/** Every route group, each an encapsulated plugin given exactly what it uses. */
async function registerRoutes(api: GatepassApp, services: AppServices): Promise<void> {
  const { settings, accounts, sessions, passwordReset, guards, rateLimiter, tasks, audit, admin, metrics, now, mfa } = services;
  const { authBodyLimitBytes } = settings;
  await api.register(authRoutes, {
    accounts,
    mfa,
    sessions,
    passwordReset,
    emailVerification: services.emailVerification,
    guards,
    rateLimiter,
    settings: { authBodyLimitBytes, corsOrigins: settings.corsOrigins },
  });
  await api.register(emailVerificationRoutes, { emailVerification: services.emailVerification, guards, rateLimiter, authBodyLimitBytes });
  await api.register(mfaRoutes, { mfa, guards, rateLimiter, settings: { authBodyLimitBytes, corsOrigins: settings.corsOrigins } });
  await api.register(passkeyRoutes, {
    passkeys: services.passkeys,
    guards,
    rateLimiter,
    settings: { authBodyLimitBytes, corsOrigins: settings.corsOrigins },
  });
  await api.register(externalSignInRoutes, {
    externalSignIn: services.externalSignIn,
    guards,
    rateLimiter,
    settings: { authBodyLimitBytes, publicUrl: settings.publicUrl },
  });
  await api.register(healthRoutes, {
    database: services.database,
    revocations: services.revocations,
    tokens: services.tokens,
    redisConfigured: settings.redisUrl !== undefined,
  });
  await api.register(sessionRoutes, { sessions, accounts, mfa, guards, authBodyLimitBytes });
  await api.register(userRoutes, {
    accounts,
    mfa,
    emailVerification: services.emailVerification,
    passkeys: services.passkeys,
    externalSignIn: services.externalSignIn,
    sessions,
    tasks,
    audit,
    guards,
    now,
    authBodyLimitBytes,
  });
  await api.register(taskRoutes, { tasks, guards, now });
  await api.register(adminRoutes, { admin, mfa, audit, guards });
  await api.register(serviceRoutes, { serviceCredentials: services.serviceCredentials, guards });
  await api.register(oauthRoutes, {
    introspection: services.introspection,
    guards,
    issuer: urlIssuer(settings.jwt.issuer),
    algorithms: [settings.jwt.algorithm],
  });
  await api.register(revocationFeedRoutes, { revocations: services.revocations, serviceCredentials: services.serviceCredentials, guards });
  await api.register(metricsRoutes, { metrics, guards, metricsAccess: settings.metrics });
}

/**
 * The API in its own encapsulated context: its error and not-found answers, body parsing,
 * validation, security headers and docs apply to its routes only, never to the host app's.
 */
const gatepassApi: FastifyPluginAsync<{ services: AppServices; docs: boolean | undefined }> = async (context, { services, docs }) => {
  const api = context.withTypeProvider<TypeBoxTypeProvider>();
  const { settings } = services;
  // The body bound of routes that set none, whatever the host app's own bodyLimit.
  api.addHook('onRoute', (route) => {
    route.bodyLimit ??= settings.bodyLimitBytes;
  });
  api.decorateRequest('auth', null);
  api.decorateRequest('account', null);
  api.decorateRequest('service', null);
  installErrorHandling(api);
  await installSecurityHeaders(api, settings);
  await installBodyParsing(api);
  for (const schema of SHARED_SCHEMAS) api.addSchema(schema);
  installValidation(api, SHARED_SCHEMAS);
  if (docs ?? !api.hasDecorator('swagger')) await registerDocs(api);
  // The page loads its files and calls the API at absolute paths: it is served only at the root.
  if (api.prefix === '') await registerWebPage(api);
  await registerRoutes(api, services);
};

/**
 * gatepass as a Fastify plugin: `await app.register(gatepass, { settings, prefix: '/auth-api' })`
 * mounts the whole API of API.md into `app`. It decorates `app` with `gatepass` (the services:
 * tokens, database, …) and closes them when `app` closes; everything else stays in its own context.
 */
async function gatepassPlugin(host: FastifyInstance, options: GatepassOptions): Promise<void> {
  if (host.hasDecorator('gatepass')) throw new Error('gatepass is already registered on this app');
  const settings = options.settings ?? loadSettings(process.env, options.cwd === undefined ? {} : { cwd: options.cwd });
  const services = await createAppServices(settings, host, options);
  host.addHook('onClose', () => services.close());
  host.decorate('gatepass', services);
  // Without a trailing slash, so that `/auth-api/` puts the cookie at /auth-api/auth, not /auth-api//auth.
  await host.register(gatepassApi, { services, docs: options.docs, prefix: (options.prefix ?? '').replace(/\/+$/, '') });
}

export const gatepass = fastifyPlugin(gatepassPlugin, { name: 'gatepass', fastify: '5.x' });
