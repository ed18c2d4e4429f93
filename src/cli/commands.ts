import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { isRole, ROLES, type Role } from '../tokens/roles.js';
import { redactUrl, type Settings } from '../config/settings.js';
import { GatepassError } from '../errors.js';
import type { Logger } from '../logging.js';
import { createServices, type Services } from '../services.js';
import { openDatabase } from '../store/database.js';
import { migrateToLatest } from '../store/migrations.js';
import { UserRepository } from '../store/users.js';
import { normalizeEmail } from '../accounts/email.js';
import { TokenError } from '../tokens/errors.js';
import { isHmacAlgorithm } from '../tokens/algorithms.js';
import { decodeJsonSegment } from '../tokens/jws.js';
import { accessTokenLifetimeMs } from '../tokens/jwt-settings.js';
import { KeyStore, openAccessKeys } from '../tokens/key-store.js';
import { TokenService } from '../tokens/token-service.js';

/** A mistake in how the command was called: the CLI prints it with the usage and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The CLI's actions are recorded in the audit trail as coming from here. */
const CLI_CLIENT = { ip: null, userAgent: 'gatepass-cli' };

/** Service logs go to standard error, so that standard output carries only the command's answer. */
const stderrLogger: Logger = {
  info: (message) => console.error(message),
  warn: (message) => console.error(`warning: ${message}`),
  error: ({ err }, message) => console.error(`error: ${message}${err instanceof Error ? `: ${err.message}` : ''}`),
};

async function withServices<T>(settings: Settings, work: (services: Services) => Promise<T>): Promise<T> {
  const services = await createServices(settings, { log: stderrLogger });
  try {
    return await work(services);
  } finally {
    await services.close();
  }
}

export async function runMigrations(settings: Settings): Promise<string> {
  const database = openDatabase(settings.databaseUrl);
  try {
    const applied = await migrateToLatest(database, { log: stderrLogger });
    const where = redactUrl(settings.databaseUrl);
    return applied.length === 0 ? `${where}: already up to date` : `${where}: applied ${applied.join(', ')}`;
  } finally {
    await database.close();
  }
}

export function parseRole(value: string | undefined): Role | undefined {
  if (value === undefined) return undefined;
  if (!isRole(value)) throw new UsageError(`unknown role "${value}"; roles are ${ROLES.join(', ')}`);
  return value;
}

export async function createUser(
  settings: Settings,
  input: { email: string; password: string; role: Role; fullName: string | null },
): Promise<string> {
  return withServices(settings, async ({ accounts }) => {
    // The operator vouches for the address: with REQUIRE_EMAIL_VERIFICATION the account can sign in at once.
    const user = await accounts.register({ ...input, emailVerified: true }, CLI_CLIENT);
    return `created user ${user.id} ${user.email} (role ${user.role})`;
  });
}

async function userIdByEmail(services: Services, email: string): Promise<number> {
  const user = await new UserRepository(services.database.db).findByEmail(normalizeEmail(email));
  if (user === undefined) throw new GatepassError('not_found', `no user with email ${normalizeEmail(email)}`);
  return user.id;
}

/** Changes a role as an admin would: running servers refuse the user's older access tokens within a second. */
export async function setRole(settings: Settings, email: string, role: Role): Promise<string> {
  return withServices(settings, async (services) => {
    const user = await services.admin.updateUser({ userId: null, client: CLI_CLIENT }, await userIdByEmail(services, email), { role });
    return `user ${user.id} ${user.email} now has role ${user.role}`;
  });
}

export async function deactivateUser(settings: Settings, email: string): Promise<string> {
  return withServices(settings, async (services) => {
    const user = await services.admin.updateUser({ userId: null, client: CLI_CLIENT }, await userIdByEmail(services, email), {
      isActive: false,
    });
    return `user ${user.id} ${user.email} is deactivated; every session ended`;
  });
}

