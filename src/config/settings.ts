import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { ALGORITHMS, isAlgorithm, isHmacAlgorithm, type Algorithm } from '../tokens/algorithms.js';
import type { LockoutPolicy } from '../limits/lockout.js';
import type { JwtSettings } from '../tokens/jwt-settings.js';
import { readOAuthProviders, type OAuthProviderSettings } from './oauth-providers.js';
import { readWebAuthnSettings, type WebAuthnSettings } from './webauthn.js';
import {
  DEFAULT_ROLE_PERMISSIONS,
  isPermission,
  isRole,
  PERMISSIONS,
  ROLES,
  type Permission,
  type Role,
  type RolePermissions,
} from '../tokens/roles.js';

export type Environment = 'development' | 'production' | 'test';

export type { JwtSettings };
export type { GithubProviderSettings, OAuthProviderSettings, OidcProviderSettings } from './oauth-providers.js';

export interface Settings {
  env: Environment;
  host: string;
  port: number;
  databaseUrl: string;
  /** When set, revocations are broadcast and counters shared through Redis, so several instances can run. */
  redisUrl: string | undefined;
  /** Namespace of gatepass's Redis keys and channels, so that deployments can share one Redis. */
  redisPrefix: string;
  dataDir: string;
  jwt: JwtSettings;
  /** Re-presenting a used refresh token within this many seconds is a benign race, not theft. 0 disables. */
  refreshReuseGraceSeconds: number;
  /**
   * The proxies in front of gatepass, whose X-Forwarded-For entries are believed: false (none), a hop
   * count, or their addresses/CIDRs. The client address is the right-most untrusted hop.
   */
  trustProxy: TrustProxy;
  /** Browser origins allowed to call the API (CORS), e.g. https://app.example.com. */
  corsOrigins: string[];
  /** Requests per minute per client IP on login, register and password-forgot; 0 disables. */
  loginRateLimitPerMinute: number;
  /** argon2 computations at once (default: CPU cores − 1, at least 1), so logins leave the event loop a core. */
  passwordHashConcurrency: number;
  /** Per-account lockout after failed password checks: threshold, first lock, ceiling, memory. */
  lockout: LockoutPolicy;
  /** Upper bound on request bodies of the auth routes (API.md: 16 KiB). */
  authBodyLimitBytes: number;
  /** Upper bound on every other request body. */
  bodyLimitBytes: number;
  /** With no SMTP_URL, outgoing email is written here, one file per message. */
  outboxDir: string;
  smtpUrl: string | undefined;
  mailFrom: string;
  /** REQUIRE_EMAIL_VERIFICATION: login of an account whose address is unverified answers 403 email_not_verified. */
  requireEmailVerification: boolean;
  /** PUBLIC_URL: where users reach the web page (links in mail), without a trailing slash. */
  publicUrl: string;
  /**
   * MFA_ENCRYPTION_KEY: the secret TOTP secrets are encrypted under at rest (default: derived from
   * JWT_REFRESH_SECRET). Changing it makes existing enrolments unreadable: those accounts need an
   * admin reset of their second factor.
   */
  mfaEncryptionKey: string;
  /** WEBAUTHN_RP_ID, WEBAUTHN_RP_NAME, WEBAUTHN_ORIGINS (config/webauthn.ts); undefined: passkeys are off (production, unset). */
  webauthn: WebAuthnSettings | undefined;
  /** OAUTH_PROVIDERS and their OAUTH_<ID>_* variables (config/oauth-providers.ts): external sign-in, in the listed order. */
  oauthProviders: OAuthProviderSettings[];
  /** Who may read /metrics: nobody (off), anyone (public), or holders of METRICS_TOKEN / the audit:read permission. */
  metrics: { mode: 'off' | 'public' | 'protected'; token: string | undefined };
  /** What each role may do (ROLE_PERMISSIONS over the defaults). */
  rolePermissions: RolePermissions;
  /** When both are set, this admin is created at start if missing. */
  bootstrapAdmin: { email: string; password: string } | undefined;
  logLevel: string;
  /** Things the operator should know about the loaded configuration (logged at start). */
  warnings: string[];
}

