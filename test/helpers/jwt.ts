import { createHmac, randomUUID, sign, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { TestApp } from './app.js';

/** Tokens taken apart and put together by hand, and a test app on a real loopback port, for the verifier's tests. */

/** The answers of a gatepass server (and of `gatepass/verify`) to a refused and to an expired token. */
export const INVALID = { detail: 'Could not validate credentials', code: 'invalid_token' };
export const EXPIRED = { detail: 'Token expired', code: 'token_expired' };

/** base64url of bytes, of a string, or of an object's JSON. */
export function b64(value: object | string | Buffer): string {
  if (Buffer.isBuffer(value)) return value.toString('base64url');
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

/** header.payload.HS256(secret). */
export function hs256(header: object, payload: object, secret: string | Buffer): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** header.payload.ES256(key) with the signature in the given encoding. */
export function es256(header: object, payload: object, key: KeyObject, encoding: 'ieee-p1363' | 'der' = 'ieee-p1363'): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${sign('sha256', Buffer.from(input), { key, dsaEncoding: encoding }).toString('base64url')}`;
}

/** A token's three segments: header, payload, signature. */
export function segments(token: string): [string, string, string] {
  const [header = '', payload = '', signature = ''] = token.split('.');
  return [header, payload, signature];
}

/** A base64url JSON segment, decoded. */
export function decode(segment: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** Claims shaped like gatepass's access tokens, valid for 15 minutes from now, with `overrides`. */
export function claims(userId: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const iat = Math.floor(Date.now() / 1000);
  return { sub: String(userId), type: 'access', sid: randomUUID(), role: 'student', jti: randomUUID(), iat, exp: iat + 900, ...overrides };
}

/** Starts the app on a free loopback port; returns its base URL. */
export async function listen(t: TestApp): Promise<string> {
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = t.app.server.address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}