/** Removes a user's second factor (TOTP and recovery codes), as an admin would: their next login asks for the password only. */
export async function resetMfa(settings: Settings, email: string): Promise<string> {
  return withServices(settings, async (services) => {
    const userId = await userIdByEmail(services, email);
    await services.mfa.reset(userId, { userId: null, client: CLI_CLIENT });
    return `user ${userId} ${normalizeEmail(email)}: two-factor sign-in removed (TOTP and recovery codes)`;
  });
}

/** A new service credential: its secret exists nowhere else once this returns (it is stored hashed). */
export async function createServiceCredential(settings: Settings, name: string): Promise<{ clientId: string; clientSecret: string }> {
  return withServices(settings, async ({ serviceCredentials }) => {
    const created = await serviceCredentials.create(name, { adminId: null, client: CLI_CLIENT });
    return { clientId: created.clientId, clientSecret: created.clientSecret };
  });
}

/** Running servers refuse the credential from their next request on: they read it on every use. */
export async function revokeServiceCredential(settings: Settings, name: string): Promise<string> {
  return withServices(settings, async ({ serviceCredentials }) => {
    if (!(await serviceCredentials.revoke(name, { adminId: null, client: CLI_CLIENT })))
      throw new GatepassError('not_found', `no service credential named "${name}"`);
    return `revoked service credential ${name}; requests with it are refused from now on`;
  });
}

export async function listServiceCredentials(settings: Settings): Promise<string> {
  return withServices(settings, async ({ serviceCredentials }) => {
    const rows = await serviceCredentials.list();
    if (rows.length === 0) return 'no service credentials';
    const width = Math.max(...rows.map((row) => row.name.length));
    return rows
      .map(
        (row) =>
          `${row.name.padEnd(width)}  ${row.clientId}  created ${new Date(row.createdAt).toISOString()}  ` +
          `last used ${row.lastUsedAt === null ? 'never' : new Date(row.lastUsedAt).toISOString()}`,
      )
      .join('\n');
  });
}

function keyStore(settings: Settings, createIfEmpty: boolean): KeyStore {
  const { algorithm, keysDir } = settings.jwt;
  if (isHmacAlgorithm(algorithm)) {
    throw new UsageError(
      `JWT_ALGORITHM is ${algorithm}: its key is the JWT_SECRET secret (make one with \`gatepass secret generate\`); key pairs are for RS256, PS256, ES256 and EdDSA`,
    );
  }
  return KeyStore.open({ dir: keysDir, algorithm, tokenLifetimeMs: accessTokenLifetimeMs(settings.jwt), createIfEmpty });
}

/** Creates the first key pair of JWT_KEYS_DIR (for production, before the first start). */
export function generateKeys(settings: Settings): string {
  const existing = existsSync(path.join(settings.jwt.keysDir, 'keys.json'));
  if (existing) throw new UsageError(`${settings.jwt.keysDir} already has keys; use \`gatepass keys rotate\` for a new one`);
  const store = keyStore(settings, true);
  return `created ${store.signingKey().kid ?? ''} (${store.algorithm}) in ${settings.jwt.keysDir}`;
}

/** A new signing key; the previous one keeps verifying (and stays in the JWKS) until its tokens expire. */
export function rotateKeys(settings: Settings): string {
  const store = keyStore(settings, false);
  const previous = store.signingKey().kid ?? '';
  const next = store.rotate();
  return `new signing key ${next.kid}; ${previous} now only verifies, until its last token expires`;
}

export function listKeys(settings: Settings): string {
  const rows = keyStore(settings, false).list();
  return rows
    .map((key) => `${key.kid}  ${key.algorithm}  ${key.status.padEnd(9)}  created ${new Date(key.createdAt).toISOString()}`)
    .join('\n');
}

export function retireKey(settings: Settings, kid: string): string {
  keyStore(settings, false).retire(kid);
  return `retired ${kid}: tokens it signed no longer verify`;
}

/** The seeds' `openssl rand -hex 32`. */
export function generateSecret(bytes = 32): string {
  return randomBytes(bytes).toString('hex');
}

