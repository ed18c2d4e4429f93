import * as client from 'openid-client';
import { ExternalSignInError, type AuthorizationRequest, type ExternalProfile, type ExternalProvider } from './provider.js';

/**
 * GitHub (github.com or GitHub Enterprise Server) as an external provider (issue 17). GitHub speaks plain
 * OAuth 2, not OpenID Connect: openid-client runs the authorization code grant against its endpoints (PKCE
 * S256 and `state` checked by the library), and who signed in comes from GitHub's REST API (`/user`,
 * `/user/emails`), read here with timeouts, size limits and shape checks.
 */
export interface GitHubProviderConfig {
  id: string;
  name: string;
  clientId: string;
  clientSecret: string;
  /** `https://github.com`, or a GitHub Enterprise Server's address. */
  webUrl: string;
  /** `https://api.github.com`, or a GitHub Enterprise Server's `https://<host>/api/v3`. */
  apiUrl: string;
  /** OAUTH_<ID>_SCOPES; `read:user user:email` when not given. */
  scopes?: readonly string[];
  /** Plain-HTTP endpoints, for loopback tests only. */
  allowInsecureRequests: boolean;
}

/** `read:user` for the profile, `user:email` for the addresses and their verified flags (private ones too). */
const DEFAULT_SCOPES = ['read:user', 'user:email'];
/** Per request to GitHub, token exchange included. */
const REQUEST_TIMEOUT_MS = 10_000;
/** A token answer or a `/user` profile is a few hundred bytes; anything near this is not GitHub. */
const MAX_BODY_BYTES = 256 * 1024;
const API_HEADERS = {
  Accept: 'application/vnd.github+json',
  'X-GitHub-Api-Version': '2022-11-28',
  'User-Agent': 'gatepass',
};

export function createGitHubProvider(config: GitHubProviderConfig): ExternalProvider {
  const webUrl = withoutTrailingSlash(config.webUrl);
  const apiUrl = withoutTrailingSlash(config.apiUrl);
  const scope = (config.scopes ?? DEFAULT_SCOPES).join(' ');
  for (const url of [webUrl, apiUrl]) {
    const protocol = new URL(url).protocol;
    if (protocol !== 'https:' && !(protocol === 'http:' && config.allowInsecureRequests))
      throw new TypeError(`GitHub provider "${config.id}": ${url} must be https`);
  }
  const configuration = new client.Configuration(
    {
      issuer: webUrl,
      authorization_endpoint: `${webUrl}/login/oauth/authorize`,
      token_endpoint: `${webUrl}/login/oauth/access_token`,
    },
    config.clientId,
    config.clientSecret,
  );
  configuration.timeout = REQUEST_TIMEOUT_MS / 1000;
  configuration[client.customFetch] = tokenEndpointFetch;
  // eslint-disable-next-line @typescript-eslint/no-deprecated -- only for plain-HTTP loopback stand-ins in tests
  if (config.allowInsecureRequests) client.allowInsecureRequests(configuration);

  return {
    id: config.id,
    name: config.name,
    kind: 'github',

    async authorizationRequest({ state, redirectUri }): Promise<AuthorizationRequest> {
      const codeVerifier = client.randomPKCECodeVerifier();
      const url = client.buildAuthorizationUrl(configuration, {
        redirect_uri: redirectUri,
        scope,
        state,
        code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
      });
      return { url, codeVerifier, nonce: null };
    },

    async completeAuthorization({ callbackUrl, redirectUri, state, codeVerifier }): Promise<ExternalProfile> {
      // openid-client sends the callback address without its query as redirect_uri: rebuild it on the
      // registered one, so that the address the request arrived at (behind a proxy) does not matter.
      const answer = new URL(redirectUri);
      answer.search = callbackUrl.search;
      let accessToken: string;
      try {
        const tokens = await client.authorizationCodeGrant(configuration, answer, {
          pkceCodeVerifier: codeVerifier,
          expectedState: state,
        });
        accessToken = tokens.access_token;
      } catch (error) {
        throw refusal(config.id, error);
      }
      const user = await readUser(apiUrl, accessToken, config.id);
      const emails = await readEmails(apiUrl, accessToken, config.id);
      // A verified address first (the primary one, else any); without one, the primary address as GitHub
      // gives it, marked unverified: it may make an account of its own, but never links to an existing one.
      const chosen =
        emails.find((entry) => entry.primary && entry.verified) ??
        emails.find((entry) => entry.verified) ??
        emails.find((entry) => entry.primary) ??
        null;
      return {
        // The numeric id never changes; the login can be renamed, and taken by someone else afterwards.
        subject: String(user.id),
        email: chosen?.email ?? null,
        emailVerified: chosen?.verified ?? false,
        name: user.name ?? user.login,
      };
    },
  };
}

/**
 * What openid-client's failures mean for the page, with the codes of the OIDC providers: the user said no
 * (`access_denied`), GitHub refused the code or the client (`provider_error`), it could not be reached
 * (`provider_unavailable`), or the callback did not check out — state, a missing code (`invalid_callback`).
 */