/** TRUST_PROXY: off, the number of proxies in front of gatepass, or their addresses and CIDRs. */
export type TrustProxy = false | number | string[];

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

const MIN_SECRET_BYTES = 32;
const GENERATE_HINT = 'generate one with `openssl rand -hex 32`';

/** Secrets that appear in tutorials (the seeds among them) and must never guard a real deployment. */
const WELL_KNOWN_SECRETS = new Set(
  [
    'secret',
    'changeme',
    'change-me',
    'your-secret-key',
    'your-secret-key-from-env',
    'a-different-secret-key',
    'your-super-secret-key-change-this-in-production',
    'your-super-secret-key-change-this-in-production-min-32-chars',
    'your-256-bit-secret',
    'supersecret',
    'jwt-secret',
    'mysecret',
  ].map((s) => s.toLowerCase()),
);

type Source = Record<string, string | undefined>;

export interface LoadSettingsOptions {
  /** Directory holding `.env` and, by default, `./data`. */
  cwd?: string;
}

/**
 * What the settings are read from (the environment over `.env`), and the list every reader adds its
 * problems to: nothing stops at the first problem, so that an operator fixes them all in one go.
 */
interface SettingsReader {
  /** A setting's trimmed value; empty counts as unset. */
  read: (name: string) => string | undefined;
  /** A whole number within [min, max]; anything else is recorded as a problem and gives the fallback. */
  integer: (name: string, fallback: number, min: number, max: number) => number;
  /** The merged source itself, for values that must not be trimmed (a password). */
  source: Source;
  problems: string[];
}

