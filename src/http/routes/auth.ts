import cookie from '@fastify/cookie';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { FieldError, GatepassError } from '../../errors.js';
import { MFA_METHODS } from '../../accounts/mfa/mfa-service.js';
import type { TokenPair } from '../../sessions/session-service.js';
import { ACCESS_TOKEN_DETAILS } from '../../tokens/failures.js';
import { authOf } from '../auth-guard.js';
import { clientInfo } from '../client-info.js';
import {
  assertCookieRequestAllowed,
  clearRefreshCookie,
  cookieModeGate,
  refreshCookieOf,
  setRefreshCookie,
  wantsCookieMode,
} from '../cookie-mode.js';
import {
  BEARER_SECURITY,
  Email,
  FullName,
  LoginPassword,
  NewPassword,
  TokenResponse,
  UserOut,
  errorResponses,
  userOut,
  refTo,
} from '../schemas.js';
import type { AuthServices, GatepassApp, RoutePlugin } from '../types.js';

const RegisterBody = Type.Object({ email: Email, password: NewPassword, full_name: Type.Optional(FullName) });

const LoginJson = Type.Object({ email: Email, password: LoginPassword });
/** FastAPI's OAuth2PasswordRequestForm: what Swagger UI's Authorize button and OAuth2 clients send. */
const LoginForm = Type.Object(
  {
    username: Email,
    password: LoginPassword,
    grant_type: Type.Optional(Type.String({ pattern: '^password$' })),
    scope: Type.Optional(Type.String()),
    client_id: Type.Optional(Type.String()),
    client_secret: Type.Optional(Type.String()),
  },
  { description: 'OAuth2 password flow; `username` is the email' },
);

const RefreshBody = Type.Object({
  refresh_token: Type.Optional(Type.String({ minLength: 1, maxLength: 8192, description: 'omit in cookie mode' })),
});
const LogoutBody = Type.Object({ refresh_token: Type.Optional(Type.String({ maxLength: 8192 })) });

/** Documents the cookie-mode header (API.md "Cookies"); any value other than `1` is body mode. */
const CookieModeHeaders = Type.Object({
  'x-gatepass-cookie': Type.Optional(
    Type.String({
      description:
        'Browser (cookie) mode: `1` sets the refresh token as an HttpOnly, Secure, SameSite=Strict cookie ' +
        '(`__Host-gatepass_refresh` over HTTPS, `gatepass_refresh` for /auth over plain HTTP) and leaves it out of the body, ' +
        'and lets refresh and logout read it. Refused (403 `csrf_failed`) with a form body or an Origin that is neither ' +
        "this server's nor in CORS_ORIGINS. `?cookie=true` is no longer accepted (422).",
    }),
  ),
});

const registerSchema = (alias: boolean) => ({
  tags: ['auth'],
  summary: alias ? 'Register (alias of /auth/register, as in the seeds)' : 'Create an account',
  description:
    'Any `role` or `is_active` field in the body is ignored: new accounts are active students. ' +
    'A verification email (a single-use token, valid 24 hours) is sent to the address; see POST /auth/email/verify.',
  body: RegisterBody,
  response: { 201: refTo(UserOut), ...errorResponses(409, 413, 415, 422, 429) },
});

/** A login of an account with TOTP on: no tokens yet, but the mfa_token of POST /auth/mfa/verify. */
const MfaRequiredResponse = Type.Object(
  {
    mfa_required: Type.Literal(true),
    mfa_token: Type.String({ description: 'for POST /auth/mfa/verify; single use, valid 5 minutes and 5 wrong codes' }),
    methods: Type.Array(Type.Union(MFA_METHODS.map((method) => Type.Literal(method)))),
  },
  { description: 'The account has two-factor sign-in on: complete it with POST /auth/mfa/verify' },
);

const loginSchema = (alias: boolean) => ({
  tags: ['auth'],
  summary: alias ? 'Log in (alias of /auth/login, as in the seeds)' : 'Log in with email and password',
  description:
    'JSON `{email, password}` or the OAuth2 password form `username=&password=`. Starts a session. ' +
    'An account with two-factor sign-in on answers `{mfa_required, mfa_token, methods}` instead (JSON; the form answers 403 `mfa_required`): ' +
    'complete it with POST /auth/mfa/verify. ' +
    'Browser mode (`X-Gatepass-Cookie: 1`) takes JSON only, from this origin or CORS_ORIGINS.',
  headers: CookieModeHeaders,
  body: {
    content: {
      'application/json': { schema: LoginJson },
      'application/x-www-form-urlencoded': { schema: LoginForm },
    },
  },
  response: { 200: Type.Union([refTo(TokenResponse), MfaRequiredResponse]), ...errorResponses(401, 403, 413, 415, 422, 429) },
});

