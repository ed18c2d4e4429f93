import { isIP } from 'node:net';

/** What OIDC and GitHub providers share: the id of the routes, the button's label, the client's credentials. */
interface ProviderBase {
  /** The id in OAUTH_PROVIDERS and in the routes (`/auth/oauth/{id}/…`). */
  id: string;
  /** OAUTH_<ID>_NAME: the page's button label. */
  name: string;
  clientId: string;
  clientSecret: string;
  /** OAUTH_<ID>_SCOPES, split on spaces. */
  scopes: string[];
}

/** An OpenID Connect provider found by discovery at `issuer` (OAUTH_<ID>_ISSUER). */
export interface OidcProviderSettings extends ProviderBase {
  type: 'oidc';
  issuer: string;
}

/** GitHub, or a GitHub Enterprise Server (OAUTH_<ID>_TYPE=github). */
export interface GithubProviderSettings extends ProviderBase {
  type: 'github';
  /** OAUTH_<ID>_GITHUB_URL: where the authorize and token endpoints are (https://github.com). */
  githubUrl: string;
  /** OAUTH_<ID>_GITHUB_API_URL: where the user and emails API is (https://api.github.com). */
  apiUrl: string;
}

export type OAuthProviderSettings = OidcProviderSettings | GithubProviderSettings;

/** What readOAuthProviders needs from the settings reader. */
export interface OAuthProviderSources {
  read: (name: string) => string | undefined;
  problems: string[];
  environment: 'development' | 'production' | 'test';
  /** PUBLIC_URL as finally read (its default filled in): the base of every callback URL. */
  publicUrl: string;
  /** Whether PUBLIC_URL was set, rather than derived from HOST and PORT. */
  publicUrlSet: boolean;
}

const PROVIDER_ID = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const OIDC_DEFAULT_SCOPES = ['openid', 'email', 'profile'];
/** GitHub's scope for the account's addresses and whether GitHub verified them (the emails API). */
const GITHUB_DEFAULT_SCOPES = ['read:user', 'user:email'];

/** The prefix of a provider's variables: `OAUTH_` and the id upper-cased, `-` written `_`. */
export function providerVariablePrefix(id: string): string {
  return `OAUTH_${id.toUpperCase().replace(/-/g, '_')}_`;
}

/** Loopback hosts, where plain http is acceptable (a provider or a page on the same machine: development, tests). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/**
 * OAUTH_PROVIDERS and each provider's OAUTH_<ID>_* variables. Every problem names the variable it is
 * about; any problem stops the server, so a provider is never half-configured. Providers need a
 * usable PUBLIC_URL (their callbacks are built on it): in production it must be set, and https unless
 * on the loopback.
 */
export function readOAuthProviders(sources: OAuthProviderSources): OAuthProviderSettings[] {
  const { read, problems } = sources;
  const ids = (read('OAUTH_PROVIDERS') ?? '')
    .split(',')
    .map((id) => id.trim())
    .filter((id) => id !== '');
  const providers: OAuthProviderSettings[] = [];
  const seen = new Set<string>();
  for (const id of ids) {
    if (!PROVIDER_ID.test(id)) {
      problems.push(
        `OAUTH_PROVIDERS entries must be lower-case ids of letters, digits, "-" and "_", at most 32 characters, starting with a letter or digit (got "${id}")`,
      );
      continue;
    }
    if (seen.has(id)) {
      problems.push(`OAUTH_PROVIDERS names "${id}" more than once`);
      continue;
    }
    seen.add(id);
    const provider = readProvider(id, sources);
    if (provider !== undefined) providers.push(provider);
  }
  if (ids.length > 0) checkPublicUrl(sources);
  return providers;
}

