import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import { totpCode } from '../../src/accounts/mfa/totp.js';
import type { GatepassApp } from '../../src/http/app.js';
import { post, type Tokens } from './client.js';

/** Two-factor sign-in (API.md "/auth/mfa") as a client drives it, on a clock the test controls. */

/** The test's clock: the app reads it (createTestApp's `now`), and codes are computed from it. */
export interface TestClock {
  now: () => number;
  advance: (ms: number) => void;
}

export function testClock(start = Date.now()): TestClock {
  let time = start;
  return { now: () => time, advance: (ms) => (time += ms) };
}

/** A code of the next 30-second step: every code a test submits is new, as an authenticator app's are. */
export function nextCode(clock: TestClock, secret: string): string {
  clock.advance(30_000);
  return totpCode(secret, clock.now());
}

export interface Enrolment {
  secret: string;
  recoveryCodes: string[];
}

/** Setup and confirm: TOTP on for the holder of `accessToken`. */
export async function enrol(app: GatepassApp, clock: TestClock, accessToken: string): Promise<Enrolment> {
  const setup = await post(app, '/auth/mfa/totp/setup', undefined, accessToken);
  assert.equal(setup.statusCode, 200, setup.body);
  const { secret } = setup.json<{ secret: string }>();
  const confirm = await post(app, '/auth/mfa/totp/confirm', { code: nextCode(clock, secret) }, accessToken);
  assert.equal(confirm.statusCode, 200, confirm.body);
  return { secret, recoveryCodes: confirm.json<{ recovery_codes: string[] }>().recovery_codes };
}

/** A login that must stop at the second step; returns its mfa_token. */
export async function mfaToken(app: GatepassApp, credentials: { email: string; password: string }): Promise<string> {
  const response = await post(app, '/auth/login', { email: credentials.email, password: credentials.password });
  assert.equal(response.statusCode, 200, response.body);
  const body = response.json<{ mfa_required?: boolean; mfa_token?: string }>();
  assert.equal(body.mfa_required, true, response.body);
  assert.equal(typeof body.mfa_token, 'string');
  return body.mfa_token ?? '';
}

export function verify(app: GatepassApp, token: string, code: string): Promise<LightMyRequestResponse> {
  return post(app, '/auth/mfa/verify', { mfa_token: token, code });
}

/** Both steps of a login with a TOTP code; returns the token pair. */
export async function loginWithCode(
  app: GatepassApp,
  clock: TestClock,
  credentials: { email: string; password: string },
  secret: string,
): Promise<Tokens> {
  const response = await verify(app, await mfaToken(app, credentials), nextCode(clock, secret));
  assert.equal(response.statusCode, 200, response.body);
  return response.json<Tokens>();
}
