import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in of GitHub's OAuth 2 and REST endpoints on 127.0.0.1 (issue 17), behaving as GitHub
 * documents them: `/login/oauth/authorize` issues a single-use code bound to the redirect_uri and the PKCE
 * S256 challenge; `/login/oauth/access_token` checks the client, the code, the redirect_uri and the verifier
 * and answers JSON (`Accept: application/json`), refusals included as GitHub does, with a `200` and an
 * `error` member; `/user` and `/user/emails` answer the account of a Bearer token. Accounts are set by the
 * test. There is no login page: a test issues the code for an account with `authorize()`, and a browser is
 * sent straight back to the site for `browserAccount` (as GitHub does once the user approved the app).
 */
export interface GitHubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
}

export interface GitHubAccount {
  id: number;
  login: string;
  name: string | null;
  emails: GitHubEmail[];
  /** Sent as `/user`'s body instead of the account's JSON: a malformed answer for the tests. */
  userAnswer?: string;
}

export interface GitHubStandIn {
  /** Where the OAuth endpoints are (`OAUTH_<ID>_GITHUB_URL`). */
  readonly webUrl: string;
  /** Where the REST API is (`OAUTH_<ID>_GITHUB_API_URL`). */
  readonly apiUrl: string;
  readonly clientId: string;
  /** The secret the token endpoint accepts; a test may change it (a secret rotated at GitHub). */
  clientSecret: string;
  /** The account a browser reaching `/login/oauth/authorize` is signed in as; without one it gets a 403 page. */
  browserAccount: GitHubAccount | null;
  /** How many codes the token endpoint redeemed. */
  readonly redeemedCodes: number;
  /**
   * The user approves the app at `authorizationUrl` (gatepass's redirect) as `account`: the callback URL
   * the browser would be sent to, with `code` and `state`.
   */
  authorize(authorizationUrl: string | URL, account: GitHubAccount): URL;
  close(): Promise<void>;
}

interface PendingCode {
  account: GitHubAccount;
  redirectUri: string;
  codeChallenge: string;
  expiresAt: number;
}

/** GitHub's codes live 10 minutes. */
const CODE_LIFETIME_MS = 10 * 60_000;
const AUTHORIZE_PATH = '/login/oauth/authorize';
const TOKEN_PATH = '/login/oauth/access_token';

