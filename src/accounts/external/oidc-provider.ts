import * as client from 'openid-client';
import { ExternalSignInError, type AuthorizationRequest, type ExternalProfile, type ExternalProvider } from './provider.js';

/**
 * An OpenID Connect provider found by discovery at its issuer (issue 17), on openid-client: the
 * authorization code flow with PKCE S256, `state` and `nonce`; the library checks the callback's
 * `state` and RFC 9207 `iss` (when the provider advertises it), and the ID token's signature, `iss`,
 * `aud`, `exp`, `iat` and `nonce`. Nothing of that is checked again here: its failures are only
 * translated into ExternalSignInError codes for the page.
 */
export interface OidcProviderConfig {
  id: string;
  name: string;
  issuer: string;
  clientId: string;
  clientSecret: string;
  scopes: readonly string[];
  /** Plain-HTTP issuer, for a provider on the loopback (tests, development) only. */
  allowInsecureRequests: boolean;
}

/** Per request to the provider (discovery, JWKS, token exchange, userinfo), in seconds as openid-client counts them. */
const REQUEST_TIMEOUT_SECONDS = 10;

/**
 * Discovery runs on first use and its answer is kept; a failed discovery is forgotten, so that a
 * provider down when gatepass starts (or at its first sign-in) is tried again at the next one.
 */
function lazyDiscovery(config: OidcProviderConfig): () => Promise<client.Configuration> {
  let discovered: Promise<client.Configuration> | undefined;
  return () => {
    discovered ??= client
      .discovery(new URL(config.issuer), config.clientId, undefined, client.ClientSecretBasic(config.clientSecret), {
        timeout: REQUEST_TIMEOUT_SECONDS,
        // eslint-disable-next-line @typescript-eslint/no-deprecated -- only for a plain-HTTP issuer on the loopback (settings refuse any other)
        ...(config.allowInsecureRequests && { execute: [client.allowInsecureRequests] }),
      })
      .catch((error: unknown) => {
        discovered = undefined;
        throw new ExternalSignInError('provider_unavailable', `${config.id}: discovery at ${config.issuer} failed: ${reasonOf(error)}`, {
          cause: error,
        });
      });
    return discovered;
  };
}

export function createOidcProvider(config: OidcProviderConfig): ExternalProvider {
  const configuration = lazyDiscovery(config);
  const scope = config.scopes.join(' ');
  return {
    id: config.id,
    name: config.name,
    kind: 'oidc',

    async authorizationRequest({ state, redirectUri }): Promise<AuthorizationRequest> {
      const discovered = await configuration();
      const codeVerifier = client.randomPKCECodeVerifier();
      const nonce = client.randomNonce();
      const url = client.buildAuthorizationUrl(discovered, {
        redirect_uri: redirectUri,
        scope,
        state,
        nonce,
        code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
      });
      return { url, codeVerifier, nonce };
    },

    async completeAuthorization({ callbackUrl, redirectUri, state, codeVerifier, nonce }): Promise<ExternalProfile> {
      const discovered = await configuration();
      if (nonce === null) throw new ExternalSignInError('invalid_callback', `${config.id}: an OpenID Connect flow without a nonce`);
      // openid-client sends the callback address without its query as redirect_uri: rebuild it on the
      // registered one, so that the address the request arrived at (behind a proxy) does not matter.
      const answer = new URL(redirectUri);
      answer.search = callbackUrl.search;
      try {
        const tokens = await client.authorizationCodeGrant(discovered, answer, {
          pkceCodeVerifier: codeVerifier,
          expectedState: state,
          expectedNonce: nonce,
          idTokenExpected: true,
        });
        const claims = tokens.claims();
        if (claims === undefined) throw new ExternalSignInError('invalid_callback', `${config.id}: the token answer has no ID token`);
        // Providers that keep the email out of the ID token give it at the userinfo endpoint, for the same subject.
        const info =
          claims.email === undefined && discovered.serverMetadata().userinfo_endpoint !== undefined
            ? await client.fetchUserInfo(discovered, tokens.access_token, claims.sub)
            : claims;
        return profileOf(claims.sub, info);
      } catch (error) {
        throw refusal(config.id, error);
      }
    },
  };
}

/** Who signed in: the ID token's subject, and the address only as the provider states it (a string `"true"` counts, as some providers send it). */
function profileOf(subject: string, claims: Record<string, unknown>): ExternalProfile {
  const email = typeof claims.email === 'string' && claims.email.includes('@') ? claims.email.trim() : null;
  const name = typeof claims.name === 'string' && claims.name.trim() !== '' ? claims.name.trim().slice(0, 200) : null;
  return { subject, email, emailVerified: email !== null && (claims.email_verified === true || claims.email_verified === 'true'), name };
}

/**
 * What openid-client's failures mean for the page: the user said no (`access_denied`), the provider
 * refused or failed (`provider_error`), it could not be reached (`provider_unavailable`), or its
 * answer did not check out — state, iss, nonce, aud, exp, signature (`invalid_callback`).
 */
function refusal(providerId: string, error: unknown): ExternalSignInError {
  if (error instanceof ExternalSignInError) return error;
  if (error instanceof client.AuthorizationResponseError) {
    const code = error.error === 'access_denied' ? 'access_denied' : 'provider_error';
    return new ExternalSignInError(code, `${providerId} answered the authorization with ${error.error}`, { cause: error });
  }
  if (error instanceof client.ResponseBodyError || error instanceof client.WWWAuthenticateChallengeError)
    return new ExternalSignInError('provider_error', `${providerId} refused the request: ${reasonOf(error)}`, { cause: error });
  if (isUnreachable(error))
    return new ExternalSignInError('provider_unavailable', `${providerId} could not be reached: ${reasonOf(error)}`, { cause: error });
  return new ExternalSignInError('invalid_callback', `${providerId}: the answer did not check out: ${reasonOf(error)}`, { cause: error });
}

/** A network failure or a timeout (fetch's TypeError, an abort), or an answer that was not the protocol's at all (a 5xx page). */
function isUnreachable(error: unknown): boolean {
  if (error instanceof TypeError && error.message === 'fetch failed') return true;
  if (error instanceof DOMException && (error.name === 'TimeoutError' || error.name === 'AbortError')) return true;
  return error instanceof client.ClientError && error.code === 'OAUTH_RESPONSE_IS_NOT_CONFORM';
}

function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${message}${cause}`.slice(0, 300);
}
