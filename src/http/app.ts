import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type RawReplyDefaultExpression, type RawRequestDefaultExpression, type RawServerDefault } from 'fastify';
import { AccountService } from '../accounts/account-service.js';
import { AdminService } from '../accounts/admin-service.js';
import { PasswordResetService } from '../accounts/password-reset.js';
import { AuditLog } from '../audit/audit-log.js';
import type { Settings } from '../config/settings.js';
import { MemoryCounterStore, RedisCounterStore } from '../limits/counter-store.js';
import { AccountLockout } from '../limits/lockout.js';
import { RateLimiter } from '../limits/rate-limiter.js';
import { OutboxMailer, SmtpMailer } from '../mail/mailer.js';
import { Metrics } from '../metrics/metrics.js';
import { PasswordHasher } from '../passwords/hashing.js';
import { LocalRevocationBus, RedisRevocationBus } from '../sessions/revocation-bus.js';
import { RevocationList } from '../sessions/revocation-list.js';
import { Revocations } from '../sessions/revocations.js';
import { SessionService } from '../sessions/session-service.js';
import { openDatabase, type DatabaseHandle } from '../store/database.js';
import { migrateToLatest } from '../store/migrations.js';
import { TaskRepository } from '../store/tasks.js';
import type { Clock } from '../tokens/token-service.js';
import { TokenService } from '../tokens/token-service.js';
import { createGuards, type Guards } from './auth-guard.js';
import { installBodyParsing } from './body-parsing.js';
import { registerDocs } from './docs.js';
import { installErrorHandling } from './errors.js';
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

export type GatepassApp = FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, FastifyBaseLogger, TypeBoxTypeProvider>;

/** Log fields that could hold a credential; pino replaces their values. */
const LOG_REDACTIONS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  ...['password', 'current_password', 'new_password', 'token', 'access_token', 'refresh_token', 'secret'].flatMap((field) => [
    field,
    `*.${field}`,
    `*.*.${field}`,
  ]),
];

/** Everything the routes need, built once per app. */
export interface AppServices {
  settings: Settings;
  database: DatabaseHandle;
  revocations: Revocations;
  tokens: TokenService;
  accounts: AccountService;
  sessions: SessionService;
  admin: AdminService;
  passwordReset: PasswordResetService;
  audit: AuditLog;
  metrics: Metrics;
  tasks: TaskRepository;
  rateLimiter: RateLimiter;
  guards: Guards;
  now: Clock;
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
 * The app factory: opens the database named by `settings`, migrates it, and returns a Fastify
 * instance with every route registered. Closing the app closes the database.
 */
export async function buildApp(settings: Settings, options: BuildAppOptions = {}): Promise<GatepassApp> {
  const now = options.now ?? Date.now;
  const app = Fastify({
    logger: {
      level: settings.logLevel,
      // Fastify logs no bodies, but errors and plugins may carry headers or fields: hide every secret.
      redact: { paths: LOG_REDACTIONS, censor: '[redacted]' },
      ...(options.logStream !== undefined && { stream: options.logStream }),
    },
    trustProxy: settings.trustProxy,
    bodyLimit: settings.bodyLimitBytes,
  }).withTypeProvider<TypeBoxTypeProvider>();

  const database = openDatabase(settings.databaseUrl, options.cwd);
  const bus = settings.redisUrl === undefined ? new LocalRevocationBus() : new RedisRevocationBus(settings.redisUrl, settings.redisPrefix, app.log);
  // Counters live beside the revocation bus: in Redis when configured, so every instance shares them.
  const counters = bus instanceof RedisRevocationBus ? new RedisCounterStore(bus.commands, settings.redisPrefix) : new MemoryCounterStore(now);
  // An access token is honoured until exp + leeway, so a revocation must be remembered that long.
  const revocationList = new RevocationList((settings.jwt.accessTtlSeconds + settings.jwt.leewaySeconds) * 1000, now);
  const revocations = new Revocations(database.db, revocationList, bus, now);
  try {
    await migrateToLatest(database);
    await revocations.start();
  } catch (error) {
    await revocations.close();
    await database.close();
    throw error;
  }
  app.addHook('onClose', async () => {
    await revocations.close();
    await database.close();
  });

  const tokens = new TokenService(settings.jwt, now);
  const metrics = new Metrics();
  const audit = new AuditLog(database.db, now, (event) => metrics.countEvent(event));
  const sessions = new SessionService(database.db, tokens, revocations, audit, settings, now);
  metrics.trackActiveSessions(() => sessions.countLiveSessions());
  const passwords = new PasswordHasher();
  const lockout = new AccountLockout(counters, {
    threshold: settings.accountLockoutThreshold,
    lockSeconds: settings.accountLockoutSeconds,
    maxLockSeconds: 3600,
  });
  const accounts = new AccountService(database.db, passwords, sessions, lockout, audit, now);
  const mailer = settings.smtpUrl === undefined ? new OutboxMailer(settings.outboxDir, settings.mailFrom) : new SmtpMailer(settings.smtpUrl, settings.mailFrom);
  const services: AppServices = {
    settings,
    database,
    revocations,
    tokens,
    sessions,
    accounts,
    admin: new AdminService(database.db, accounts, sessions, now),
    passwordReset: new PasswordResetService(database.db, accounts, mailer, audit, app.log, now),
    audit,
    metrics,
    rateLimiter: new RateLimiter(counters, settings.loginRateLimitPerMinute, (bucket) => metrics.countRateLimited(bucket)),
    tasks: new TaskRepository(database.db),
    guards: createGuards({
      tokens,
      revocations,
      rolePermissions: settings.rolePermissions,
      observeVerification: (seconds) => metrics.observeVerification(seconds),
    }),
    now,
  };
  if (settings.bootstrapAdmin !== undefined && (await accounts.ensureAdmin(settings.bootstrapAdmin.email, settings.bootstrapAdmin.password))) {
    app.log.info('created the admin account named by ADMIN_EMAIL');
  }

  app.decorateRequest('auth', null);

  installErrorHandling(app);
  await installSecurityHeaders(app, settings);
  await installBodyParsing(app);
  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
  installValidation(app, SHARED_SCHEMAS);
  await registerDocs(app);

  healthRoutes(app, services);
  authRoutes(app, services);
  sessionRoutes(app, services);
  userRoutes(app, services);
  taskRoutes(app, services);
  adminRoutes(app, services);
  metricsRoutes(app, services);

  // Compute the dummy hash before the first unknown-email login, so that login is not the slow one.
  await passwords.warmUp();
  return app;
}