export async function startGitHubStandIn(): Promise<GitHubStandIn> {
  const clientId = `Iv1.${randomBytes(8).toString('hex')}`;
  const codes = new Map<string, PendingCode>();
  const tokens = new Map<string, GitHubAccount>();
  let redeemedCodes = 0;

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      response.writeHead(500, { 'Content-Type': 'text/plain' }).end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const standIn: GitHubStandIn = {
    webUrl: origin,
    apiUrl: `${origin}/api/v3`,
    clientId,
    clientSecret: randomBytes(20).toString('hex'),
    browserAccount: null,
    get redeemedCodes() {
      return redeemedCodes;
    },
    authorize(authorizationUrl, account) {
      const url = new URL(authorizationUrl);
      if (url.origin + url.pathname !== origin + AUTHORIZE_PATH) throw new Error(`not this stand-in's authorize endpoint: ${url.href}`);
      const callback = approve(url.searchParams, account);
      if (typeof callback === 'string') throw new Error(`the stand-in refused the authorization request: ${callback}`);
      return callback;
    },
    close: () => new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve()))),
  };

  /** A code for `account`, bound to the request's redirect_uri and PKCE challenge; or why the request is refused. */
  function approve(params: URLSearchParams, account: GitHubAccount): URL | string {
    if (params.get('client_id') !== clientId) return 'unknown client_id';
    if (params.get('response_type') !== 'code') return 'response_type must be code';
    const redirectUri = params.get('redirect_uri');
    const state = params.get('state');
    const codeChallenge = params.get('code_challenge');
    if (redirectUri === null || state === null) return 'redirect_uri and state are required';
    if (codeChallenge === null || params.get('code_challenge_method') !== 'S256') return 'PKCE S256 is required';
    const code = randomBytes(10).toString('hex');
    codes.set(code, { account, redirectUri, codeChallenge, expiresAt: Date.now() + CODE_LIFETIME_MS });
    const callback = new URL(redirectUri);
    callback.searchParams.set('code', code);
    callback.searchParams.set('state', state);
    return callback;
  }

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', origin);
    if (request.method === 'GET' && url.pathname === AUTHORIZE_PATH) {
      const account = standIn.browserAccount;
      if (account === null) {
        response.writeHead(403, { 'Content-Type': 'text/plain' }).end('No GitHub account is signed in at the stand-in');
        return;
      }
      const callback = approve(url.searchParams, account);
      if (typeof callback === 'string') response.writeHead(400, { 'Content-Type': 'text/plain' }).end(callback);
      else response.writeHead(302, { Location: callback.href }).end();
      return;
    }
    if (request.method === 'POST' && url.pathname === TOKEN_PATH) {
      const answer = redeem(request, new URLSearchParams(await bodyOf(request)));
      if (request.headers.accept?.includes('application/json') === true)
        response.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' }).end(JSON.stringify(answer));
      else response.writeHead(200, { 'Content-Type': 'application/x-www-form-urlencoded' }).end(new URLSearchParams(answer).toString());
      return;
    }
    if (request.method === 'GET' && (url.pathname === '/api/v3/user' || url.pathname === '/api/v3/user/emails')) {
      const account = tokens.get(/^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1] ?? '');
      if (account === undefined) {
        response.writeHead(401, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: 'Bad credentials' }));
        return;
      }
      const body =
        url.pathname === '/api/v3/user/emails'
          ? JSON.stringify(account.emails.map((entry) => ({ ...entry, visibility: entry.primary ? 'private' : null })))
          : (account.userAnswer ??
            JSON.stringify({ id: account.id, login: account.login, name: account.name, type: 'User', node_id: `U_${account.id}` }));
      response.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' }).end(body);
      return;
    }
    response.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: 'Not Found' }));
  }

  /** The token endpoint's answer: a token, or GitHub's error object (which it sends with a 200). */
  function redeem(request: IncomingMessage, form: URLSearchParams): Record<string, string> {
    const client = clientCredentials(request, form);
    if (client.id !== clientId || !sameSecret(client.secret, standIn.clientSecret))
      return gitHubError('incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.');
    const code = form.get('code') ?? '';
    const pending = codes.get(code);
    // Single use: a code is spent by its first redemption, whatever the outcome.
    codes.delete(code);
    if (pending === undefined || Date.now() > pending.expiresAt)
      return gitHubError('bad_verification_code', 'The code passed is incorrect or expired.');
    if (form.get('redirect_uri') !== pending.redirectUri)
      return gitHubError('redirect_uri_mismatch', 'The redirect_uri MUST match the registered callback URL for this application.');
    const verifier = form.get('code_verifier') ?? '';
    if (createHash('sha256').update(verifier).digest('base64url') !== pending.codeChallenge)
      return gitHubError('bad_verification_code', 'The code_verifier does not match the code_challenge.');
    redeemedCodes += 1;
    const accessToken = `gho_${randomBytes(18).toString('base64url')}`;
    tokens.set(accessToken, pending.account);
    return { access_token: accessToken, token_type: 'bearer', scope: 'read:user,user:email' };
  }

  return standIn;
}

/** client_secret_post or client_secret_basic, as GitHub accepts both. */
function clientCredentials(request: IncomingMessage, form: URLSearchParams): { id: string; secret: string } {
  const basic = /^Basic (.+)$/.exec(request.headers.authorization ?? '')?.[1];
  if (basic !== undefined) {
    const [id = '', secret = ''] = Buffer.from(basic, 'base64').toString('utf8').split(':').map(decodeURIComponent);
    return { id, secret };
  }
  return { id: form.get('client_id') ?? '', secret: form.get('client_secret') ?? '' };
}

function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function gitHubError(error: string, description: string): Record<string, string> {
  return {
    error,
    error_description: description,
    error_uri: 'https://docs.github.com/apps/troubleshooting-oauth-app-access-token-request-errors',
  };
}

async function bodyOf(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
