import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { settingsLoader } from '../helpers/settings.js';

/** WEBAUTHN_RP_ID, WEBAUTHN_RP_NAME and WEBAUTHN_ORIGINS (src/config/webauthn.ts). */

const { load, problemsOf } = settingsLoader();

describe('WebAuthn settings', () => {
  it('development: derived from PUBLIC_URL (HOST:PORT by default); an IP address host becomes localhost; no warning', () => {
    const defaults = load({});
    assert.deepEqual(defaults.webauthn, { rpId: 'localhost', rpName: 'gatepass', origins: ['http://localhost:8000'] });
    assert.deepEqual(defaults.warnings, []);
    assert.deepEqual(load({ HOST: '::1', PORT: '9000' }).webauthn?.origins, ['http://localhost:9000']);
    assert.deepEqual(load({ HOST: 'dev.example.test', PORT: '8443' }).webauthn, {
      rpId: 'dev.example.test',
      rpName: 'gatepass',
      origins: ['http://dev.example.test:8443'],
    });
    assert.deepEqual(load({ PUBLIC_URL: 'https://auth.example.com/portal' }).webauthn, {
      rpId: 'auth.example.com',
      rpName: 'gatepass',
      origins: ['https://auth.example.com'],
    });
    assert.equal(load({ NODE_ENV: 'test' }).webauthn?.rpId, 'localhost');
  });

  it('explicit values win; the RP ID may be a parent domain of the origins; names are trimmed and lower-cased', () => {
    const settings = load({
      WEBAUTHN_RP_ID: 'Example.com',
      WEBAUTHN_RP_NAME: 'Example Login',
      WEBAUTHN_ORIGINS: 'https://auth.example.com, https://example.com ,https://app.example.com:8443',
    });
    assert.deepEqual(settings.webauthn, {
      rpId: 'example.com',
      rpName: 'Example Login',
      origins: ['https://auth.example.com', 'https://example.com', 'https://app.example.com:8443'],
    });
  });

  it('production: both set, https origins under the RP ID; unset altogether: passkeys off with a warning', () => {
    const production = { NODE_ENV: 'production' };
    const on = load({ ...production, WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'https://auth.example.com' });
    assert.deepEqual(on.webauthn, { rpId: 'example.com', rpName: 'gatepass', origins: ['https://auth.example.com'] });
    assert.deepEqual(on.warnings, []);
    // Plain http only for localhost (browsers allow WebAuthn there).
    assert.deepEqual(load({ ...production, WEBAUTHN_RP_ID: 'localhost', WEBAUTHN_ORIGINS: 'http://localhost:3000' }).webauthn?.origins, [
      'http://localhost:3000',
    ]);

    const off = load(production);
    assert.equal(off.webauthn, undefined);
    assert.ok(
      off.warnings.some((warning) => warning.startsWith('Passkeys are off: set WEBAUTHN_RP_ID')),
      off.warnings.join('\n'),
    );
    // PUBLIC_URL is never a production default for the relying party.
    assert.equal(load({ ...production, PUBLIC_URL: 'https://auth.example.com' }).webauthn, undefined);

    assert.deepEqual(problemsOf({ ...production, WEBAUTHN_RP_ID: 'example.com' }), [
      'WEBAUTHN_ORIGINS is required in production when WEBAUTHN_RP_ID is set (comma-separated page origins, e.g. https://auth.example.com)',
    ]);
    assert.deepEqual(problemsOf({ ...production, WEBAUTHN_ORIGINS: 'https://auth.example.com' }), [
      'WEBAUTHN_RP_ID is required in production when WEBAUTHN_ORIGINS is set (the domain passkeys are bound to, e.g. example.com)',
    ]);
    assert.deepEqual(problemsOf({ ...production, WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'http://auth.example.com' }), [
      'WEBAUTHN_ORIGINS must use https in production, except for localhost (got "http://auth.example.com")',
    ]);
  });

  it('refuses an RP ID that is not a suffix of every origin, an IP address or URL as RP ID, and origins with a path', () => {
    assert.deepEqual(problemsOf({ WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'https://auth.example.com,https://example.org' }), [
      'WEBAUTHN_RP_ID "example.com" must equal the host of every WEBAUTHN_ORIGINS entry or be a parent domain of it (got origin "https://example.org")',
    ]);
    // A suffix of the name that is not a parent domain does not do.
    assert.equal(problemsOf({ WEBAUTHN_RP_ID: 'ample.com', WEBAUTHN_ORIGINS: 'https://example.com' }).length, 1);
    for (const rpId of ['127.0.0.1', 'https://example.com', 'example.com:443', 'example.com/login']) {
      const problems = problemsOf({ WEBAUTHN_RP_ID: rpId, WEBAUTHN_ORIGINS: 'https://example.com' });
      assert.equal(problems.length, 1, problems.join('\n'));
      assert.ok(problems[0]?.startsWith('WEBAUTHN_RP_ID must be a domain name without scheme, port or path'), problems[0]);
    }
    assert.deepEqual(load({ WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: 'https://example.com/' }).webauthn?.origins, [
      'https://example.com',
    ]);
    for (const origin of ['https://example.com/login', 'example.com', 'ftp://example.com', 'https://example.com?x=1']) {
      const problems = problemsOf({ WEBAUTHN_RP_ID: 'example.com', WEBAUTHN_ORIGINS: origin });
      assert.equal(problems.length, 1, `${origin}: ${problems.join('\n')}`);
      assert.ok(problems[0]?.startsWith('WEBAUTHN_ORIGINS entries must be origins like https://auth.example.com'), problems[0]);
    }
  });
});
