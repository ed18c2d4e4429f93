import assert from 'node:assert/strict';
import type { LightMyRequestResponse } from 'fastify';
import type { GatepassApp } from '../../src/http/app.js';
import { post, type SignedUpUser } from './client.js';
import type { AuthenticationResponseJson, CreationOptionsJson, RequestOptionsJson, SoftAuthenticator } from './webauthn.js';

/** Passkey ceremonies (API.md "/auth/passkeys") as a client drives them, with a software authenticator. */

export const RP_ID = 'login.example.test';
export const ORIGIN = 'https://login.example.test';
export const WEBAUTHN_ENV = {
  WEBAUTHN_RP_ID: RP_ID,
  WEBAUTHN_ORIGINS: `${ORIGIN},https://app.login.example.test`,
  WEBAUTHN_RP_NAME: 'Gatepass Test',
};
export const INVALID_PASSKEY = 'The passkey could not be verified';
export const INVALID_CREDENTIAL = 'Invalid passkey';
export const NOT_FOUND = 'Passkey not found';
export const PASSKEY_KEYS = ['created_at', 'id', 'name', 'last_used_at'].sort();

export interface PasskeyBody {
  id: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
}

export async function registrationOptions(app: GatepassApp, token: string): Promise<CreationOptionsJson> {
  const response = await post(app, '/auth/passkeys/register/options', undefined, token);
  assert.equal(response.statusCode, 200, response.body);
  assert.match(String(response.headers['cache-control']), /no-store/);
  return response.json<CreationOptionsJson>();
}

export function verifyRegistration(app: GatepassApp, token: string, body: unknown): Promise<LightMyRequestResponse> {
  return post(app, '/auth/passkeys/register/verify', body, token);
}

/** Registers a passkey on `authenticator` for the user; returns it as the API answers. */
export async function registerPasskey(
  app: GatepassApp,
  user: SignedUpUser,
  authenticator: SoftAuthenticator,
  name?: string,
): Promise<PasskeyBody> {
  const options = await registrationOptions(app, user.tokens.access_token);
  const credential = authenticator.create(options);
  const response = await verifyRegistration(app, user.tokens.access_token, { ...credential, ...(name !== undefined && { name }) });
  assert.equal(response.statusCode, 201, response.body);
  const body = response.json<PasskeyBody>();
  assert.deepEqual(Object.keys(body).sort(), PASSKEY_KEYS, response.body);
  assert.equal(body.id, credential.id);
  return body;
}

export async function loginOptions(app: GatepassApp): Promise<RequestOptionsJson> {
  const response = await post(app, '/auth/passkeys/login/options', {});
  assert.equal(response.statusCode, 200, response.body);
  return response.json<RequestOptionsJson>();
}

export function verifyLogin(
  app: GatepassApp,
  assertion: AuthenticationResponseJson,
  headers: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/auth/passkeys/login/verify', payload: assertion, headers });
}
