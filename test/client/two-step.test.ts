import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { Secret, TOTP } from 'otpauth';
import {
  GatepassApiError,
  GatepassClient,
  isMfaChallenge,
  type AuthEvent,
  type FetchFunction,
  type GatepassClientOptions,
  type LoginResult,
  type User,
} from '../../src/client/index.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { claimsOf, newCredentials } from '../helpers/client.js';
import { waitForValue } from '../helpers/instances.js';
import { MAIL_WAIT_MS } from '../helpers/outbox.js';

/**
 * gatepass/client's two-step login (TOTP or recovery code after the password), its TOTP enrolment
 * helpers and email verification, against a real server over HTTP (API.md "Two-factor sign-in",
 * "Email verification").
 */

const STEP_MS = 30_000;

/** RFC 6238 as authenticator apps compute it (SHA-1, 6 digits, 30 s), for the moment `at`. */
function totpCode(secret: string, at: number): string {
  return new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 }).generate({ timestamp: at });
}

/** Six digits that are none of the codes the server accepts around `at` (its window is one step each way). */
function wrongCode(secret: string, at: number): string {
  const accepted = new Set([-1, 0, 1].map((step) => totpCode(secret, at + step * STEP_MS)));
  for (let candidate = 0; ; candidate += 1) {
    const code = String(candidate).padStart(6, '0');
    if (!accepted.has(code)) return code;
  }
}

/** The `token=` lines of the verification mails to `email` in the outbox, oldest first. */
function verificationTokens(directory: string, email: string): string[] {
  let files: string[];
  try {
    files = readdirSync(directory).sort();
  } catch {
    return [];
  }
  return files.flatMap((file) => {
    const text = readFileSync(path.join(directory, file), 'utf8');
    if (/^To: (.*)$/m.exec(text)?.[1]?.trim() !== email || !/^Subject: .*verif/im.test(text)) return [];
    return [...text.matchAll(/^token=(\S+)$/gm)].map((match) => match[1] ?? '');
  });
}

/** The claims of the client's access token (read through a call: assertions on the getter narrow it). */
function claimsOfClient(client: GatepassClient): Record<string, unknown> {
  return claimsOf(client.accessToken ?? '');
}

function userOf(result: LoginResult): User {
  assert.ok(!isMfaChallenge(result), `expected a signed-in user, got ${JSON.stringify(result)}`);
  return result;
}

interface Sent {
  path: string;
  cookieHeader: string | null;
  status: number;
  setCookie: boolean;
  body: string;
}

/** Node's fetch, recording the path, the cookie-mode header and what came back. */
function recordingFetch(): { fetch: FetchFunction; sent: Sent[]; paths(): string[] } {
  const sent: Sent[] = [];
  return {
    sent,
    paths: () => sent.map((call) => call.path),
    fetch: async (input, init) => {
      const response = await fetch(input, init);
      sent.push({
        path: new URL(input).pathname,
        cookieHeader: new Headers(init.headers).get('x-gatepass-cookie'),
        status: response.status,
        setCookie: response.headers.getSetCookie().some((cookie) => cookie.startsWith('gatepass_refresh=')),
        body: await response.clone().text(),
      });
      return response;
    },
  };
}

function isApiError(status: number, code: string): (error: unknown) => boolean {
  return (error: unknown) => {
    assert.ok(error instanceof GatepassApiError, String(error));
    assert.deepEqual([error.status, error.code], [status, code], error.message);
    return true;
  };
}