/** Reads `.env` in `cwd` (if any) and lays the environment over it, so that the environment wins. */
function settingsReader(env: Source, cwd: string): SettingsReader {
  const dotenvPath = path.join(cwd, '.env');
  const fromFile = existsSync(dotenvPath) ? parseDotenv(readFileSync(dotenvPath)) : {};
  const source: Source = { ...fromFile, ...env };
  const problems: string[] = [];
  const read = (name: string): string | undefined => {
    const value = source[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    if (!/^-?\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
      return fallback;
    }
    return Number(raw);
  };
  return { read, integer, source, problems };
}

/**
 * Reads settings from the environment, falling back to `.env` in `cwd`, and validates them.
 * Throws ConfigError listing every problem at once, so an operator fixes them in one go.
 *
 * The steps run in this order on purpose: it is the order of the problems in the ConfigError, and
 * the development secrets (written to disk) are only generated once the data directory is known.
 */
export function loadSettings(env: Source = process.env, options: LoadSettingsOptions = {}): Settings {
  const cwd = options.cwd ?? process.cwd();
  const reader = settingsReader(env, cwd);
  const warnings: string[] = [];
  const environment = readEnvironment(reader);
  const dataDir = path.resolve(cwd, reader.read('GATEPASS_DATA_DIR') ?? 'data');
  const signing = readSigning(reader, environment, dataDir, warnings);
  const access = readAccess(reader);
  const settings = assembleSettings(reader, { cwd, environment, dataDir, signing, access, warnings });
  // PUBLIC_URL defaults to HOST and PORT as read, so it is filled in once they are.
  if (settings.publicUrl === '') settings.publicUrl = defaultPublicUrl(settings.host, settings.port);
  // The relying party defaults to PUBLIC_URL outside production, so it is read once that is known.
  settings.webauthn = readWebAuthnSettings({ ...reader, warnings, environment, publicUrl: settings.publicUrl });
  settings.oauthProviders = readOAuthProviders({
    ...reader,
    environment,
    publicUrl: settings.publicUrl,
    publicUrlSet: reader.read('PUBLIC_URL') !== undefined,
  });
  checkCrossSettings(settings, reader.problems);
  if (reader.problems.length > 0) throw new ConfigError(reader.problems);
  return settings;
}

/** NODE_ENV; an unknown value is a problem, and development is assumed meanwhile so that reading goes on. */
function readEnvironment({ read, problems }: SettingsReader): Environment {
  const envName = read('NODE_ENV') ?? 'development';
  if (envName !== 'development' && envName !== 'production' && envName !== 'test') {
    problems.push(`NODE_ENV must be development, production or test (got "${envName}")`);
  }
  return (['development', 'production', 'test'].includes(envName) ? envName : 'development') as Environment;
}

/** The signing algorithm and the secrets, once checked (production) or filled in (elsewhere). */
interface Signing {
  algorithm: Algorithm;
  accessSecret: string | undefined;
  refreshSecret: string | undefined;
}

/**
 * JWT_ALGORITHM, JWT_SECRET and JWT_REFRESH_SECRET. Production demands strong secrets; development
 * and test fill in missing ones from a file under the data directory (with a warning), so that a
 * fresh checkout starts without setup. In every environment the two secrets must differ.
 */
function readSigning(reader: SettingsReader, environment: Environment, dataDir: string, warnings: string[]): Signing {
  const { read, problems } = reader;
  const algorithmName = read('JWT_ALGORITHM') ?? 'HS256';
  if (!isAlgorithm(algorithmName)) problems.push(`JWT_ALGORITHM must be one of ${ALGORITHMS.join(', ')} (got "${algorithmName}")`);
  const algorithm: Algorithm = isAlgorithm(algorithmName) ? algorithmName : 'HS256';
  // With an asymmetric algorithm access tokens are signed by keys, and only the refresh secret is needed.
  const needsAccessSecret = isHmacAlgorithm(algorithm);

  let accessSecret = read('JWT_SECRET');
  let refreshSecret = read('JWT_REFRESH_SECRET');
  if (environment === 'production') {
    const required = needsAccessSecret
      ? ([
          ['JWT_SECRET', accessSecret],
          ['JWT_REFRESH_SECRET', refreshSecret],
        ] as const)
      : ([['JWT_REFRESH_SECRET', refreshSecret]] as const);
    for (const [name, value] of required) checkProductionSecret(name, value, problems);
  } else if ((needsAccessSecret && accessSecret === undefined) || refreshSecret === undefined) {
    const generated = developmentSecrets(dataDir);
    accessSecret ??= generated.accessSecret;
    refreshSecret ??= generated.refreshSecret;
    warnings.push(
      `JWT_SECRET/JWT_REFRESH_SECRET not set: using development secrets stored in ${generated.file}. ` +
        'Set both (and NODE_ENV=production) before deploying.',
    );
  }
  if (accessSecret !== undefined && accessSecret === refreshSecret) {
    problems.push(
      `JWT_SECRET and JWT_REFRESH_SECRET must differ, so that one leaked secret cannot forge the other kind of token; ${GENERATE_HINT}`,
    );
  }
  return { algorithm, accessSecret, refreshSecret };
}

/** A production secret must be set, not a tutorial's example, and long enough not to be guessed. */
function checkProductionSecret(name: string, value: string | undefined, problems: string[]): void {
  if (value === undefined) problems.push(`${name} is required in production; ${GENERATE_HINT}`);
  else if (WELL_KNOWN_SECRETS.has(value.toLowerCase())) problems.push(`${name} is a well-known example value; ${GENERATE_HINT}`);
  else if (Buffer.byteLength(value) < MIN_SECRET_BYTES)
    problems.push(`${name} must be at least ${MIN_SECRET_BYTES} bytes long; ${GENERATE_HINT}`);
}

/** Who may do what: the /metrics mode, the role permissions, and the admin to create at start. */
interface Access {
  metricsMode: string;
  rolePermissions: RolePermissions;
  adminEmail: string | undefined;
  adminPassword: string | undefined;
}

/** METRICS, ROLE_PERMISSIONS, ADMIN_EMAIL and ADMIN_PASSWORD (the password untrimmed: spaces may be part of it). */
function readAccess({ read, source, problems }: SettingsReader): Access {
  const metricsMode = read('METRICS') ?? 'protected';
  if (!['off', 'public', 'protected'].includes(metricsMode))
    problems.push(`METRICS must be off, public or protected (got "${metricsMode}")`);
  const rolePermissions = parseRolePermissions(read('ROLE_PERMISSIONS'));
  problems.push(...rolePermissions.problems);
  const adminEmail = read('ADMIN_EMAIL');
  const adminPassword = source.ADMIN_PASSWORD;
  if ((adminEmail === undefined) !== (adminPassword === undefined || adminPassword === '')) {
    problems.push('ADMIN_EMAIL and ADMIN_PASSWORD must be set together');
  }
  return { metricsMode, rolePermissions: rolePermissions.value, adminEmail, adminPassword };
}

/** What assembleSettings takes from the steps before it. */
interface EarlierSteps {
  cwd: string;
  environment: Environment;
  dataDir: string;
  signing: Signing;
  access: Access;
  warnings: string[];
}

/**
 * Reads the remaining settings into the Settings object. Its properties are read in the order they
 * are written, which is the order of their problems; the JWT and lockout groups are read in place
 * (not beforehand) to keep it.
 */
function assembleSettings(reader: SettingsReader, { cwd, environment, dataDir, signing, access, warnings }: EarlierSteps): Settings {
  const { read, integer, problems } = reader;
  return {
    env: environment,
    host: read('HOST') ?? '127.0.0.1',
    port: integer('PORT', 8000, 0, 65535),
    databaseUrl: read('DATABASE_URL') ?? 'sqlite:./data/gatepass.db',
    redisUrl: read('REDIS_URL'),
    redisPrefix: read('REDIS_PREFIX') ?? 'gatepass',
    dataDir,
    jwt: readJwtSettings(reader, cwd, dataDir, signing),
    refreshReuseGraceSeconds: integer('REFRESH_REUSE_GRACE_SECONDS', 10, 0, 300),
    trustProxy: parseTrustProxy(read('TRUST_PROXY'), problems),
    corsOrigins: (read('CORS_ORIGINS') ?? '')
      .split(',')
      .map((origin) => origin.trim())
      .filter((origin) => origin !== ''),
    loginRateLimitPerMinute: integer('LOGIN_RATE_LIMIT_PER_MINUTE', 10, 0, 1_000_000),
    // One core fewer than the machine has, so that a storm of logins never takes the event loop's core.
    passwordHashConcurrency: integer('PASSWORD_HASH_CONCURRENCY', Math.max(1, availableParallelism() - 1), 1, 64),
    lockout: readLockoutPolicy(reader),
    authBodyLimitBytes: 16 * 1024,
    bodyLimitBytes: 64 * 1024,
    outboxDir: path.resolve(cwd, read('OUTBOX_DIR') ?? path.join(dataDir, 'outbox')),
    smtpUrl: read('SMTP_URL'),
    mailFrom: read('MAIL_FROM') ?? 'gatepass <no-reply@localhost>',
    requireEmailVerification: parseBoolean('REQUIRE_EMAIL_VERIFICATION', read('REQUIRE_EMAIL_VERIFICATION'), false, problems),
    publicUrl: (read('PUBLIC_URL') ?? '').replace(/\/+$/, ''),
    mfaEncryptionKey: readMfaEncryptionKey(reader, signing),
    webauthn: undefined, // read by loadSettings once PUBLIC_URL is known
    oauthProviders: [], // likewise: their callbacks are built on PUBLIC_URL
    metrics: { mode: access.metricsMode as 'off' | 'public' | 'protected', token: read('METRICS_TOKEN') },
    rolePermissions: access.rolePermissions,
    bootstrapAdmin:
      access.adminEmail !== undefined && access.adminPassword ? { email: access.adminEmail, password: access.adminPassword } : undefined,
    logLevel: read('LOG_LEVEL') ?? (environment === 'test' ? 'silent' : 'info'),
    warnings,
  };
}

/** The token settings: the algorithm and secrets read before, the key directory, lifetimes and claims. */
function readJwtSettings({ read, integer }: SettingsReader, cwd: string, dataDir: string, signing: Signing): JwtSettings {
  return {
    algorithm: signing.algorithm,
    accessSecret: signing.accessSecret ?? '',
    refreshSecret: signing.refreshSecret ?? '',
    keysDir: path.resolve(cwd, read('JWT_KEYS_DIR') ?? path.join(dataDir, 'keys')),
    accessTtlSeconds: integer('ACCESS_TOKEN_EXPIRE_MINUTES', 15, 1, 24 * 60) * 60,
    refreshTtlSeconds: integer('REFRESH_TOKEN_EXPIRE_DAYS', 7, 1, 365) * 24 * 3600,
    leewaySeconds: integer('JWT_LEEWAY_SECONDS', 30, 0, 300),
    issuer: read('JWT_ISSUER'),
    audience: read('JWT_AUDIENCE'),
  };
}

/** MFA_ENCRYPTION_KEY, at least as long as the JWT secrets must be; by default the refresh secret (the key is derived from it by HKDF). */
function readMfaEncryptionKey({ read, problems }: SettingsReader, signing: Signing): string {
  const key = read('MFA_ENCRYPTION_KEY');
  if (key === undefined) return signing.refreshSecret ?? '';
  if (Buffer.byteLength(key) < MIN_SECRET_BYTES)
    problems.push(`MFA_ENCRYPTION_KEY must be at least ${MIN_SECRET_BYTES} bytes long; ${GENERATE_HINT}`);
  return key;
}

/** The per-account lockout's numbers; that the first lock fits under the ceiling is checked afterwards. */
function readLockoutPolicy({ integer }: SettingsReader): LockoutPolicy {
  return {
    threshold: integer('ACCOUNT_LOCKOUT_THRESHOLD', 5, 0, 1000),
    lockSeconds: integer('ACCOUNT_LOCKOUT_SECONDS', 60, 1, 86_400),
    maxLockSeconds: integer('ACCOUNT_LOCKOUT_MAX_SECONDS', 3600, 1, 86_400),
    memorySeconds: integer('ACCOUNT_LOCKOUT_MEMORY_SECONDS', 86_400, 60, 30 * 86_400),
  };
}

/**
 * Checks that need a value in its final form (a default filled in, a list split) or two settings at
 * once, so they run on the assembled Settings, after every single-setting check.
 */
function checkCrossSettings(settings: Settings, problems: string[]): void {
  if (!/^(sqlite:|postgres:\/\/|postgresql:\/\/)/.test(settings.databaseUrl)) {
    problems.push(`DATABASE_URL must start with sqlite: or postgres:// (got "${redactUrl(settings.databaseUrl)}")`);
  }
  if (settings.lockout.lockSeconds > settings.lockout.maxLockSeconds) {
    problems.push(
      `ACCOUNT_LOCKOUT_SECONDS (${settings.lockout.lockSeconds}) must not exceed ACCOUNT_LOCKOUT_MAX_SECONDS (${settings.lockout.maxLockSeconds}), the longest lock`,
    );
  }
  for (const origin of settings.corsOrigins) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin))
      problems.push(`CORS_ORIGINS entries must be origins like https://app.example.com (got "${origin}")`);
  }
  if (!isHttpUrl(settings.publicUrl))
    problems.push(
      `PUBLIC_URL must be an http:// or https:// URL without query or fragment, such as https://auth.example.com (got "${settings.publicUrl}")`,
    );
  if (settings.redisUrl !== undefined && !settings.redisUrl.split(',').every((node) => /^rediss?:\/\/[^,\s]+$/.test(node.trim()))) {
    problems.push(
      `REDIS_URL must be redis://… or rediss://…, or a comma-separated list of them for a Redis Cluster (got "${redactUrl(settings.redisUrl)}")`,
    );
  }
}