function readProvider(id: string, { read, problems }: OAuthProviderSources): OAuthProviderSettings | undefined {
  const prefix = providerVariablePrefix(id);
  const issuer = read(`${prefix}ISSUER`);
  const type = read(`${prefix}TYPE`)?.toLowerCase();
  const clientId = read(`${prefix}CLIENT_ID`);
  const clientSecret = read(`${prefix}CLIENT_SECRET`);
  const before = problems.length;
  if (clientId === undefined) problems.push(`${prefix}CLIENT_ID is required for the provider "${id}" named in OAUTH_PROVIDERS`);
  if (clientSecret === undefined) problems.push(`${prefix}CLIENT_SECRET is required for the provider "${id}" named in OAUTH_PROVIDERS`);
  if (type !== undefined && type !== 'github' && type !== 'oidc')
    problems.push(`${prefix}TYPE must be github (or unset, with ${prefix}ISSUER, for OpenID Connect) (got "${type}")`);
  const isGithub = type === 'github';
  if (isGithub && issuer !== undefined) problems.push(`${prefix}ISSUER and ${prefix}TYPE=github exclude each other: set one of them`);
  if (!isGithub && issuer === undefined)
    problems.push(
      `${prefix}ISSUER (an OpenID Connect issuer URL, e.g. https://accounts.google.com) or ${prefix}TYPE=github is required for the provider "${id}"`,
    );
  const scopesRaw = read(`${prefix}SCOPES`);
  const scopes = scopesRaw === undefined ? (isGithub ? GITHUB_DEFAULT_SCOPES : OIDC_DEFAULT_SCOPES) : scopesRaw.split(/\s+/);
  const base = { id, clientId: clientId ?? '', clientSecret: clientSecret ?? '', scopes };
  if (isGithub) {
    const githubUrl = providerUrl(`${prefix}GITHUB_URL`, read(`${prefix}GITHUB_URL`) ?? 'https://github.com', problems);
    const apiUrl = providerUrl(`${prefix}GITHUB_API_URL`, read(`${prefix}GITHUB_API_URL`) ?? 'https://api.github.com', problems);
    if (problems.length > before) return undefined;
    return { ...base, type: 'github', name: read(`${prefix}NAME`) ?? 'GitHub', githubUrl, apiUrl };
  }
  if (issuer !== undefined) {
    providerUrl(`${prefix}ISSUER`, issuer, problems);
    if (scopesRaw !== undefined && !scopes.includes('openid')) problems.push(`${prefix}SCOPES must include openid (got "${scopesRaw}")`);
  }
  if (problems.length > before || issuer === undefined) return undefined;
  return { ...base, type: 'oidc', name: read(`${prefix}NAME`) ?? capitalised(id), issuer: issuer.replace(/\/+$/, '') };
}

/**
 * An https URL (http only on the loopback, where tests and development run their provider), without
 * credentials, query or fragment; its trailing slashes dropped. Problems are recorded under `name`.
 */
function providerUrl(name: string, value: string, problems: string[]): string {
  const url = URL.canParse(value) ? new URL(value) : undefined;
  if (
    url === undefined ||
    !['https:', 'http:'].includes(url.protocol) ||
    url.username !== '' ||
    url.password !== '' ||
    /[?#]/.test(value)
  ) {
    problems.push(`${name} must be an https:// URL without credentials, query or fragment (got "${value}")`);
    return value;
  }
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname))
    problems.push(`${name} must use https (plain http is accepted only on the loopback, for tests and development) (got "${value}")`);
  return value.replace(/\/+$/, '');
}

/** The provider sends the browser back to PUBLIC_URL's callback, and the browser must then hold the refresh cookie. */
function checkPublicUrl({ problems, environment, publicUrl, publicUrlSet }: OAuthProviderSources): void {
  if (environment !== 'production') return;
  if (!publicUrlSet) {
    problems.push(
      'PUBLIC_URL is required in production when OAUTH_PROVIDERS is set: the callback URL registered at each provider is PUBLIC_URL/auth/oauth/<id>/callback',
    );
    return;
  }
  // An unparsable PUBLIC_URL is reported by the settings' own check.
  if (URL.canParse(publicUrl)) {
    const url = new URL(publicUrl);
    if (url.protocol === 'http:' && !isLoopbackHost(url.hostname))
      problems.push(`PUBLIC_URL must use https in production when OAUTH_PROVIDERS is set (got "${publicUrl}")`);
  }
}

function capitalised(id: string): string {
  return id.charAt(0).toUpperCase() + id.slice(1);
}