const refreshSchema = {
  tags: ['auth'],
  summary: 'Exchange a refresh token for a new pair (rotation)',
  description:
    'The presented refresh token becomes used. Presenting it again within REFRESH_REUSE_GRACE_SECONDS returns a new access token ' +
    'and the same child refresh token as its first use (one chain per session); later, it is treated as theft: the session is revoked and the answer is 401 `token_reused`. ' +
    'Without `refresh_token` in the body, the refresh cookie is read: only with `X-Gatepass-Cookie: 1` (403 `csrf_failed` ' +
    'otherwise), and two refresh cookies in one request are refused (400 `duplicate_cookie`).',
  headers: CookieModeHeaders,
  body: RefreshBody,
  response: { 200: refTo(TokenResponse), ...errorResponses(400, 401, 403, 413, 415, 422) },
};

const logoutSchema = {
  tags: ['auth'],
  summary: 'End the current session',
  description:
    'Revokes the session of the presented access token: its refresh tokens and access tokens stop working at once. ' +
    'A `refresh_token` in the body ends that session too, when it belongs to the same user. With `X-Gatepass-Cookie: 1` ' +
    'the refresh cookie is cleared, and its session ended likewise (same checks as refresh: 403 `csrf_failed`, 400 `duplicate_cookie`).',
  security: BEARER_SECURITY,
  headers: CookieModeHeaders,
  body: LogoutBody,
  response: { 204: Type.Null(), ...errorResponses(400, 401, 403, 413, 415, 422) },
};

const forgotSchema = {
  tags: ['auth'],
  summary: 'Ask for a password-reset email',
  description: 'Always 202, whether or not the email has an account. An active account receives a single-use token, valid 15 minutes.',
  body: Type.Object({ email: Email }),
  response: { 202: Type.Object({ message: Type.String() }), ...errorResponses(413, 415, 422, 429) },
};

const resetSchema = {
  tags: ['auth'],
  summary: 'Set a new password with a reset token',
  description: 'The token is single-use and valid 15 minutes. Every session of the account ends.',
  body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 256 }), new_password: NewPassword }),
  response: { 204: Type.Null(), ...errorResponses(400, 413, 415, 422, 429) },
};

/** An optional body: a bare POST is as good as `{}`. */
async function bodyOptional(request: FastifyRequest): Promise<void> {
  request.body ??= {};
}

/** What the handlers of this group share: the services, and where the refresh cookie is scoped over plain HTTP. */
interface AuthGroup extends AuthServices {
  cookiePath: string;
}

/**
 * Token responses must never be cached by browsers or proxies (RFC 6749 §5.1). In cookie mode the
 * refresh token goes into the HttpOnly cookie instead of the body.
 */
export function sendTokenPair(
  request: FastifyRequest,
  reply: FastifyReply,
  pair: TokenPair,
  cookiePath: string,
): Static<typeof TokenResponse> {
  reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
  const cookieMode = wantsCookieMode(request);
  if (cookieMode) setRefreshCookie(request, reply, pair.refreshToken, pair.refreshExpiresIn, cookiePath);
  return {
    access_token: pair.accessToken,
    ...(!cookieMode && { refresh_token: pair.refreshToken }),
    token_type: 'bearer',
    expires_in: pair.expiresIn,
    refresh_expires_in: pair.refreshExpiresIn,
  };
}

/** Registration and login, each also at the seeds' short path. Counted before the body is read, so even malformed requests spend the client's budget. */
function registerAndLogin(
  app: GatepassApp,
  { accounts, mfa, sessions, emailVerification, rateLimiter, settings, cookiePath }: AuthGroup,
): void {
  const limitPerClient = (bucket: string) => async (request: FastifyRequest) => rateLimiter.consume(bucket, request.ip);
  for (const [url, alias] of [
    ['/auth/register', false],
    ['/register', true],
  ] as const) {
    app.post(
      url,
      { onRequest: limitPerClient('register'), bodyLimit: settings.authBodyLimitBytes, schema: registerSchema(alias) },
      async (request, reply) => {
        const { email, password, full_name: fullName = null } = request.body;
        const user = await accounts.register({ email, password, fullName }, clientInfo(request));
        // Mailed after the answer: registration neither waits for the mail server nor fails with it.
        emailVerification.sendAfterRegistration(user, clientInfo(request));
        return reply.code(201).send(userOut(user));
      },
    );
  }
  for (const [url, alias] of [
    ['/auth/login', false],
    ['/login', true],
  ] as const) {
    // The cookie-mode gate runs before the password is checked: a forged cookie-mode login is refused without starting a session.
    const options = {
      onRequest: limitPerClient('login'),
      preHandler: cookieModeGate(settings),
      bodyLimit: settings.authBodyLimitBytes,
      schema: loginSchema(alias),
    };
    app.post(url, options, async (request, reply) => {
      // With no Content-Type there is no body, and no per-type schema ran to say so.
      if (request.body === undefined || request.body === null) throw new FieldError(['body'], 'Field required', 'missing');
      const body = request.body as Static<typeof LoginJson> | Static<typeof LoginForm>;
      const email = 'email' in body ? body.email : body.username;
      const user = await accounts.authenticate(email, body.password, clientInfo(request));
      const mfaToken = await mfa.beginSignIn(user, clientInfo(request), { viaForm: !('email' in body), firstFactor: 'pwd' });
      if (mfaToken !== undefined) {
        reply.header('Cache-Control', 'no-store').header('Pragma', 'no-cache');
        return { mfa_required: true as const, mfa_token: mfaToken, methods: [...MFA_METHODS] };
      }
      return sendTokenPair(request, reply, await sessions.startSession(user, clientInfo(request)), cookiePath);
    });
  }
}