/**
 * Parses ROLE_PERMISSIONS, a JSON object from role to permission list, over the defaults.
 * Returns the mapping, or the problems found in it.
 */
function parseRolePermissions(json: string | undefined): { value: RolePermissions; problems: string[] } {
  const merged: Record<Role, Permission[]> = { ...DEFAULT_ROLE_PERMISSIONS };
  const problems: string[] = [];
  if (json !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch {
      parsed = undefined;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      problems.push('ROLE_PERMISSIONS must be a JSON object like {"teacher": ["tasks:read", "users:read"]}');
    } else {
      for (const [role, permissions] of Object.entries(parsed)) {
        if (!isRole(role)) problems.push(`ROLE_PERMISSIONS names an unknown role "${role}" (roles: ${ROLES.join(', ')})`);
        else if (!Array.isArray(permissions) || !permissions.every((p): p is Permission => typeof p === 'string' && isPermission(p))) {
          problems.push(`ROLE_PERMISSIONS.${role} must be a list of permissions from ${PERMISSIONS.join(', ')}`);
        } else merged[role] = permissions;
      }
    }
  }
  return {
    value: { student: new Set(merged.student), teacher: new Set(merged.teacher), admin: new Set(merged.admin) },
    problems,
  };
}

/** A yes/no setting: true/false, 1/0, yes/no or on/off; anything else is a problem and gives the fallback. */
function parseBoolean(name: string, raw: string | undefined, fallback: boolean, problems: string[]): boolean {
  if (raw === undefined) return fallback;
  if (['true', '1', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (['false', '0', 'no', 'off'].includes(raw.toLowerCase())) return false;
  problems.push(`${name} must be true or false (got "${raw}")`);
  return fallback;
}

/** The server's own address when PUBLIC_URL is unset (HOST:PORT, an IPv6 host in brackets). */
function defaultPublicUrl(host: string, port: number): string {
  return `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

function isHttpUrl(value: string): boolean {
  if (!URL.canParse(value) || /[?#\s]/.test(value)) return false;
  const url = new URL(value);
  // Links are built by appending a fragment, so the base must carry none (nor credentials, nor a query).
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' && url.username === '' && url.password === '';
}

/** The names proxy-addr gives to the loopback, link-local and private ranges. */
const TRUST_PROXY_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);
const TRUST_PROXY_HINT =
  'give the number of proxies in front of gatepass (TRUST_PROXY=1) or their addresses/CIDRs (TRUST_PROXY=10.0.0.0/8,192.0.2.7)';

/**
 * TRUST_PROXY: unset, `false` or `0` is off; a whole number is a hop count; otherwise a comma-separated
 * list of proxy addresses, CIDRs, or proxy-addr's range names. `true` is refused: it believes the
 * left-most X-Forwarded-For, which any client writes itself.
 */
function parseTrustProxy(raw: string | undefined, problems: string[]): TrustProxy {
  if (raw === undefined || ['false', 'off', 'no', '0'].includes(raw.toLowerCase())) return false;
  if (['true', 'on', 'yes'].includes(raw.toLowerCase())) {
    problems.push(`TRUST_PROXY=${raw} would believe any X-Forwarded-For a client writes itself; ${TRUST_PROXY_HINT}`);
    return false;
  }
  if (/^\d+$/.test(raw)) {
    const hops = Number(raw);
    if (hops > 32) problems.push(`TRUST_PROXY as a hop count must be from 0 to 32 (got "${raw}"); ${TRUST_PROXY_HINT}`);
    return hops > 32 || hops === 0 ? false : hops;
  }
  const entries = raw
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  const invalid = entries.filter((entry) => !isTrustedProxyEntry(entry));
  if (invalid.length > 0) {
    problems.push(
      `TRUST_PROXY entries must be IP addresses or CIDRs such as 10.0.0.0/8 or fd00::/8 (got ${invalid.map((e) => `"${e}"`).join(', ')}); ${TRUST_PROXY_HINT}`,
    );
    return false;
  }
  return entries;
}

function isTrustedProxyEntry(entry: string): boolean {
  if (TRUST_PROXY_RANGES.has(entry)) return true;
  const [address = '', prefix, ...rest] = entry.split('/');
  // A zone index (fe80::1%eth0) means nothing in X-Forwarded-For.
  const family = address.includes('%') ? 0 : isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

/** Hides the password of a connection URL so it can be shown in messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
}

/** Development only: secrets are generated once and kept under the data directory, readable by the owner alone. */
function developmentSecrets(dataDir: string): { accessSecret: string; refreshSecret: string; file: string } {
  const file = path.join(dataDir, 'dev-secrets.json');
  if (existsSync(file)) {
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { jwt_secret?: unknown; jwt_refresh_secret?: unknown };
    if (typeof stored.jwt_secret === 'string' && typeof stored.jwt_refresh_secret === 'string') {
      return { accessSecret: stored.jwt_secret, refreshSecret: stored.jwt_refresh_secret, file };
    }
  }
  const secrets = { jwt_secret: randomBytes(32).toString('hex'), jwt_refresh_secret: randomBytes(32).toString('hex') };
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { accessSecret: secrets.jwt_secret, refreshSecret: secrets.jwt_refresh_secret, file };
}
