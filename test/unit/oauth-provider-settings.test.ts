import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { settingsLoader } from '../helpers/settings.js';

/** OAUTH_PROVIDERS and each provider's OAUTH_<ID>_* variables (src/config/oauth-providers.ts). */

const { load, problemsOf } = settingsLoader();

const GOOGLE = {
  OAUTH_PROVIDERS: 'google',
  OAUTH_GOOGLE_ISSUER: 'https://accounts.google.com',
  OAUTH_GOOGLE_CLIENT_ID: 'client-1',
  OAUTH_GOOGLE_CLIENT_SECRET: 'secret-1',
};

describe('OAuth provider settings', () => {
  it('none by default', () => {
    assert.deepEqual(load({}).oauthProviders, []);
  });

  it('an OIDC provider by issuer, with the default scopes and the capitalised id as its name', () => {
    assert.deepEqual(load(GOOGLE).oauthProviders, [
      {
        type: 'oidc',
        id: 'google',
        name: 'Google',
        issuer: 'https://accounts.google.com',
        clientId: 'client-1',
        clientSecret: 'secret-1',
        scopes: ['openid', 'email', 'profile'],
      },
    ]);
  });

  it('GitHub and GitHub Enterprise Server by TYPE=github; ids with "-" read OAUTH_<ID>_ with "_"; NAME and SCOPES taken as given', () => {
    const settings = load({
      OAUTH_PROVIDERS: 'github, corp-ghe,keycloak',
      OAUTH_GITHUB_TYPE: 'github',
      OAUTH_GITHUB_CLIENT_ID: 'gh-id',
      OAUTH_GITHUB_CLIENT_SECRET: 'gh-secret',
      OAUTH_CORP_GHE_TYPE: 'GitHub',
      OAUTH_CORP_GHE_GITHUB_URL: 'https://ghe.corp.example/',
      OAUTH_CORP_GHE_GITHUB_API_URL: 'https://ghe.corp.example/api/v3',
      OAUTH_CORP_GHE_CLIENT_ID: 'ghe-id',
      OAUTH_CORP_GHE_CLIENT_SECRET: 'ghe-secret',
      OAUTH_CORP_GHE_NAME: 'Corp GitHub',
      OAUTH_KEYCLOAK_ISSUER: 'https://sso.example.com/realms/staff/',
      OAUTH_KEYCLOAK_CLIENT_ID: 'kc',
      OAUTH_KEYCLOAK_CLIENT_SECRET: 'kc-secret',
      OAUTH_KEYCLOAK_SCOPES: 'openid email',
    });
    assert.deepEqual(settings.oauthProviders, [
      {
        type: 'github',
        id: 'github',
        name: 'GitHub',
        githubUrl: 'https://github.com',
        apiUrl: 'https://api.github.com',
        clientId: 'gh-id',
        clientSecret: 'gh-secret',
        scopes: ['read:user', 'user:email'],
      },
      {
        type: 'github',
        id: 'corp-ghe',
        name: 'Corp GitHub',
        githubUrl: 'https://ghe.corp.example',
        apiUrl: 'https://ghe.corp.example/api/v3',
        clientId: 'ghe-id',
        clientSecret: 'ghe-secret',
        scopes: ['read:user', 'user:email'],
      },
      {
        type: 'oidc',
        id: 'keycloak',
        name: 'Keycloak',
        issuer: 'https://sso.example.com/realms/staff',
        clientId: 'kc',
        clientSecret: 'kc-secret',
        scopes: ['openid', 'email'],
      },
    ]);
  });

  it('plain http only on the loopback (a provider the tests run)', () => {
    const local = load({ ...GOOGLE, OAUTH_GOOGLE_ISSUER: 'http://127.0.0.1:4000' });
    assert.equal(local.oauthProviders[0]?.type === 'oidc' && local.oauthProviders[0].issuer, 'http://127.0.0.1:4000');
    assert.deepEqual(problemsOf({ ...GOOGLE, OAUTH_GOOGLE_ISSUER: 'http://idp.example.com' }), [
      'OAUTH_GOOGLE_ISSUER must use https (plain http is accepted only on the loopback, for tests and development) (got "http://idp.example.com")',
    ]);
  });

  it('malformed ids, duplicates, missing credentials, unknown types, both or neither of ISSUER and TYPE, bad URLs: each named', () => {
    assert.deepEqual(problemsOf({ OAUTH_PROVIDERS: 'Google,-x' }), [
      'OAUTH_PROVIDERS entries must be lower-case ids of letters, digits, "-" and "_", at most 32 characters, starting with a letter or digit (got "Google")',
      'OAUTH_PROVIDERS entries must be lower-case ids of letters, digits, "-" and "_", at most 32 characters, starting with a letter or digit (got "-x")',
    ]);
    assert.deepEqual(problemsOf({ ...GOOGLE, OAUTH_PROVIDERS: 'google,google' }), ['OAUTH_PROVIDERS names "google" more than once']);
    assert.deepEqual(problemsOf({ OAUTH_PROVIDERS: 'google', OAUTH_GOOGLE_ISSUER: 'https://accounts.google.com' }), [
      'OAUTH_GOOGLE_CLIENT_ID is required for the provider "google" named in OAUTH_PROVIDERS',
      'OAUTH_GOOGLE_CLIENT_SECRET is required for the provider "google" named in OAUTH_PROVIDERS',
    ]);
    assert.deepEqual(problemsOf({ ...GOOGLE, OAUTH_GOOGLE_ISSUER: '', OAUTH_GOOGLE_TYPE: 'gitlab' }), [
      'OAUTH_GOOGLE_TYPE must be github (or unset, with OAUTH_GOOGLE_ISSUER, for OpenID Connect) (got "gitlab")',
      'OAUTH_GOOGLE_ISSUER (an OpenID Connect issuer URL, e.g. https://accounts.google.com) or OAUTH_GOOGLE_TYPE=github is required for the provider "google"',
    ]);
    assert.deepEqual(problemsOf({ ...GOOGLE, OAUTH_GOOGLE_TYPE: 'github' }), [
      'OAUTH_GOOGLE_ISSUER and OAUTH_GOOGLE_TYPE=github exclude each other: set one of them',
    ]);
    assert.deepEqual(problemsOf({ ...GOOGLE, OAUTH_GOOGLE_ISSUER: 'accounts.google.com' }), [
      'OAUTH_GOOGLE_ISSUER must be an https:// URL without credentials, query or fragment (got "accounts.google.com")',
    ]);
    assert.deepEqual(problemsOf({ ...GOOGLE, OAUTH_GOOGLE_SCOPES: 'email profile' }), [
      'OAUTH_GOOGLE_SCOPES must include openid (got "email profile")',
    ]);
    assert.deepEqual(
      problemsOf({
        OAUTH_PROVIDERS: 'gh',
        OAUTH_GH_TYPE: 'github',
        OAUTH_GH_CLIENT_ID: 'id',
        OAUTH_GH_CLIENT_SECRET: 'secret',
        OAUTH_GH_GITHUB_API_URL: 'ftp://api.example.com',
      }),
      ['OAUTH_GH_GITHUB_API_URL must be an https:// URL without credentials, query or fragment (got "ftp://api.example.com")'],
    );
  });

  it('production: PUBLIC_URL must be set, and https off the loopback, when providers are configured', () => {
    const production = { ...GOOGLE, NODE_ENV: 'production', WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'https://auth.example.com' };
    assert.deepEqual(problemsOf(production), [
      'PUBLIC_URL is required in production when OAUTH_PROVIDERS is set: the callback URL registered at each provider is PUBLIC_URL/auth/oauth/<id>/callback',
    ]);
    assert.deepEqual(problemsOf({ ...production, PUBLIC_URL: 'http://auth.example.com' }), [
      'PUBLIC_URL must use https in production when OAUTH_PROVIDERS is set (got "http://auth.example.com")',
    ]);
    assert.equal(load({ ...production, PUBLIC_URL: 'https://auth.example.com' }).oauthProviders.length, 1);
  });
});