describe('gatepass/client two-step login and email verification against a real server', () => {
  let t: TestApp;
  let baseUrl: string;
  /** The server's clock: real time plus what a test added (only forward). */
  let serverOffset = 0;
  const serverNow = () => Date.now() + serverOffset;
  const clients: GatepassClient[] = [];

  before(async () => {
    t = await createTestApp('sqlite', {}, { now: serverNow });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    baseUrl = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  });
  afterEach(() => {
    for (const client of clients.splice(0)) client.dispose();
  });
  after(() => t.close());

  function newClient(options: GatepassClientOptions = {}) {
    const recorder = recordingFetch();
    const client = new GatepassClient({ baseUrl, fetch: recorder.fetch, ...options });
    clients.push(client);
    const events: AuthEvent[] = [];
    client.subscribe((event) => events.push(event));
    return { client, events, recorder };
  }

  /** A new account with TOTP on, enrolled through the client; the client is left signed out. */
  async function enrolled(options: GatepassClientOptions = {}) {
    const credentials = newCredentials();
    const { client, events, recorder } = newClient(options);
    await client.register(credentials);
    userOf(await client.login(credentials));
    const setup = await client.setupTotp();
    assert.match(setup.secret, /^[A-Z2-7]{16,}$/, 'a base32 secret');
    assert.ok(setup.otpauth_uri.startsWith('otpauth://totp/'), setup.otpauth_uri);
    assert.equal(new URL(setup.otpauth_uri).searchParams.get('secret'), setup.secret);
    assert.match(setup.qr_svg, /^(<\?xml[^>]*>\s*)?<svg[\s>]/);
    const { recovery_codes: recoveryCodes } = await client.confirmTotp(totpCode(setup.secret, serverNow()));
    assert.equal(recoveryCodes.length, 10);
    assert.equal(new Set(recoveryCodes).size, 10);
    await client.logout();
    return { client, events, recorder, credentials, secret: setup.secret, recoveryCodes };
  }

  it('login answers an MfaChallenge instead of signing in; verifyMfa with a TOTP code signs in with amr pwd+otp', async () => {
    const { client, events, recorder, credentials, secret } = await enrolled();
    const eventsBefore = events.length;

    const result = await client.login(credentials);
    assert.ok(isMfaChallenge(result), JSON.stringify(result));
    assert.ok('mfaRequired' in result, 'the in operator narrows too');
    assert.deepEqual([...result.methods].sort(), ['recovery_code', 'totp']);
    assert.ok(Math.abs(result.expiresAt - (Date.now() + 5 * 60_000)) < 5000, `expiresAt ${result.expiresAt}`);
    assert.doesNotMatch(JSON.stringify(result), /mfa_token|"token"/, 'the mfa_token stays inside the client');
    assert.equal(client.isSignedIn, false);
    assert.equal(client.accessToken, null);
    assert.deepEqual(client.pendingMfa, result);
    assert.equal(events.length, eventsBefore, 'no signed_in event before the second step');

    // A wrong code is refused and the challenge stays open for another try.
    await assert.rejects(client.verifyMfa(wrongCode(secret, serverNow())), isApiError(400, 'invalid_code'));
    assert.equal(client.isSignedIn, false);
    assert.deepEqual(client.pendingMfa, result);

    // The confirmation spent the current step; the next one is inside the server's window.
    const user = await client.verifyMfa(totpCode(secret, serverNow() + STEP_MS));
    assert.equal(user.email, credentials.email);
    assert.equal(client.isSignedIn, true);
    assert.equal(client.pendingMfa, null, 'spent on success');
    assert.deepEqual(claimsOfClient(client).amr, ['pwd', 'otp']);
    const signedIn = events.at(-1);
    assert.equal(signedIn?.type === 'signed_in' && signedIn.via, 'login');
    assert.equal(recorder.paths().filter((path) => path === '/auth/mfa/verify').length, 2);
    // Body mode: the pair came in the body; the refresh works like after a one-step login.
    await client.refresh();
    assert.deepEqual(claimsOfClient(client).amr, ['pwd', 'otp'], 'amr survives a refresh');

    // Nothing is pending any more: refused without asking the server.
    const requests = recorder.sent.length;
    await assert.rejects(client.verifyMfa(totpCode(secret, serverNow())), isApiError(401, 'invalid_mfa_token'));
    assert.equal(recorder.sent.length, requests);
    await client.logout();
  });

  it('a recovery code completes the login once; the same code is refused next time', async () => {
    const { client, credentials, recoveryCodes } = await enrolled();
    const [first = '', second = ''] = recoveryCodes;
    assert.ok(isMfaChallenge(await client.login(credentials)));
    const user = await client.verifyMfa(first);
    assert.equal(user.email, credentials.email);
    assert.deepEqual(claimsOfClient(client).amr, ['pwd', 'otp']);
    await client.logout();

    assert.ok(isMfaChallenge(await client.login(credentials)));
    await assert.rejects(client.verifyMfa(first), isApiError(400, 'invalid_code'));
    assert.notEqual(client.pendingMfa, null, 'a wrong code leaves the challenge open');
    await client.verifyMfa(`  ${second.toUpperCase()} `);
    assert.equal(client.isSignedIn, true);
  });

  it('regenerating recovery codes voids the old set; disabling TOTP brings back the one-step login', async () => {
    const { client, credentials, recoveryCodes } = await enrolled();
    const [first = '', second = '', third = ''] = recoveryCodes;
    assert.ok(isMfaChallenge(await client.login(credentials)));
    await client.verifyMfa(first);

    const { recovery_codes: fresh } = await client.regenerateRecoveryCodes(second);
    assert.equal(fresh.length, 10);
    assert.ok(fresh.every((code) => !recoveryCodes.includes(code)));
    await assert.rejects(client.disableTotp({ password: credentials.password, code: third }), isApiError(400, 'invalid_code'));
    await assert.rejects(client.disableTotp({ password: `${credentials.password}x`, code: fresh[0] ?? '' }), (error: unknown) => {
      assert.ok(error instanceof GatepassApiError && [400, 401].includes(error.status), String(error));
      return true;
    });
    await client.disableTotp({ password: credentials.password, code: fresh[1] ?? '' });
    await client.logout();

    const result = await client.login(credentials);
    assert.equal(userOf(result).email, credentials.email);
    assert.deepEqual(claimsOfClient(client).amr, ['pwd']);
    assert.equal(client.pendingMfa, null);
  });

  it('cookie mode: verifyMfa asks for the cookie like login does, and the refresh token never reaches the body', async () => {
    const { client, recorder, credentials, recoveryCodes } = await enrolled({ mode: 'cookie' });
    assert.ok(isMfaChallenge(await client.login(credentials)));
    const login = recorder.sent.at(-1);
    assert.equal(login?.path, '/auth/login');
    assert.equal(login.cookieHeader, '1');
    assert.equal(login.setCookie, false, 'no session yet, so no cookie');

    await client.verifyMfa(recoveryCodes[0] ?? '');
    const verify = recorder.sent.find((call) => call.path === '/auth/mfa/verify');
    assert.ok(verify !== undefined);
    assert.equal(verify.cookieHeader, '1');
    assert.equal(verify.status, 200);
    assert.equal(verify.setCookie, true, 'the refresh token came as the HttpOnly cookie');
    const body = JSON.parse(verify.body) as Record<string, unknown>;
    assert.equal(typeof body.access_token, 'string');
    assert.equal(body.refresh_token, undefined);
    assert.equal(client.isSignedIn, true);
  });

  it('a challenge expires on the client clock; a 401 from the server ends it too; a new login replaces it', async () => {
    let clientClock = Date.now();
    const { client, recorder, credentials, secret } = await enrolled({ now: () => clientClock, autoRefresh: false });
    const challenge = await client.login(credentials);
    assert.ok(isMfaChallenge(challenge));
    clientClock = challenge.expiresAt;
    assert.equal(client.pendingMfa, null);
    const requests = recorder.sent.length;
    await assert.rejects(client.verifyMfa('123456'), isApiError(401, 'invalid_mfa_token'));
    assert.equal(recorder.sent.length, requests, 'an expired challenge is not sent');

    // Five wrong codes kill the mfa_token on the server: the sixth try is a 401, and the client forgets it.
    assert.ok(isMfaChallenge(await client.login(credentials)));
    for (let attempt = 0; attempt < 5; attempt += 1)
      await assert.rejects(client.verifyMfa(wrongCode(secret, serverNow())), isApiError(400, 'invalid_code'));
    assert.notEqual(client.pendingMfa, null);
    await assert.rejects(client.verifyMfa(totpCode(secret, serverNow() + STEP_MS)), isApiError(401, 'invalid_mfa_token'));
    assert.equal(client.pendingMfa, null);
    await assert.rejects(client.verifyMfa(totpCode(secret, serverNow() + STEP_MS)), isApiError(401, 'invalid_mfa_token'));

    // cancelMfa forgets it; a wrong password leaves nothing pending.
    assert.ok(isMfaChallenge(await client.login(credentials)));
    client.cancelMfa();
    assert.equal(client.pendingMfa, null);
    assert.ok(isMfaChallenge(await client.login(credentials)));
    await assert.rejects(client.login({ ...credentials, password: `${credentials.password}x` }), isApiError(401, 'invalid_credentials'));
    assert.equal(client.pendingMfa, null);
  });

  it('a server-side expiry (5 minutes) is a 401 that ends the challenge', async () => {
    const { client, credentials, secret } = await enrolled();
    assert.ok(isMfaChallenge(await client.login(credentials)));
    serverOffset += 5 * 60_000 + 1000;
    await assert.rejects(client.verifyMfa(totpCode(secret, serverNow())), isApiError(401, 'invalid_mfa_token'));
    assert.equal(client.pendingMfa, null);
    assert.equal(client.isSignedIn, false);
  });

  it('verifyEmail spends the mailed token once; resend answers already_verified afterwards', async () => {
    const credentials = newCredentials();
    const { client } = newClient();
    const created = await client.register(credentials);
    assert.equal(created.email_verified, false);
    const mailed = (count: number) =>
      waitForValue(
        `${count} verification mail(s) to ${credentials.email}`,
        () => {
          const tokens = verificationTokens(t.settings.outboxDir, credentials.email);
          return tokens.length < count ? undefined : tokens;
        },
        MAIL_WAIT_MS,
      );
    await mailed(1);
    userOf(await client.login(credentials));
    assert.equal((await client.me()).email_verified, false);
    assert.equal(claimsOfClient(client).email_verified, false);
    // A new mail; the token of the newest one is the one to use.
    await client.resendVerificationEmail();
    const token = (await mailed(2)).at(-1) ?? '';

    await client.verifyEmail(token);
    await assert.rejects(client.verifyEmail(token), isApiError(400, 'invalid_token'));
    await assert.rejects(client.verifyEmail('not-a-token'), isApiError(400, 'invalid_token'));
    assert.equal((await client.me()).email_verified, true);
    await client.refresh();
    assert.equal(claimsOfClient(client).email_verified, true);
    await assert.rejects(client.resendVerificationEmail(), isApiError(409, 'already_verified'));
  });
});
