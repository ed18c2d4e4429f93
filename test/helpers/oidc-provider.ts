/**
 * A real OpenID Provider for the tests: `oidc-provider` 9 on 127.0.0.1 (a port of its own), configured
 * by the test. gatepass reaches it as any issuer, by discovery over HTTP.
 *
 *   const idp = await startOidcProvider({ clients: [{ clientId, clientSecret, redirectUris: [callback] }] });
 *   idp.setAccount('alice', { email: 'alice@example.com', email_verified: true, name: 'Alice' });
 *   // env for gatepass: OAUTH_PROVIDERS=acme, OAUTH_ACME_ISSUER=idp.issuer, OAUTH_ACME_CLIENT_ID/SECRET
 *   const callbackUrl = await idp.signInAtProvider(authorizationUrl, 'alice'); // …/callback?code=…&state=…&iss=…
 *   await idp.close();
 *
 * - Clients: confidential (client_secret_basic), code flow only; PKCE is required (S256) for all.
 * - Accounts: `setAccount(id, claims)`; the ID token carries `sub` (= id) and the claims set
 *   (email, email_verified, name), so no userinfo call is needed. Unknown ids sign in with `sub` only.
 * - Login: devInteractions, the provider's own pages. In a browser: the form at `/interaction/:uid`
 *   with a `login` field (the account id) and a `password` field (any password), then a consent page
 *   with a "Continue" button. Over HTTP: `signInAtProvider(url, accountId)` walks the same pages with a
 *   cookie jar and returns the URL the provider redirects to (gatepass's callback, not followed);
 *   `abortAtProvider(url)` takes the "abort" exit instead (callback with `error=access_denied`).
 * - Tampering: `tamperIdTokens(change)` makes the token endpoint answer ID tokens whose claims went
 *   through `change` (another nonce, issuer, audience, an expiry in the past…), re-signed with the
 *   provider's real key — what a compromised or confused provider would send; `tamperIdTokens(undefined)` stops it.
 *
 * oidc-provider prints an "Unsupported runtime" warning on Node 20; it works.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import Provider from 'oidc-provider';

export interface TestClient {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
}

/** The claims an account has beside `sub`. */
export interface AccountClaims {
  email?: string;
  email_verified?: boolean;
  name?: string;
}

export interface TestOidcProvider {
  /** `http://127.0.0.1:<port>`: OAUTH_<ID>_ISSUER. */
  issuer: string;
  setAccount(accountId: string, claims: AccountClaims): void;
  /** Signs `accountId` in at the provider and consents; returns the callback URL the provider redirects to. */
  signInAtProvider(authorizationUrl: string | URL, accountId: string): Promise<URL>;
  /** Leaves the provider's login page by its abort link; returns the callback URL (error=access_denied). */
  abortAtProvider(authorizationUrl: string | URL): Promise<URL>;
  /** From now on, the ID tokens of the token endpoint go through `change` and are re-signed; undefined stops it. */
  tamperIdTokens(change: ((claims: JWTPayload) => JWTPayload) | undefined): void;
  close(): Promise<void>;
}

