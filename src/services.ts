import { AccountService } from './accounts/account-service.js';
import { AdminService } from './accounts/admin-service.js';
import { ExternalSignInService } from './accounts/external/external-sign-in.js';
import { createGitHubProvider } from './accounts/external/github-provider.js';
import { createOidcProvider } from './accounts/external/oidc-provider.js';
import type { ExternalProvider } from './accounts/external/provider.js';
import { MfaService } from './accounts/mfa/mfa-service.js';
import { PasskeyService } from './accounts/passkeys.js';
import { PasswordResetService, RESET_EMAILS_PER_HOUR } from './accounts/password-reset.js';
import { EmailVerificationService, VERIFICATION_EMAILS_PER_HOUR } from './accounts/email-verification.js';
import { ServiceCredentials } from './accounts/service-credentials.js';
import { AuditLog } from './audit/audit-log.js';
import type { OAuthProviderSettings, Settings } from './config/settings.js';
import { MemoryCounterStore, RedisCounterStore, type CounterStore } from './limits/counter-store.js';
import { AccountLockout } from './limits/lockout.js';
import { RateLimiter } from './limits/rate-limiter.js';
import type { Logger } from './logging.js';
import { OutboxMailer, SmtpMailer, type Mailer } from './mail/mailer.js';
import { Metrics } from './metrics/metrics.js';
import { PasswordHasher } from './passwords/hashing.js';
import { DatabaseRevocationFeed, RedisRevocationBus } from './sessions/revocation-bus.js';
import { RevocationList } from './tokens/revocation-list.js';
import { TokenIntrospection } from './sessions/token-introspection.js';
import { Revocations } from './sessions/revocations.js';
import { SessionService } from './sessions/session-service.js';
import { openDatabase, type DatabaseHandle } from './store/database.js';
import { connectRedis } from './store/redis-connection.js';
import { migrateToLatest } from './store/migrations.js';
import { RetentionSweeper } from './store/retention.js';
import { RevocationRepository } from './store/revocations.js';
import { TaskRepository } from './store/tasks.js';
import { accessTokenLifetimeMs } from './tokens/jwt-settings.js';
import { openAccessKeys, type AccessKeys } from './tokens/key-store.js';
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
  /** Two-factor sign-in: TOTP enrolment, recovery codes, the login's second step. */
  mfa: MfaService;
  emailVerification: EmailVerificationService;
  /** Passkeys (WebAuthn): registration, the user's list, usernameless sign-in. */
  passkeys: PasskeyService;
  /** Sign-in through the providers of OAUTH_PROVIDERS, and the linked identities. */
  externalSignIn: ExternalSignInService;
  /** The credentials of other services (the revocation feed, introspection, revocation). */
  serviceCredentials: ServiceCredentials;
  /** RFC 7662 introspection and RFC 7009 revocation, for other services. */
  introspection: TokenIntrospection;
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
 *
 * Start-up runs in three steps, in this order: open and start what holds connections (the
 * foundation), wire the services over it, then bootstrap (the admin, the dummy hash). A failure
 * while opening or bootstrapping closes the foundation before the error is rethrown.
 */
export async function createServices(settings: Settings, options: ServiceOptions): Promise<Services> {
  const now = options.now ?? Date.now;
  const foundation = await openFoundation(settings, options, now);
  const { database, counters, revocations, retention, close } = foundation;
  const core = wireCoreServices(settings, foundation, now);
  const { tokens, metrics, audit, sessions, accounts, rateLimiter, onRateLimited } = core;
  await bootstrap(settings, core, options.log, close);
  const passkeys = new PasskeyService(database.db, sessions, audit, settings.webauthn, now, {
    requireEmailVerification: settings.requireEmailVerification,
  });
  // The login's lockout (the same counters and policy: codes and passwords share each account's
  // budget), and one of codes alone, which a correct password does not reset.
  const mfa = new MfaService(
    database.db,
    accounts,
    sessions,
    passkeys,
    { account: new AccountLockout(counters, settings.lockout), codes: new AccountLockout(counters, settings.lockout, 'mfa-lockout') },
    audit,
    options.log,
    { issuer: 'gatepass', encryptionKey: settings.mfaEncryptionKey },
    now,
  );
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
      core.mailer,
      audit,
      options.log,
      new RateLimiter(counters, RESET_EMAILS_PER_HOUR, onRateLimited, 3600_000),
      now,
    ),
    emailVerification: new EmailVerificationService(
      database.db,
      accounts,
      core.mailer,
      audit,
      options.log,
      new RateLimiter(counters, VERIFICATION_EMAILS_PER_HOUR, onRateLimited, 3600_000),
      settings.publicUrl,
      now,
    ),
    mfa,
    passkeys,
    externalSignIn: new ExternalSignInService(
      database.db,
      settings.oauthProviders.map(externalProvider),
      sessions,
      mfa,
      audit,
      options.log,
      { publicUrl: settings.publicUrl, requireEmailVerification: settings.requireEmailVerification },
      now,
    ),
    serviceCredentials: new ServiceCredentials(database.db, audit, now),
    introspection: new TokenIntrospection(database.db, tokens, revocations, sessions, audit, now),
    audit,
    metrics,
    rateLimiter,
    tasks: new TaskRepository(database.db),
    retention,
    now,
    close,
  };
}

