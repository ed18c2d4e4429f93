/**
 * Every use the bench makes of gatepass's modules beyond loadSettings and buildApp, in one file:
 * when their signatures change, this is the file to follow them. Wherever it can, the bench reaches
 * gatepass's parts through the services buildApp decorates the app with (`app.gatepass`), so that
 * what it measures is the app's own instance of each part.
 */
import { randomUUID } from 'node:crypto';
import type { Settings } from '../../src/config/settings.js';
import { buildApp, type GatepassApp } from '../../src/http/app.js';
import type { Guards } from '../../src/http/auth-guard.js';
import { PasswordHasher } from '../../src/passwords/hashing.js';
import type { Services } from '../../src/services.js';
import type { DatabaseHandle } from '../../src/store/database.js';
import { openDatabase } from '../../src/store/database.js';
import { migrateToLatest } from '../../src/store/migrations.js';
import { toUser } from '../../src/store/users.js';
import { mintTimeOf } from '../../src/tokens/role-change-cutoff.js';
import type { Revocation } from '../../src/tokens/revocation.js';
import { createVerifier, VerifyError, type RevocationFeedOptions, type Verifier } from '../../src/verify/index.js';
import { benchEmail } from './users.js';

export type { GatepassApp };

/** An argon2id hash with the app's current parameters, so logins verify it without a rehash. */
export function hashPassword(password: string): Promise<string> {
  return new PasswordHasher(1).hash(password);
}

/** The protected route's guard of a built app: the instance its own routes use. */
export function appGuard(app: GatepassApp): Guards['requireAuth'] {
  return app.gatepass.guards.requireAuth;
}

/** Records `count` session revocations (random sessions of users 1…10,000) in the app's RevocationList. */
export async function revokeSessions(services: Services, count: number): Promise<void> {
  const batch = [];
  for (let i = 0; i < count; i++) batch.push(services.revocations.session(randomUUID(), 1 + (i % 10_000)));
  await services.revocations.announce(batch);
}

/**
 * The access-token check of a protected route, outside HTTP, on a built app: its TokenService's
 * verifyAccessToken and the revocation lookup its auth guard makes after it, on a RevocationList
 * already holding `revokedSessions` other sessions. Close `app` when done.
 */
export interface VerificationFixture {
  app: GatepassApp;
  token: string;
  /** verifyAccessToken + revocation lookup, as the guard does them; throws when the token is refused. */
  check(token: string): string;
  /** verifyAccessToken alone. */
  verifyOnly(token: string): string;
  /** The revocation lookup alone, with the claims of `token`. */
  lookupOnly(): boolean;
  /** The guard's whole check as a route runs it: Bearer parsing, the two above, timing for /metrics. */
  authenticate(authorization: string): string;
}

export async function verificationFixture(settings: Settings, cwd: string, revokedSessions: number): Promise<VerificationFixture> {
  const app = await buildApp(settings, { cwd });
  const { tokens, revocations, guards } = app.gatepass;
  await revokeSessions(app.gatepass, revokedSessions);
  const { token, claims } = tokens.issueAccessToken({ userId: 4242, sessionId: randomUUID(), role: 'student' });
  const userId = Number(claims.sub);
  // Dated as the guard dates a token (tokens/role-change-cutoff.ts).
  const claimsIssuedAt = mintTimeOf(claims);
  return {
    app,
    token,
    check(presented) {
      const verified = tokens.verifyAccessToken(presented);
      if (revocations.isRevoked(verified.sid, Number(verified.sub), mintTimeOf(verified), verified.jti)) throw new Error('revoked');
      return verified.jti;
    },
    verifyOnly: (presented) => tokens.verifyAccessToken(presented).jti,
    lookupOnly: () => revocations.isRevoked(claims.sid, userId, claimsIssuedAt, claims.jti),
    authenticate: (authorization) => guards.authenticate(authorization).tokenId,
  };
}

/** Tokens whose refusal shows that a verifier's list holds the revocations `persistRevocations` stored. */
export interface RevokedSamples {
  /** Tokens of revoked sessions (the first and the last one stored), of a revoked jti, and of a user minted before their cutoff. */
  refused: { kind: Revocation['kind']; token: string }[];
  /** Stored revocations by kind. */
  counts: Record<Revocation['kind'], number>;
}

/**
 * Stores `count` revocations in the app's database as a commit would (`Revocations.persist`, in
 * transactions of `batchSize`), without announcing them to the app's own RevocationList: the
 * revocation feed reads the table. Of every 100: 90 sessions, 5 role-change cutoffs (each of
 * another user, none of users 1…10,000 or 4242) and 5 single tokens (`token`, RFC 7009).
 */
