import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  GatepassApiError,
  GatepassClient,
  isMfaChallenge,
  type FetchFunction,
  type PasskeyCredentialJSON,
  type PasskeyOptionsJSON,
  type WebAuthnFunctions,
} from '../../src/client/index.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { claimsOf, newCredentials } from '../helpers/client.js';
import { enrol, testClock } from '../helpers/mfa.js';
import { SoftAuthenticator, type CreationOptionsJson, type RequestOptionsJson } from '../helpers/webauthn.js';

/**
 * The passkey calls of gatepass/client in Node, with the browser half injected: what reaches the
 * browser functions and the server. (A real ceremony is in Chromium: test/e2e/passkeys.test.ts.)
 */

/** Well-formed JSON forms that no authenticator made: the server's schema takes them, its verification refuses them. */
const FAKE_REGISTRATION = {
  id: 'AAAA',
  rawId: 'AAAA',
  type: 'public-key',
  response: { clientDataJSON: 'AAAA', attestationObject: 'AAAA' },
  clientExtensionResults: {},
};
const FAKE_ASSERTION = {
  id: 'AAAA',
  rawId: 'AAAA',
  type: 'public-key',
  response: { clientDataJSON: 'AAAA', authenticatorData: 'AAAA', signature: 'AAAA', userHandle: 'AAAA' },
  clientExtensionResults: {},
};

describe('gatepass/client passkeys (Node, injected WebAuthn functions)', () => {
  let t: TestApp;
  let baseUrl: string;

  const clock = testClock();

  before(async () => {
    t = await createTestApp('sqlite', { PUBLIC_URL: 'http://localhost:8000' }, { now: clock.now });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    baseUrl = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  });
  after(() => t.close());

  function recording(): { fetch: FetchFunction; bodies: Map<string, unknown> } {
    const bodies = new Map<string, unknown>();
    return {
      bodies,
      fetch: (input, init) => {
        if (typeof init.body === 'string') bodies.set(new URL(input).pathname, JSON.parse(init.body));
        return fetch(input, init);
      },
    };
  }

  function fakeWebAuthn(): WebAuthnFunctions & { seen: PasskeyOptionsJSON[] } {
    const seen: PasskeyOptionsJSON[] = [];
    return {
      seen,
      startRegistration: ({ optionsJSON }) => {
        seen.push(optionsJSON);
        return Promise.resolve(FAKE_REGISTRATION as PasskeyCredentialJSON);
      },
      startAuthentication: ({ optionsJSON }) => {
        seen.push(optionsJSON);
        return Promise.resolve(FAKE_ASSERTION as PasskeyCredentialJSON);
      },
    };
  }

  it('without the webauthn option the ceremonies reject at once and send nothing', async () => {
    let requests = 0;
    const client = new GatepassClient({ baseUrl, fetch: (input, init) => ((requests += 1), fetch(input, init)) });
    await assert.rejects(client.registerPasskey('Laptop'), TypeError);
    await assert.rejects(client.loginWithPasskey(), TypeError);
    await assert.rejects(client.verifyMfaWithPasskey(), TypeError);
    assert.equal(requests, 0);
    client.dispose();
  });

  it('registerPasskey passes the server options to startRegistration and posts the credential with the trimmed name', async () => {
    const credentials = newCredentials();
    const webauthn = fakeWebAuthn();
    const recorder = recording();
    const client = new GatepassClient({ baseUrl, fetch: recorder.fetch, webauthn });
    try {
      await client.register(credentials);
      assert.ok(!isMfaChallenge(await client.login(credentials)));
      assert.deepEqual(await client.listPasskeys(), []);
      // The fake attestation is refused by the server's verification (400), after the whole round trip.
      await assert.rejects(
        client.registerPasskey('  Laptop  '),
        (error: unknown) => error instanceof GatepassApiError && error.status === 400,
      );
      assert.equal(webauthn.seen.length, 1);
      const options = webauthn.seen[0] as PasskeyOptionsJSON & { rp?: { id?: string }; user?: { name?: string } };
      assert.equal(typeof options.challenge, 'string');
      assert.equal(options.rp?.id, 'localhost');
      assert.deepEqual(recorder.bodies.get('/auth/passkeys/register/verify'), { ...FAKE_REGISTRATION, name: 'Laptop' });
      assert.deepEqual(await client.listPasskeys(), []);
      await assert.rejects(client.deletePasskey('AAAA'), (error: unknown) => error instanceof GatepassApiError && error.status === 404);
    } finally {
      client.dispose();
    }
  });

  it('verifyMfaWithPasskey completes a two-factor login with a real (software) passkey: amr ["pwd","hwk"]', async () => {
    const credentials = newCredentials();
    const authenticator = new SoftAuthenticator('http://localhost:8000');
    const webauthn: WebAuthnFunctions = {
      startRegistration: ({ optionsJSON }) =>
        Promise.resolve(authenticator.create(optionsJSON as unknown as CreationOptionsJson) as unknown as PasskeyCredentialJSON),
      startAuthentication: ({ optionsJSON }) =>
        Promise.resolve(authenticator.get(optionsJSON as unknown as RequestOptionsJson) as unknown as PasskeyCredentialJSON),
    };
    const client = new GatepassClient({ baseUrl, webauthn });
    try {
      await client.register(credentials);
      assert.ok(!isMfaChallenge(await client.login(credentials)));
      await client.registerPasskey('Key');
      await enrol(t.app, clock, client.accessToken ?? '');
      await client.logout();

      const challenge = await client.login(credentials);
      assert.ok(isMfaChallenge(challenge));
      assert.deepEqual(challenge.methods, ['totp', 'recovery_code', 'passkey']);
      const user = await client.verifyMfaWithPasskey();
      assert.equal(user.email, credentials.email);
      assert.deepEqual(claimsOf(client.accessToken ?? '').amr, ['pwd', 'hwk']);
      // The challenge is spent: nothing is pending any more.
      await assert.rejects(client.verifyMfaWithPasskey(), (error: unknown) => error instanceof GatepassApiError && error.status === 401);
    } finally {
      client.dispose();
    }
  });

  it('loginWithPasskey asks for options anonymously, posts the assertion, and stays signed out on 401 invalid_credential', async () => {
    const webauthn = fakeWebAuthn();
    const recorder = recording();
    const client = new GatepassClient({ baseUrl, fetch: recorder.fetch, webauthn });
    try {
      await assert.rejects(
        client.loginWithPasskey(),
        (error: unknown) => error instanceof GatepassApiError && error.status === 401 && error.code === 'invalid_credential',
      );
      assert.equal(webauthn.seen.length, 1);
      assert.equal(typeof webauthn.seen[0]?.challenge, 'string');
      assert.deepEqual(recorder.bodies.get('/auth/passkeys/login/verify'), FAKE_ASSERTION);
      assert.equal(client.isSignedIn, false);
    } finally {
      client.dispose();
    }
  });
});