/**
 * A provider of OAUTH_PROVIDERS. Nothing is fetched here (OIDC discovery waits for the first sign-in),
 * so a provider that is down never stops the start. Plain http passed the settings only on the loopback.
 */
function externalProvider(provider: OAuthProviderSettings): ExternalProvider {
  const base = { id: provider.id, name: provider.name, clientId: provider.clientId, clientSecret: provider.clientSecret };
  if (provider.type === 'github') {
    const insecure = [provider.githubUrl, provider.apiUrl].some((url) => new URL(url).protocol === 'http:');
    return createGitHubProvider({
      ...base,
      webUrl: provider.githubUrl,
      apiUrl: provider.apiUrl,
      scopes: provider.scopes,
      allowInsecureRequests: insecure,
    });
  }
  return createOidcProvider({
    ...base,
    issuer: provider.issuer,
    scopes: provider.scopes,
    allowInsecureRequests: new URL(provider.issuer).protocol === 'http:',
  });
}

/** What start-up opens and starts before any service is wired; `close` undoes all of it. */
interface Foundation {
  accessKeys: AccessKeys;
  database: DatabaseHandle;
  /** In memory, or in Redis when configured, so that every instance shares them. */
  counters: CounterStore;
  revocations: Revocations;
  retention: RetentionSweeper;
  close: () => Promise<void>;
}

/**
 * Opens the access keys, the database and Redis, migrates the database, loads the live revocations
 * and starts the retention sweep. If a start fails, what was opened is closed before the error goes on.
 */
async function openFoundation(settings: Settings, options: ServiceOptions, now: Clock): Promise<Foundation> {
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
  const revocations = new Revocations(database.db, revocationList, bus, options.log, now);
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
  return { accessKeys, database, counters, revocations, retention, close };
}

/** The services that others are built on, and what bootstrap and the rest of the wiring need from them. */
interface CoreServices {
  tokens: TokenService;
  metrics: Metrics;
  audit: AuditLog;
  sessions: SessionService;
  passwords: PasswordHasher;
  rateLimiter: RateLimiter;
  /** Counts a refused request in the metrics, for every rate limiter. */
  onRateLimited: (bucket: string) => void;
  accounts: AccountService;
  mailer: Mailer;
}

/** Wires the tokens, sessions, accounts and their helpers over the foundation; nothing here opens a connection. */
function wireCoreServices(settings: Settings, { accessKeys, database, counters, revocations }: Foundation, now: Clock): CoreServices {
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
  const accounts = new AccountService(database.db, passwords, sessions, lockout, rateLimiter, audit, now, {
    requireEmailVerification: settings.requireEmailVerification,
  });
  const mailer =
    settings.smtpUrl === undefined
      ? new OutboxMailer(settings.outboxDir, settings.mailFrom)
      : new SmtpMailer(settings.smtpUrl, settings.mailFrom);
  return { tokens, metrics, audit, sessions, passwords, rateLimiter, onRateLimited, accounts, mailer };
}

/**
 * Creates the admin of ADMIN_EMAIL if missing and warms the password hasher up. Runs once the
 * services are wired (it needs the accounts); a failure closes the foundation before it goes on.
 */
async function bootstrap(
  settings: Settings,
  { accounts, passwords }: CoreServices,
  log: Logger,
  close: () => Promise<void>,
): Promise<void> {
  try {
    if (
      settings.bootstrapAdmin !== undefined &&
      (await accounts.ensureAdmin(settings.bootstrapAdmin.email, settings.bootstrapAdmin.password))
    ) {
      log.info('created the admin account named by ADMIN_EMAIL');
    }
    // Compute the dummy hash before the first unknown-email login, so that login is not the slow one.
    await passwords.warmUp();
  } catch (error) {
    await close();
    throw error;
  }
}
