import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Settings } from '../config/settings.js';
import { GatepassError } from '../errors.js';

/**
 * Browser mode (API.md "Cookies"): the refresh token travels in an HttpOnly cookie that page
 * scripts cannot read, scoped to /auth, and never in a response body.
 */
export const REFRESH_COOKIE = 'gatepass_refresh';
export const COOKIE_MODE_HEADER = 'x-gatepass-cookie';

/** A login or refresh asks for cookie mode with `?cookie=true` or `X-Gatepass-Cookie: 1`. */
export function wantsCookieMode(request: FastifyRequest): boolean {
  const query = request.query as Record<string, unknown> | undefined;
  return query?.cookie === 'true' || query?.cookie === true || request.headers[COOKIE_MODE_HEADER] === '1';
}

export function setRefreshCookie(reply: FastifyReply, token: string, maxAgeSeconds: number): void {
  reply.setCookie(REFRESH_COOKIE, token, { httpOnly: true, secure: true, sameSite: 'strict', path: '/auth', maxAge: maxAgeSeconds });
}

export function clearRefreshCookie(reply: FastifyReply): void {
  reply.clearCookie(REFRESH_COOKIE, { httpOnly: true, secure: true, sameSite: 'strict', path: '/auth' });
}

export function refreshCookieOf(request: FastifyRequest): string | undefined {
  const value = request.cookies[REFRESH_COOKIE];
  return value === undefined || value === '' ? undefined : value;
}

/**
 * The CSRF defence of requests that a cookie authenticates. SameSite=Strict already keeps the
 * cookie off cross-site requests in current browsers; on top of it, the request must carry the
 * custom header (which a cross-site form cannot send, and which a cross-origin script can send only
 * after a CORS preflight that CORS_ORIGINS decides), and its Origin, when sent, must be this
 * server's own or one of CORS_ORIGINS.
 */
export function assertCookieRequestAllowed(request: FastifyRequest, settings: Settings): void {
  if (request.headers[COOKIE_MODE_HEADER] !== '1') {
    throw new GatepassError('csrf_failed', 'Requests authenticated by cookie need the header X-Gatepass-Cookie: 1');
  }
  const origin = request.headers.origin;
  if (origin === undefined) return;
  const own = `${request.protocol}://${request.host}`;
  if (origin !== own && !settings.corsOrigins.includes(origin)) throw new GatepassError('csrf_failed', 'Origin not allowed');
}
