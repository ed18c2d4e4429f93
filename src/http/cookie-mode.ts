import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Settings } from '../config/settings.js';
import { FieldError, GatepassError } from '../errors.js';
import { requestOrigin } from './client-info.js';

/**
 * Browser mode (API.md "Cookies"): the refresh token travels in an HttpOnly cookie that page
 * scripts cannot read, and never in a response body. Over plain HTTP (development) it is
 * `gatepass_refresh`, scoped to /auth. Over HTTPS it is `__Host-gatepass_refresh`: browsers accept
 * a `__Host-` cookie only when it is Secure, for Path=/ and without Domain, so neither a sibling
 * subdomain nor a plain-HTTP page can set one that shadows or replaces it.
 */
export const REFRESH_COOKIE = 'gatepass_refresh';
export const HOST_REFRESH_COOKIE = `__Host-${REFRESH_COOKIE}`;
export const COOKIE_MODE_HEADER = 'x-gatepass-cookie';
const HEADER_NEEDED = 'Requests authenticated by cookie need the header X-Gatepass-Cookie: 1';

/** The content types an HTML form can send (and a cross-origin script can send without a preflight). */
const FORM_CONTENT_TYPES = new Set(['application/x-www-form-urlencoded', 'multipart/form-data', 'text/plain']);

/** Requests that passed assertCookieRequestAllowed: only they may be given the cookie. */
const checkedRequests = new WeakSet<FastifyRequest>();

/** A login or refresh asks for cookie mode with the header `X-Gatepass-Cookie: 1`, and only so. */
export function wantsCookieMode(request: FastifyRequest): boolean {
  return request.headers[COOKIE_MODE_HEADER] === '1';
}

/**
 * `?cookie=true` used to ask for cookie mode. It is refused rather than ignored: ignored, a client
 * that still sends it would get the refresh token in the body, where page scripts can read it.
 */
export function refuseCookieQuery(request: FastifyRequest): void {
  const query = request.query as Record<string, unknown> | undefined;
  if (query?.cookie !== undefined) {
    throw new FieldError(
      ['query', 'cookie'],
      'Cookie mode is asked for with the header X-Gatepass-Cookie: 1, not a query parameter',
      'value_error',
    );
  }
}

/** The settings cookie mode reads: which other origins may use it. */
export type CookieModeSettings = Pick<Settings, 'corsOrigins'>;

/**
 * Name and Path of the refresh cookie. Over plain HTTP, Path is where the auth routes are mounted
 * (`/auth`, or `<prefix>/auth` when gatepass is registered under a prefix); a `__Host-` cookie must
 * have Path=/.
 */
function refreshCookieScope(request: FastifyRequest, authPath = '/auth'): { name: string; path: string } {
  return request.protocol === 'https' ? { name: HOST_REFRESH_COOKIE, path: '/' } : { name: REFRESH_COOKIE, path: authPath };
}

/** Sets the refresh cookie; only on a request that passed assertCookieRequestAllowed. `authPath` is the auth routes' path. */
export function setRefreshCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  token: string,
  maxAgeSeconds: number,
  authPath: string,
): void {
  if (!checkedRequests.has(request)) throw new Error('the refresh cookie is set only on requests that passed the cookie-mode checks');
  const { name, path } = refreshCookieScope(request, authPath);
  reply.setCookie(name, token, { httpOnly: true, secure: true, sameSite: 'strict', path, maxAge: maxAgeSeconds });
}

export function clearRefreshCookie(request: FastifyRequest, reply: FastifyReply, authPath: string): void {
  const { name, path } = refreshCookieScope(request, authPath);
  reply.clearCookie(name, { httpOnly: true, secure: true, sameSite: 'strict', path });
}

/** How many cookies named `name` the raw Cookie header holds (@fastify/cookie keeps only one of them). */
function cookieCount(header: string | undefined, name: string): number {
  if (header === undefined) return 0;
  let count = 0;
  for (const pair of header.split(';')) {
    const equals = pair.indexOf('=');
    if (equals !== -1 && pair.slice(0, equals).trim() === name) count += 1;
  }
  return count;
}

/**
 * The refresh token of the cookie for this request's protocol. Two cookies of that name (one of them
 * planted by a sibling subdomain or a plain-HTTP page, for another path) are refused: there is no
 * telling which one is this browser's own.
 */
export function refreshCookieOf(request: FastifyRequest): string | undefined {
  const { name } = refreshCookieScope(request);
  if (cookieCount(request.headers.cookie, name) > 1) {
    throw new GatepassError('duplicate_cookie', `The request carries more than one ${name} cookie; refusing to guess which is genuine`);
  }
  const value = request.cookies[name];
  return value === undefined || value === '' ? undefined : value;
}

/**
 * The CSRF defence of requests that a cookie authenticates. SameSite=Strict already keeps the
 * cookie off cross-site requests in current browsers; on top of it, the request must carry the
 * custom header (which a cross-site form cannot send, and which a cross-origin script can send only
 * after a CORS preflight that CORS_ORIGINS decides), its body must not be a form's (a form body
 * never sets or uses the cookie, whatever its headers), and its Origin, when sent, must be this
 * server's own or one of CORS_ORIGINS. Every request that sets or reads the cookie passes here.
 */
export function assertCookieRequestAllowed(request: FastifyRequest, settings: CookieModeSettings): void {
  if (!wantsCookieMode(request)) throw new GatepassError('csrf_failed', HEADER_NEEDED);
  const mediaType = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
  if (mediaType !== undefined && FORM_CONTENT_TYPES.has(mediaType)) {
    throw new GatepassError('csrf_failed', 'Cookie mode takes a JSON body or none: a form body never sets or uses the refresh cookie');
  }
  const origin = request.headers.origin;
  if (origin !== undefined) {
    if (origin !== requestOrigin(request) && !settings.corsOrigins.includes(origin))
      throw new GatepassError('csrf_failed', 'Origin not allowed');
  }
  checkedRequests.add(request);
}

/**
 * The external sign-in callback (routes/external-sign-in.ts) answers a top-level redirect from the
 * provider, which can carry no header of ours: what stands in for the custom header there is the
 * flow it completed — a `state` spent once, bound to this browser by its own HttpOnly flow cookie —
 * so that a forged callback cannot plant a session. Only that route calls this, after the flow checked out.
 */
export function allowCookieAfterExternalSignIn(request: FastifyRequest): void {
  checkedRequests.add(request);
}

/**
 * The checks of a route that may answer in cookie mode (login, refresh), before any work: `?cookie=`
 * is refused, and a request asking for cookie mode must pass assertCookieRequestAllowed.
 */
export function cookieModeGate(settings: CookieModeSettings): (request: FastifyRequest) => Promise<void> {
  return async (request) => {
    refuseCookieQuery(request);
    if (wantsCookieMode(request)) assertCookieRequestAllowed(request, settings);
  };
}