function describeTime(label: string, seconds: unknown, nowSeconds: number): string | undefined {
  if (typeof seconds !== 'number') return undefined;
  const delta = seconds - nowSeconds;
  const magnitude = Math.abs(delta);
  const amount =
    magnitude < 120
      ? `${Math.round(magnitude)} seconds`
      : magnitude < 7200
        ? `${Math.round(magnitude / 60)} minutes`
        : magnitude < 172_800
          ? `${Math.round(magnitude / 3600)} hours`
          : `${Math.round(magnitude / 86_400)} days`;
  return `  ${label.padEnd(4)} ${seconds}  ${new Date(seconds * 1000).toISOString()}  (${delta >= 0 ? `in ${amount}` : `${amount} ago`})`;
}

function decodeSegment(segment: string | undefined, name: string): Record<string, unknown> {
  const value = decodeJsonSegment(segment ?? '');
  if (value === undefined) throw new UsageError(`not a JWT: the ${name} is not base64url-encoded JSON`);
  return value;
}

/**
 * The seeds' "crack open a JWT" demo: anyone can read a token's header and payload, because base64
 * is an encoding, not encryption. Nothing here is verified.
 */
export function decodeToken(token: string, nowMs: number = Date.now()): string {
  const parts = token.trim().split('.');
  if (parts.length !== 3) throw new UsageError(`not a JWT: expected 3 dot-separated parts, found ${parts.length}`);
  const header = decodeSegment(parts[0], 'header');
  const payload = decodeSegment(parts[1], 'payload');
  const nowSeconds = nowMs / 1000;
  const times = [
    describeTime('iat', payload.iat, nowSeconds),
    describeTime('nbf', payload.nbf, nowSeconds),
    describeTime('exp', payload.exp, nowSeconds),
  ].filter((line): line is string => line !== undefined);
  const status =
    typeof payload.exp !== 'number'
      ? 'no exp claim: this token never expires by itself'
      : payload.exp > nowSeconds
        ? 'not expired'
        : 'EXPIRED';
  return [
    'Header:',
    JSON.stringify(header, null, 2),
    'Payload:',
    JSON.stringify(payload, null, 2),
    'Times:',
    ...times,
    `Status: ${status}`,
    `Signature: ${(parts[2] ?? '').slice(0, 10)}… (${(parts[2] ?? '').length} characters, not checked)`,
    '',
    'Note: decoding is not verifying. Base64 is not encryption: anyone holding this token can read',
    'these fields, and anyone can write a token that says anything. Only the signature, checked with',
    'the key (`gatepass token verify`), tells whether gatepass issued it.',
  ].join('\n');
}

/**
 * Checks a token's signature and claims with the configured keys, as the server would (revocation
 * aside: that state lives with the running servers). Returns the report and whether it is valid.
 */
export function verifyToken(settings: Settings, token: string): { valid: boolean; report: string } {
  const tokens = new TokenService(settings.jwt, openAccessKeys(settings.jwt, { createIfEmpty: false }));
  const attempts = [
    ['access', () => tokens.verifyAccessToken(token.trim())],
    ['refresh', () => tokens.verifyRefreshToken(token.trim())],
  ] as const;
  const failures: string[] = [];
  for (const [kind, verify] of attempts) {
    try {
      const claims = verify();
      const role = 'role' in claims ? `, role ${claims.role}` : '';
      return {
        valid: true,
        report: `valid ${kind} token: user ${claims.sub}${role}, session ${claims.sid}, expires ${new Date(claims.exp * 1000).toISOString()}\n(signature and claims checked; revocation is known only to the running servers)`,
      };
    } catch (error) {
      if (!(error instanceof TokenError)) throw error;
      failures.push(`as ${kind} token: ${error.code} (${error.reason})`);
    }
  }
  return { valid: false, report: `invalid token\n  ${failures.join('\n  ')}` };
}