/** The refresh token of a refresh request: the body's, else (cookie mode, after its checks) the cookie's. */
function presentedRefreshToken(request: FastifyRequest, fromBody: string | undefined, settings: AuthServices['settings']): string {
  if (fromBody !== undefined) return fromBody;
  const fromCookie = refreshCookieOf(request);
  if (fromCookie === undefined) {
    // A browser in cookie mode without its cookie simply has no session: 401, not a malformed request.
    if (wantsCookieMode(request)) throw new GatepassError('not_authenticated', ACCESS_TOKEN_DETAILS.not_authenticated);
    throw new FieldError(['body', 'refresh_token'], 'Field required', 'missing');
  }
  assertCookieRequestAllowed(request, settings);
  return fromCookie;
}

function refreshAndLogout(app: GatepassApp, { sessions, guards, settings, cookiePath }: AuthGroup): void {
  const bodyLimit = settings.authBodyLimitBytes;
  app.post(
    '/auth/refresh',
    { preValidation: bodyOptional, preHandler: cookieModeGate(settings), bodyLimit, schema: refreshSchema },
    async (request, reply) =>
      sendTokenPair(
        request,
        reply,
        await sessions.rotate(presentedRefreshToken(request, request.body.refresh_token, settings), clientInfo(request)),
        cookiePath,
      ),
  );

  // The body is optional: a bare POST is a plain logout.
  app.post(
    '/auth/logout',
    { onRequest: guards.requireUser, preValidation: bodyOptional, bodyLimit, schema: logoutSchema },
    async (request, reply) => {
      const auth = authOf(request);
      const entry = { event: 'logout', userId: auth.userId, client: clientInfo(request) } as const;
      // Browser mode reads and clears the cookie, so it passes the cookie checks first, before anything ends.
      const cookieMode = wantsCookieMode(request);
      if (cookieMode) assertCookieRequestAllowed(request, settings);
      const cookieToken = cookieMode ? refreshCookieOf(request) : undefined;
      await sessions.endSession(auth.userId, auth.sessionId, entry);
      if (cookieMode) clearRefreshCookie(request, reply, cookiePath);
      // The refresh token of another session may come in the body, or (browser mode) in the cookie.
      const presented = request.body.refresh_token ?? cookieToken;
      const other = presented === undefined ? undefined : sessions.sessionOfRefreshToken(presented);
      if (other !== undefined && other.userId === auth.userId && other.sessionId !== auth.sessionId) {
        await sessions.endSession(auth.userId, other.sessionId, entry);
      }
      return reply.code(204).send(null);
    },
  );
}

function passwordReset(app: GatepassApp, { passwordReset: resets, rateLimiter, settings }: AuthGroup): void {
  const bodyLimit = settings.authBodyLimitBytes;
  const limitPerClient = (bucket: string) => async (request: FastifyRequest) => rateLimiter.consume(bucket, request.ip);
  app.post(
    '/auth/password/forgot',
    { onRequest: limitPerClient('password-forgot'), bodyLimit, schema: forgotSchema },
    async (request, reply) => {
      // The answer leaves before any work that depends on the email, so its timing tells nothing.
      resets.requestInBackground(request.body.email, clientInfo(request));
      return reply.code(202).send({ message: 'If an account exists for this email, a reset link is on its way.' });
    },
  );
  app.post(
    '/auth/password/reset',
    { onRequest: limitPerClient('password-reset'), bodyLimit, schema: resetSchema },
    async (request, reply) => {
      await resets.reset(request.body.token, request.body.new_password, clientInfo(request));
      return reply.code(204).send(null);
    },
  );
}

/**
 * Registration, login, refresh, logout and password reset. Only these routes read or set a cookie
 * (cookie mode), so only they pay for parsing cookies; the refresh cookie is scoped to this group's
 * `/auth` under whatever prefix gatepass is mounted at.
 */
export const authRoutes: RoutePlugin<AuthServices> = async (app, services) => {
  if (!app.hasPlugin('@fastify/cookie')) await app.register(cookie);
  const context: AuthGroup = { ...services, cookiePath: `${app.prefix}/auth` };
  registerAndLogin(app, context);
  refreshAndLogout(app, context);
  passwordReset(app, context);
};