function refusal(providerId: string, error: unknown): ExternalSignInError {
  // The token answer's own checks (its size) fail inside openid-client's fetch, which wraps what they throw.
  if (error instanceof client.ClientError && error.cause instanceof ExternalSignInError) return error.cause;
  if (error instanceof client.AuthorizationResponseError) {
    const code = error.error === 'access_denied' ? 'access_denied' : 'provider_error';
    return new ExternalSignInError(code, `${providerId} answered the authorization with ${error.error}`, { cause: error });
  }
  if (error instanceof client.ResponseBodyError)
    return new ExternalSignInError('provider_error', `${providerId} refused the code: ${error.error}`, { cause: error });
  if (isUnreachable(error))
    return new ExternalSignInError('provider_unavailable', `${providerId} could not be reached: ${reasonOf(error)}`, { cause: error });
  return new ExternalSignInError('invalid_callback', `${providerId}: the callback did not check out: ${reasonOf(error)}`, { cause: error });
}

/** A network failure or a timeout, or a token answer that was not OAuth's at all (a 5xx page, an oversized body). */
function isUnreachable(error: unknown): boolean {
  if (error instanceof TypeError && error.message === 'fetch failed') return true;
  if (error instanceof DOMException && (error.name === 'TimeoutError' || error.name === 'AbortError')) return true;
  return (
    error instanceof client.ClientError && ['OAUTH_RESPONSE_IS_NOT_CONFORM', 'OAUTH_TIMEOUT', 'OAUTH_ABORT'].includes(error.code ?? '')
  );
}

/** openid-client's ClientError says "invalid response encountered" and keeps the check that failed in its cause. */
function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${message}${cause}`.slice(0, 300);
}

/**
 * The token endpoint's fetch for openid-client: the answer is read within MAX_BODY_BYTES, and GitHub's way of
 * refusing a code — `200 {"error": "bad_verification_code", …}` — becomes the `400` of RFC 6749 §5.2, so that
 * openid-client reports it as the refusal it is rather than as a token answer without a token.
 */
const tokenEndpointFetch: client.CustomFetch = async (url, options) => {
  const response = await fetch(url, { ...options, redirect: 'error' });
  const text = await readBounded(response);
  let status = response.status;
  if (status === 200) {
    const body = parseJson(text);
    if (isObject(body) && typeof body.error === 'string' && body.access_token === undefined) status = 400;
  }
  return new Response(text, { status, headers: response.headers });
};

interface GitHubUser {
  id: number;
  login: string;
  name: string | null;
}

interface GitHubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
}

async function readUser(apiUrl: string, accessToken: string, providerId: string): Promise<GitHubUser> {
  const body = await getJson(`${apiUrl}/user`, accessToken, providerId);
  if (
    !isObject(body) ||
    typeof body.id !== 'number' ||
    !Number.isSafeInteger(body.id) ||
    body.id <= 0 ||
    typeof body.login !== 'string' ||
    body.login === '' ||
    (body.name !== undefined && body.name !== null && typeof body.name !== 'string')
  )
    throw new ExternalSignInError('provider_error', `${providerId}: /user answered without a numeric id and a login`);
  const name = typeof body.name === 'string' && body.name.trim() !== '' ? body.name.trim() : null;
  return { id: body.id, login: body.login, name };
}

async function readEmails(apiUrl: string, accessToken: string, providerId: string): Promise<GitHubEmail[]> {
  const body = await getJson(`${apiUrl}/user/emails`, accessToken, providerId);
  if (!Array.isArray(body))
    throw new ExternalSignInError('provider_error', `${providerId}: /user/emails answered something other than a list`);
  return body.map((entry: unknown) => {
    if (
      !isObject(entry) ||
      typeof entry.email !== 'string' ||
      !entry.email.includes('@') ||
      typeof entry.primary !== 'boolean' ||
      typeof entry.verified !== 'boolean'
    )
      throw new ExternalSignInError('provider_error', `${providerId}: /user/emails has an entry without email, primary and verified`);
    return { email: entry.email, primary: entry.primary, verified: entry.verified };
  });
}

async function getJson(url: string, accessToken: string, providerId: string): Promise<unknown> {
  const path = new URL(url).pathname;
  let response: Response;
  let text: string;
  try {
    response = await fetch(url, {
      headers: { ...API_HEADERS, Authorization: `Bearer ${accessToken}` },
      redirect: 'error',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    text = await readBounded(response);
  } catch (error) {
    if (error instanceof ExternalSignInError) throw error;
    throw new ExternalSignInError('provider_unavailable', `${providerId}: ${path} could not be read: ${reasonOf(error)}`, { cause: error });
  }
  if (response.status !== 200) throw new ExternalSignInError('provider_error', `${providerId}: ${path} answered ${response.status}`);
  const body = parseJson(text);
  if (body === undefined) throw new ExternalSignInError('provider_error', `${providerId}: ${path} answered something other than JSON`);
  return body;
}

/** The body as text, refused once it passes MAX_BODY_BYTES (a stream is cut there, not read to the end). */
async function readBounded(response: Response): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > MAX_BODY_BYTES) {
    await response.body?.cancel();
    throw new ExternalSignInError('provider_error', `${response.url} answered more than ${MAX_BODY_BYTES} bytes`);
  }
  if (response.body === null) return '';
  const reader: ReadableStreamDefaultReader<Uint8Array> = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      throw new ExternalSignInError('provider_error', `${response.url} answered more than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function withoutTrailingSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