/** Starts a provider with these clients (on `port`, or a free one); every test file starts its own and closes it. */
export async function startOidcProvider(options: { clients: TestClient[]; port?: number }): Promise<TestOidcProvider> {
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey: JWK = { ...(await exportJWK(privateKey)), kid: `test-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };
  const accounts = new Map<string, AccountClaims>();
  let tamper: ((claims: JWTPayload) => JWTPayload) | undefined;

  const provider = new Provider(issuer, {
    clients: options.clients.map((client) => ({
      client_id: client.clientId,
      client_secret: client.clientSecret,
      redirect_uris: client.redirectUris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    pkce: { required: () => true },
    jwks: { keys: [signingKey] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    // The requested claims go into the ID token itself, as most providers do (no userinfo call needed).
    conformIdTokenClaims: false,
    findAccount: (_context: unknown, accountId: string) => ({
      accountId,
      claims: () => ({ sub: accountId, ...accounts.get(accountId) }),
    }),
    features: { devInteractions: { enabled: true } },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    // Lifetimes in seconds, set so the provider does not warn about its defaults.
    ttl: { AuthorizationCode: 60, AccessToken: 600, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
  });

  // After the token endpoint answered: swap its ID token for a tampered one, signed with the real key.
  provider.use(async (context, next) => {
    await next();
    const body = context.body as { id_token?: unknown } | null;
    if (tamper === undefined || context.path !== '/token' || context.status !== 200 || typeof body?.id_token !== 'string') return;
    const header = decodeProtectedHeader(body.id_token);
    const claims = tamper(decodeJwt(body.id_token));
    const resigned = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: header.kid ?? '', typ: 'JWT' }).sign(privateKey);
    context.body = { ...body, id_token: resigned };
  });
  server.on('request', provider.callback());

  return {
    issuer,
    setAccount: (accountId, claims) => accounts.set(accountId, claims),
    signInAtProvider: (authorizationUrl, accountId) => walkInteraction(issuer, authorizationUrl, { accountId }),
    abortAtProvider: (authorizationUrl) => walkInteraction(issuer, authorizationUrl, { abort: true }),
    tamperIdTokens: (change) => {
      tamper = change;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** A cookie jar good enough for one provider on one host: name, value and path. */
class CookieJar {
  private readonly cookies = new Map<string, { value: string; path: string }>();

  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const equals = pair.indexOf('=');
      const name = pair.slice(0, equals).trim();
      const value = pair.slice(equals + 1).trim();
      const path =
        attributes
          .map((a) => a.trim())
          .find((a) => a.toLowerCase().startsWith('path='))
          ?.slice(5) ?? '/';
      const expired = attributes.some((a) => /^max-age=0$/i.test(a.trim()) || /^expires=thu, 01 jan 1970/i.test(a.trim()));
      const key = `${name};${path}`;
      if (expired || value === '') this.cookies.delete(key);
      else this.cookies.set(key, { value, path });
    }
  }

  header(url: URL): string {
    return [...this.cookies.entries()]
      .filter(([, cookie]) => url.pathname.startsWith(cookie.path))
      .map(([key, cookie]) => `${key.split(';')[0] ?? ''}=${cookie.value}`)
      .join('; ');
  }
}

/**
 * Walks the provider's pages as a browser would (redirects by hand, cookies kept): the login form,
 * then consent, until the provider redirects off its own origin, to the client's callback.
 */
async function walkInteraction(issuer: string, authorizationUrl: string | URL, how: { accountId?: string; abort?: boolean }): Promise<URL> {
  const jar = new CookieJar();
  let url = new URL(authorizationUrl);
  let body: URLSearchParams | undefined;
  for (let step = 0; step < 20; step += 1) {
    if (url.origin !== new URL(issuer).origin) return url;
    const response = await fetch(url, {
      method: body === undefined ? 'GET' : 'POST',
      redirect: 'manual',
      headers: { cookie: jar.header(url), ...(body !== undefined && { 'content-type': 'application/x-www-form-urlencoded' }) },
      ...(body !== undefined && { body: body.toString() }),
    });
    jar.store(response);
    body = undefined;
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location !== null) {
      url = new URL(location, url);
      continue;
    }
    const page = await response.text();
    if (response.status !== 200) throw new Error(`the provider answered ${response.status} at ${url.pathname}: ${page.slice(0, 300)}`);
    const prompt = /name="prompt" value="(\w+)"/.exec(page)?.[1];
    if (how.abort === true) {
      url = new URL(`${url.pathname}/abort`, url);
      continue;
    }
    const action = /<form[^>]*action="([^"]+)"/.exec(page)?.[1];
    if (prompt === undefined || action === undefined) throw new Error(`no interaction form at ${url.pathname}: ${page.slice(0, 300)}`);
    url = new URL(action.replace(/&amp;/g, '&'), url);
    body =
      prompt === 'login'
        ? new URLSearchParams({ prompt, login: how.accountId ?? '', password: 'any password will do' })
        : new URLSearchParams({ prompt });
  }
  throw new Error('the provider kept redirecting');
}
