import { AccountService } from './accounts/account-service.js';
import { AdminService } from './accounts/admin-service.js';
import { PasswordResetService, RESET_EMAILS_PER_HOUR } from './accounts/password-reset.js';
import { AuditLog } from './audit/audit-log.js';
import type { Settings } from './config/settings.js';
import { MemoryCounterStore, RedisCounterStore } from './limits/counter-store.js';
import { AccountLockout } from './limits/lockout.js';
import { RateLimiter } from './limits/rate-limiter.js';
import type { Logger } from './logging.js';
import { OutboxMailer, SmtpMailer } from './mail/mailer.js';
import { Metrics } from './metrics/metrics.js';
import { PasswordHasher } from './passwords/hashing.js';
import { DatabaseRevocationFeed, RedisRevocationBus } from './sessions/revocation-bus.js';
import { RevocationList } from './sessions/revocation-list.js';
import { Revocations } from './sessions/revocations.js';
import { SessionService } from './sessions/session-service.js';
import { openDatabase, type DatabaseHandle } from './store/database.js';
import { connectRedis } from './store/redis-connection.js';
import { migrateToLatest } from './store/migrations.js';
import { RetentionSweeper } from './store/retention.js';
import { RevocationRepository } from './store/revocations.js';
import { TaskRepository } from './store/tasks.js';
import { accessTokenLifetimeMs } from './tokens/jwt-settings.js';
import { openAccessKeys } from './tokens/key-store.js';
import { TokenService, type Clock } from './tokens/token-service.js';

/** gatepass's services, wired once from Settings: what the HTTP app and the CLI both run on. */
export interface Services {
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
  /** Deletes expired rows on a schedule; `sweep()` runs one now. */
  retention: RetentionSweeper;
  now: Clock;
  /** Disconnects from the database and Redis. */
  close(): Promise<void>;
}

export interface ServiceOptions {
  /** The clock every service reads; tests pass their own to move time. */
  now?: Clock | undefined;
  /** Directory relative SQLite paths resolve against. */
  cwd?: string | undefined;
  log: Logger;
}

/**
 * Opens the database named by `settings` and migrates it, connects to Redis when configured and
 * loads the live revocations, creates the admin of ADMIN_EMAIL if missing, and wires the services.
 */
export async function createServices(settings: Settings, options: ServiceOptions): Promise<Services> {
  const now = options.now ?? Date.now;
  // Keys first: a missing key stops the start before anything is opened that would need closing.
  const accessKeys = openAccessKeys(settings.jwt, { createIfEmpty: settings.env !== 'production', now });
  const database = openDatabase(settings.databaseUrl, options.cwd);
  // One Redis command connection, when configured, for the revocation bus and the counters alike, so
  // that every instance shares both; the bus's subscriber needs a connection of its own.
  const redis = settings.redisUrl === undefined ? undefined : { url: settings.redisUrl, commands: connectRedis(settings.redisUrl) };
  const bus =
    redis === undefined
      ? new DatabaseRevocationFeed(new RevocationRepository(database.db), options.log)
      : new RedisRevocationBus(redis.commands, connectRedis(redis.url, true), settings.redisPrefix, options.log);
  const counters = redis === undefined ? new MemoryCounterStore(now) : new RedisCounterStore(redis.commands, settings.redisPrefix);
  // An access token is honoured until exp + leeway, so a revocation must be remembered that long.
  const revocationList = new RevocationList(accessTokenLifetimeMs(settings.jwt), now);
  const revocations = new Revocations(database.db, revocationList, bus, now);
  const retention = new RetentionSweeper(database.db, now, options.log);
  const close = async () => {
    await retention.close();
    await revocations.close();
    await database.close();
  };
  try {
    await migrateToLatest(database, { log: options.log });
    await revocations.start();
    retention.start();
  } catch (error) {
    await close();
    throw error;
  }

  const tokens = new TokenService(settings.jwt, accessKeys, now);
  const metrics = new Metrics();
  const audit = new AuditLog(database.db, now, (event) => metrics.countEvent(event));
  const sessions = new SessionService(
    database.db,
    tokens,
    revocations,
    audit,
    { refreshReuseGraceSeconds: settings.refreshReuseGraceSeconds, rowLocks: database.dialect === 'postgres' },
    now,
  );
  metrics.trackActiveSessions(() => sessions.countLiveSessions());
  const passwords = new PasswordHasher(settings.passwordHashConcurrency);
  const lockout = new AccountLockout(counters, settings.lockout);
  const onRateLimited = (bucket: string) => metrics.countRateLimited(bucket);
  const rateLimiter = new RateLimiter(counters, settings.loginRateLimitPerMinute, onRateLimited);
  const accounts = new AccountService(database.db, passwords, sessions, lockout, rateLimiter, audit, now);
  const mailer =
    settings.smtpUrl === undefined
      ? new OutboxMailer(settings.outboxDir, settings.mailFrom)
      : new SmtpMailer(settings.smtpUrl, settings.mailFrom);
  try {
    if (
      settings.bootstrapAdmin !== undefined &&
      (await accounts.ensureAdmin(settings.bootstrapAdmin.email, settings.bootstrapAdmin.password))
    ) {
      options.log.info('created the admin account named by ADMIN_EMAIL');
    }
    // Compute the dummy hash before the first unknown-email login, so that login is not the slow one.
    await passwords.warmUp();
  } catch (error) {
    await close();
    throw error;
  }
  return {
    settings,
    database,
    revocations,
    tokens,
    sessions,
    accounts,
    admin: new AdminService(database.db, accounts, sessions, settings.rolePermissions, now),
    passwordReset: new PasswordResetService(
      database.db,
      accounts,
      mailer,
      audit,
      options.log,
      new RateLimiter(counters, RESET_EMAILS_PER_HOUR, onRateLimited, 3600_000),
      now,
    ),
    audit,
    metrics,
    rateLimiter,
    tasks: new TaskRepository(database.db),
    retention,
    now,
    close,
  };
}
