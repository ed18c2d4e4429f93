import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AuditLog, ClientInfo } from '../audit/audit-log.js';
import { FieldError, GatepassError } from '../errors.js';
import type { Database } from '../store/schema.js';
import { DuplicateServiceCredentialError, ServiceCredentialRepository } from '../store/service-credentials.js';
import type { Clock } from '../tokens/token-service.js';

export const SERVICE_NAME_MAX_LENGTH = 64;
/** What a service's name may hold: it is shown in lists and logs, and typed on command lines. */
export const SERVICE_NAME_PATTERN = '^[A-Za-z0-9._-]+$';
const SERVICE_NAME = new RegExp(SERVICE_NAME_PATTERN);

/** A service proven by its credential: what a route behind the service guard knows of its caller. */
export interface ServiceClient {
  id: number;
  name: string;
  clientId: string;
}

/** A credential as it is listed: never its secret, nor the secret's hash. */
export interface ServiceCredential {
  name: string;
  clientId: string;
  createdAt: number;
  lastUsedAt: number | null;
}

/** A new credential: the only time its secret exists outside the service that holds it. */
export interface CreatedServiceCredential {
  name: string;
  clientId: string;
  clientSecret: string;
  createdAt: number;
}

/** Who creates or revokes a credential: an admin over HTTP, or the operator (`adminId` null) on the CLI. */
export interface ServiceActor {
  adminId: number | null;
  client: ClientInfo;
}

const NO_ACTOR: ServiceActor = { adminId: null, client: { ip: null, userAgent: null } };

/** A use is recorded at most this often per credential, so that authenticating stays a read. */
const LAST_USED_RESOLUTION_MS = 60_000;

/**
 * Bounds on what is parsed before the database is asked. Issued ids are 26 characters and secrets
 * 43; the bounds leave room for percent-encoding (RFC 6749 §2.3.1) and nothing more.
 */
const MAX_AUTHORIZATION_LENGTH = 1024;
const MAX_CLIENT_ID_LENGTH = 64;
const MAX_SECRET_LENGTH = 256;

const BASIC = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** application/x-www-form-urlencoded decoding of one value; undefined (never a throw) for a malformed escape. */
function formDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/**
 * The client id and secret of an `Authorization: Basic …` header (RFC 7617), each form-decoded as
 * RFC 6749 §2.3.1 asks; undefined for anything malformed or over the bounds.
 */
function basicCredentials(authorization: string | undefined): { clientId: string; secret: string } | undefined {
  if (authorization === undefined || authorization.length > MAX_AUTHORIZATION_LENGTH) return undefined;
  const encoded = BASIC.exec(authorization)?.[1];
  if (encoded === undefined) return undefined;
  const bytes = Buffer.from(encoded, 'base64');
  // Buffer.from ignores what it cannot decode; a canonical round trip proves nothing was ignored.
  if (bytes.toString('base64').replace(/=+$/, '') !== encoded.replace(/=+$/, '')) return undefined;
  let decoded: string;
  try {
    decoded = UTF8.decode(bytes);
  } catch {
    return undefined;
  }
  // The user-id of RFC 7617 cannot hold a colon; the password can.
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  const clientId = formDecode(decoded.slice(0, colon));
  const secret = formDecode(decoded.slice(colon + 1));
  if (clientId === undefined || secret === undefined) return undefined;
  if (clientId.length === 0 || clientId.length > MAX_CLIENT_ID_LENGTH || secret.length === 0 || secret.length > MAX_SECRET_LENGTH)
    return undefined;
  return { clientId, secret };
}

/**
 * The credentials other services use for the revocation feed and the token endpoints (API.md
 * "Services and token endpoints"). The secret is random and long, so a fast SHA-256 is enough to
 * make a leaked table useless, and is all that is stored; it is shown once, at creation.
 *
 * Every authentication reads the database: a revoked credential (its row deleted) stops working at
 * once on every instance, with no cache to wait out.
 */
export class ServiceCredentials {
  private readonly credentials: ServiceCredentialRepository;
  /** Compared against when the client id is unknown, so that the answer takes as long as a wrong secret. */
  private readonly dummyHash = randomBytes(32);

  constructor(
    private readonly db: Kysely<Database>,
    private readonly audit: AuditLog,
    private readonly now: Clock = Date.now,
  ) {
    this.credentials = new ServiceCredentialRepository(db);
  }

  async create(name: string, actor: ServiceActor = NO_ACTOR): Promise<CreatedServiceCredential> {
    if (name.length === 0 || name.length > SERVICE_NAME_MAX_LENGTH || !SERVICE_NAME.test(name)) {
      throw new FieldError(
        ['body', 'name'],
        `Name must be 1-${SERVICE_NAME_MAX_LENGTH} characters: letters, digits, ".", "_" or "-"`,
        'string_pattern_mismatch',
      );
    }
    const clientId = `svc_${randomBytes(16).toString('base64url')}`;
    const clientSecret = randomBytes(32).toString('base64url');
    const createdAt = this.now();
    try {
      await this.db.transaction().execute(async (trx) => {
        await new ServiceCredentialRepository(trx).insert({
          name,
          client_id: clientId,
          secret_hash: sha256(clientSecret).toString('hex'),
          created_at: createdAt,
          created_by: actor.adminId,
        });
        await this.audit.record(
          { event: 'service_created', userId: null, actorId: actor.adminId, client: actor.client, details: { name, client_id: clientId } },
          trx,
        );
      });
    } catch (error) {
      if (error instanceof DuplicateServiceCredentialError)
        throw new GatepassError('service_exists', `A service credential named "${name}" already exists`);
      throw error;
    }
    return { name, clientId, clientSecret, createdAt };
  }

  /** Deletes the credential named `name`; false when there is none (or a concurrent revocation got it first). */
  async revoke(name: string, actor: ServiceActor = NO_ACTOR): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const credentials = new ServiceCredentialRepository(trx);
      const row = await credentials.findByName(name);
      if (row === undefined || !(await credentials.deleteByName(name))) return false;
      await this.audit.record(
        {
          event: 'service_revoked',
          userId: null,
          actorId: actor.adminId,
          client: actor.client,
          details: { name, client_id: row.client_id },
        },
        trx,
      );
      return true;
    });
  }

  async list(): Promise<ServiceCredential[]> {
    const rows = await this.credentials.list();
    return rows.map((row) => ({ name: row.name, clientId: row.client_id, createdAt: row.created_at, lastUsedAt: row.last_used_at }));
  }

  /**
   * The service whose credential an `Authorization: Basic` header carries; undefined for a missing,
   * malformed, unknown or wrong one, without saying which. An unknown client id costs the same hash
   * and comparison as a known one, so the timing does not tell which ids exist.
   */
  async authenticate(authorization: string | undefined): Promise<ServiceClient | undefined> {
    const presented = basicCredentials(authorization);
    if (presented === undefined) return undefined;
    const row = await this.credentials.findByClientId(presented.clientId);
    const stored = row === undefined ? undefined : Buffer.from(row.secret_hash, 'hex');
    const expected = stored?.length === this.dummyHash.length ? stored : this.dummyHash;
    const matches = timingSafeEqual(sha256(presented.secret), expected);
    if (row === undefined || expected !== stored || !matches) return undefined;
    const now = this.now();
    if (row.last_used_at === null || row.last_used_at < now - LAST_USED_RESOLUTION_MS)
      await this.credentials.touch(row.id, now, now - LAST_USED_RESOLUTION_MS);
    return { id: row.id, name: row.name, clientId: row.client_id };
  }
}