export async function persistRevocations(services: Services, count: number, batchSize = 5000): Promise<RevokedSamples> {
  const { revocations, tokens, database } = services;
  const counts: RevokedSamples['counts'] = { session: 0, user: 0, token: 0 };
  const refused: RevokedSamples['refused'] = [];
  let lastSession: { sessionId: string; userId: number } | undefined;
  for (let start = 0; start < count; start += batchSize) {
    const batch: Revocation[] = [];
    for (let i = start; i < Math.min(start + batchSize, count); i++) {
      const userId = 1 + (i % 10_000);
      let revocation: Revocation;
      if (i % 100 < 90) {
        const sessionId = randomUUID();
        revocation = revocations.session(sessionId, userId);
        lastSession = { sessionId, userId };
        if (i === 0) refused.push({ kind: 'session', token: tokens.issueAccessToken({ userId, sessionId, role: 'student' }).token });
      } else if (i % 100 < 95) {
        const cutoffUser = 100_000 + i;
        revocation = revocations.userTokens(cutoffUser);
        if (counts.user === 0 && revocation.kind === 'user') {
          // A second before the cutoff: a token carrying the role the change took away.
          const mintedAt = revocation.issuedBefore - 1000;
          refused.push({
            kind: 'user',
            token: tokens.issueAccessToken({ userId: cutoffUser, sessionId: randomUUID(), role: 'student', mintedAt }).token,
          });
        }
      } else {
        const issued = tokens.issueAccessToken({ userId, sessionId: randomUUID(), role: 'student' });
        revocation = revocations.token(issued.claims.jti, userId);
        if (counts.token === 0) refused.push({ kind: 'token', token: issued.token });
      }
      counts[revocation.kind] += 1;
      batch.push(revocation);
    }
    await database.db.transaction().execute((trx) => revocations.persist(batch, trx));
  }
  if (lastSession !== undefined)
    refused.push({ kind: 'session', token: tokens.issueAccessToken({ ...lastSession, role: 'student' }).token });
  return { refused, counts };
}

/** A service credential (`gatepass service create NAME`), for the revocation feed. */
export async function createServiceCredential(services: Services, name: string): Promise<{ clientId: string; clientSecret: string }> {
  const { clientId, clientSecret } = await services.serviceCredentials.create(name);
  return { clientId, clientSecret };
}

/** `gatepass/verify`'s createVerifier (HS256 with the shared secret), following a revocation feed when `feed` is given. */
export function hmacVerifier(secret: string, feed?: RevocationFeedOptions): Verifier {
  return createVerifier({ secret, ...(feed === undefined ? {} : { revocations: feed }) });
}

/** The VerifyError code a verifier refuses `token` with, or undefined when it accepts it. */
export async function refusalCode(verifier: Verifier, token: string): Promise<string | undefined> {
  try {
    await verifier.verify(token);
    return undefined;
  } catch (error) {
    if (error instanceof VerifyError) return error.code;
    throw error;
  }
}

/**
 * gatepass's services and guards without serving HTTP through the app: buildApp builds them (and a
 * Fastify instance that never listens), for the bare node:http ceiling and the Fastify diagnostic,
 * which must run exactly the app's check.
 */
export async function appServices(
  settings: Settings,
  cwd: string,
): Promise<{ services: Services; guards: Guards; close: () => Promise<void> }> {
  const app = await buildApp(settings, { cwd });
  return { services: app.gatepass, guards: app.gatepass.guards, close: () => app.close() };
}

/** An access token for user `userId` signed with the services' current key. */
export function issueAccessToken(services: Services, userId: number): string {
  return services.tokens.issueAccessToken({ userId, sessionId: randomUUID(), role: 'student' }).token;
}

/** Opens and migrates a gatepass database. */
export async function openMigrated(databaseUrl: string, cwd: string): Promise<DatabaseHandle> {
  const database = openDatabase(databaseUrl, cwd);
  try {
    await migrateToLatest(database);
  } catch (error) {
    await database.close();
    throw error;
  }
  return database;
}

/** Inserts users 1..count (emails from benchEmail) in batches, all with one password hash. */
export async function insertUsers(
  database: Pick<DatabaseHandle, 'db'>,
  count: number,
  passwordHash: string,
  batchSize = 500,
): Promise<void> {
  const now = Date.now();
  for (let start = 1; start <= count; start += batchSize) {
    const rows = [];
    for (let i = start; i < Math.min(start + batchSize, count + 1); i++) {
      rows.push({
        email: benchEmail(i),
        email_key: benchEmail(i),
        password_hash: passwordHash,
        full_name: `Bench User ${i}`,
        is_active: 1,
        created_at: now,
        updated_at: now,
      });
    }
    await database.db.insertInto('users').values(rows).execute();
  }
}

/** Starts `count` sessions through the app's SessionService (what a login does after its password check), round-robin over users 1..userCount. */
export async function startSessions(services: Services, count: number, userCount: number): Promise<void> {
  const rows = await services.database.db.selectFrom('users').selectAll().where('id', '<=', userCount).orderBy('id').execute();
  const users = rows.map(toUser);
  if (users.length === 0) throw new Error('no users to start sessions for');
  for (let i = 0; i < count; i++) {
    const user = users[i % users.length];
    if (user === undefined) throw new Error('unreachable: empty user list');
    await services.sessions.startSession(user, { userAgent: 'gatepass-bench', ip: '127.0.0.1' });
  }
}

/** Rows in the tables the memory section fills. */
export async function countRows(services: Services): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of ['users', 'sessions', 'refresh_tokens', 'revocations'] as const) {
    const row = await services.database.db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .executeTakeFirstOrThrow();
    counts[table] = Number(row.n);
  }
  return counts;
}
