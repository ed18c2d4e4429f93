/**
 * An external identity provider as the sign-in flow sees it (issue 17): OpenID Connect providers found by
 * discovery (oidc-provider.ts) and GitHub, the common plain-OAuth 2 case (github-provider.ts). Both are built
 * on openid-client, which checks state, PKCE, nonce, the ID token and the RFC 9207 `iss` parameter; this
 * module only fixes the shape the flow needs.
 */

/** Who the provider says signed in. `subject` is the provider's stable id for the person, never the email. */
export interface ExternalProfile {
  subject: string;
  email: string | null;
  /** Only true when the provider asserts that it verified `email` (OIDC `email_verified`, GitHub's `verified`). */
  emailVerified: boolean;
  name: string | null;
}

/** What to send the browser to, and what the callback will need to check the answer. */
export interface AuthorizationRequest {
  url: URL;
  /** PKCE (RFC 7636) verifier; its S256 challenge is in `url`. Kept server-side, never sent to the browser. */
  codeVerifier: string;
  /** OIDC `nonce` bound into the ID token; null for plain OAuth 2 providers. */
  nonce: string | null;
}

export interface ExternalProvider {
  /** The id in OAUTH_PROVIDERS and in the routes (`/auth/oauth/{id}/…`). */
  readonly id: string;
  /** Shown on the page's button. */
  readonly name: string;
  readonly kind: 'oidc' | 'github';
  authorizationRequest(input: { state: string; redirectUri: string }): Promise<AuthorizationRequest>;
  /**
   * Exchanges the callback's code and returns the profile; throws ExternalSignInError when the provider
   * refuses or anything in the answer does not check out.
   */
  completeAuthorization(input: {
    callbackUrl: URL;
    redirectUri: string;
    state: string;
    codeVerifier: string;
    nonce: string | null;
  }): Promise<ExternalProfile>;
}

/**
 * Why an external sign-in failed, as the `?error=` code the page receives (API.md): the detail goes to the
 * audit log and the server log, never to the browser.
 */
export class ExternalSignInError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ExternalSignInError';
  }
}
