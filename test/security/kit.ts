import assert from 'node:assert/strict';
import { constants, createHmac, randomUUID, sign, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { LightMyRequestResponse } from 'fastify';
import type { GatepassApp } from '../../src/http/app.js';

/**
 * The attack kit: builds JWS tokens byte by byte with node:crypto (so that every header, payload,
 * signature and encoding detail is the attacker's choice) and checks the server's answers against
 * API.md exactly: status, body and `WWW-Authenticate`.
 */

export const INVALID_TOKEN = { detail: 'Could not validate credentials', code: 'invalid_token' } as const;
export const INVALID_REFRESH = { detail: 'Invalid refresh token', code: 'invalid_token' } as const;
export const INVALID_TOKEN_TYPE = { detail: 'Invalid token type', code: 'invalid_token_type' } as const;
export const TOKEN_EXPIRED = { detail: 'Token expired', code: 'token_expired' } as const;
export const TOKEN_REVOKED = { detail: 'Token has been revoked', code: 'token_revoked' } as const;
export const TOKEN_REUSED = {
  detail: 'Refresh token reuse detected. The session has been revoked; please log in again.',
  code: 'token_reused',
} as const;
export const NOT_AUTHENTICATED = { detail: 'Not authenticated', code: 'not_authenticated' } as const;

/** RFC 6750 §3: a presented-and-refused token adds error="invalid_token"; no token, plain Bearer. */
export const REJECTED_CHALLENGE = 'Bearer error="invalid_token"';
export const MISSING_CHALLENGE = 'Bearer';

/** The header gatepass itself emits for HS256. */
export const HS256_HEADER = { alg: 'HS256', typ: 'JWT' } as const;

export type Digest = 'sha256' | 'sha384' | 'sha512';
export type AsymmetricAlg = 'RS256' | 'PS256' | 'ES256' | 'EdDSA';
/** A header or payload: an object to serialise as JSON, raw JSON text, or raw bytes. */
export type Segment = object | string | Buffer;
export type HmacSecret = string | Buffer | KeyObject;

export interface UserBody {
  id: number;
  email: string;
  role: string;
}

export function b64url(data: string | Buffer): string {
  return (typeof data === 'string' ? Buffer.from(data, 'utf8') : data).toString('base64url');
}

/** An object is JSON-serialised, a string is taken as the exact JSON text, a Buffer as the exact bytes. */
export function encodeSegment(segment: Segment): string {
  if (Buffer.isBuffer(segment)) return segment.toString('base64url');
  if (typeof segment === 'string') return b64url(segment);
  return b64url(JSON.stringify(segment));
}

export function hmac(secret: HmacSecret, input: string, digest: Digest = 'sha256'): Buffer {
  return createHmac(digest, secret).update(input).digest();
}

/** header.payload.HMAC(secret) — the HS family, with any header the attacker likes. */
export function hs(header: Segment, payload: Segment, secret: HmacSecret, digest: Digest = 'sha256'): string {
  const input = `${encodeSegment(header)}.${encodeSegment(payload)}`;
  return `${input}.${hmac(secret, input, digest).toString('base64url')}`;
}

/** header.payload.<signature text as given> — no key involved. */
export function unsigned(header: Segment, payload: Segment, signature = ''): string {
  return `${encodeSegment(header)}.${encodeSegment(payload)}.${signature}`;
}

/** A genuine asymmetric JWS signature (RFC 7518 §3.3–3.5, RFC 8037) made with the attacker's private key. */
export function asymmetric(header: Segment, payload: Segment, privateKey: KeyObject, alg: AsymmetricAlg): string {
  const input = `${encodeSegment(header)}.${encodeSegment(payload)}`;
  const data = Buffer.from(input);
  let signature: Buffer;
  switch (alg) {
    case 'RS256':
      signature = sign('sha256', data, privateKey);
      break;
    case 'PS256':
      signature = sign('sha256', data, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
      break;
    case 'ES256':
      signature = sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
      break;
    case 'EdDSA':
      signature = sign(null, data, privateKey);
      break;
  }
  return `${input}.${signature.toString('base64url')}`;
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Claims shaped exactly like gatepass's access tokens; an override of `undefined` removes the claim. */
export function accessClaims(userId: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = nowSeconds();
  return { sub: String(userId), type: 'access', sid: randomUUID(), role: 'student', jti: randomUUID(), iat, exp: iat + 900, ...overrides };
}

export function refreshClaims(userId: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = nowSeconds();
  return { sub: String(userId), type: 'refresh', sid: randomUUID(), jti: randomUUID(), iat, exp: iat + 604800, ...overrides };
}

export function segmentsOf(token: string): [string, string, string] {
  const [header = '', payload = '', signature = ''] = token.split('.');
  return [header, payload, signature];
}

export function decodeJson(segment: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** One request with a raw Authorization header value (or none). */
export function withAuthorization(app: GatepassApp, authorization: string | undefined, url = '/users/me', method: 'GET' | 'POST' = 'GET') {
  return app.inject({ method, url, headers: authorization === undefined ? {} : { authorization } });
}

/** GET /users/me (or `url`) with `Authorization: Bearer <token>`. */
export function bearer(app: GatepassApp, token: string, url = '/users/me'): Promise<LightMyRequestResponse> {
  return withAuthorization(app, `Bearer ${token}`, url);
}

export function refresh(app: GatepassApp, refreshToken: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken } });
}

/** The exact API.md answer to a refused token: status 401, body, and RFC 6750 challenge. */
export function assertRejected(
  response: LightMyRequestResponse,
  expected: { detail: string; code: string },
  challenge = REJECTED_CHALLENGE,
): void {
  assert.equal(response.statusCode, 401, `expected 401, got ${response.statusCode} ${response.body}`);
  assert.deepEqual(response.json<unknown>(), { ...expected });
  assert.equal(response.headers['www-authenticate'], challenge);
}

export function assertInvalidToken(response: LightMyRequestResponse): void {
  assertRejected(response, INVALID_TOKEN);
}

export function assertInvalidRefresh(response: LightMyRequestResponse): void {
  assertRejected(response, INVALID_REFRESH);
}

export function assertNotAuthenticated(response: LightMyRequestResponse): void {
  assertRejected(response, NOT_AUTHENTICATED, MISSING_CHALLENGE);
}

/** The control: the request was authenticated as `userId`. */
export function assertAccepted(response: LightMyRequestResponse, userId: number): void {
  assert.equal(response.statusCode, 200, `control token refused: ${response.body}`);
  assert.equal(response.json<UserBody>().id, userId);
}

/** A local HTTP server that records every request: proof that a `jku`/`x5u` URL was never fetched. */
export interface Beacon {
  origin: string;
  hits: string[];
  close(): Promise<void>;
}

export async function startBeacon(routes: Record<string, { type: string; body: string }>): Promise<Beacon> {
  const hits: string[] = [];
  const server: Server = createServer((request, response) => {
    hits.push(`${request.method ?? '?'} ${request.url ?? '?'}`);
    const route = routes[request.url ?? ''];
    response.writeHead(route === undefined ? 404 : 200, { 'content-type': route?.type ?? 'text/plain' });
    response.end(route?.body ?? 'not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    hits,
    close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };
}

// --- A minimal DER writer, enough for a self-signed X.509 v3 certificate (RFC 5280 §4.1) ---------

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest >>= 8) bytes.unshift(rest & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const SHA256_WITH_RSA = Buffer.from('2a864886f70d01010b', 'hex');
const COMMON_NAME = Buffer.from('550403', 'hex');

function utcTime(date: Date): Buffer {
  const text = date.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  return der(0x17, Buffer.from(text, 'ascii'));
}

/** A DER X.509 certificate for `publicKey`, issued to and by CN=`commonName`, signed with `privateKey` (RSA). */
export function selfSignedCertificate(commonName: string, publicKey: KeyObject, privateKey: KeyObject): Buffer {
  const algorithm = der(0x30, der(0x06, SHA256_WITH_RSA), der(0x05));
  const name = der(0x30, der(0x31, der(0x30, der(0x06, COMMON_NAME), der(0x0c, Buffer.from(commonName, 'utf8')))));
  const now = Date.now();
  const tbs = der(
    0x30,
    der(0xa0, der(0x02, Buffer.from([2]))), // version v3
    der(0x02, Buffer.from([0x01, 0x23, 0x45, 0x67])), // serial
    algorithm,
    name,
    der(0x30, utcTime(new Date(now - 86_400_000)), utcTime(new Date(now + 86_400_000))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
  );
  const signature = sign('sha256', tbs, privateKey);
  return der(0x30, tbs, algorithm, der(0x03, Buffer.from([0]), signature));
}
