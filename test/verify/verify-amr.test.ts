import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { createVerifier, gatepassExpress, gatepassFastify, type VerifiedUser } from '../../src/verify/index.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { signUp } from '../helpers/client.js';
import { claims, hs256 } from '../helpers/jwt.js';

/**
 * `amr` (RFC 8176) through gatepass/verify: what a real gatepass token says of its sign-in, and
 * `requireAmr`, which lets a service's route ask for a second factor, in Fastify and Express alike.
 */

const MFA_REQUIRED = { detail: 'This needs a sign-in with a second factor', code: 'mfa_required' };

describe('gatepass/verify: amr and requireAmr', () => {
  let t: TestApp;
  let fastifyApp: FastifyInstance;
  let expressServer: Server;
  let expressUrl: string;
  const secret = () => t.settings.jwt.accessSecret;
  const token = (amr: unknown) => hs256({ alg: 'HS256', typ: 'JWT' }, claims(7, amr === undefined ? {} : { amr }), secret());

  before(async () => {
    t = await createTestApp('sqlite');
    const verifier = createVerifier({ secret: secret() });
    const view = (user: VerifiedUser | null) => ({ id: user?.id, amr: user?.amr, email_verified: user?.emailVerified });
    fastifyApp = Fastify();
    await fastifyApp.register(gatepassFastify(verifier));
    fastifyApp.get('/me', { onRequest: fastifyApp.gatepassAuth.authenticate }, async (request) => view(request.user));
    fastifyApp.get('/payouts', { onRequest: fastifyApp.gatepassAuth.requireAmr('otp', 'hwk', 'swk') }, async (request) =>
      view(request.user),
    );
    await fastifyApp.ready();

    const auth = gatepassExpress(verifier);
    const app = express();
    app.get('/payouts', auth.requireAmr('otp', 'hwk', 'swk'), (request, response) => {
      response.json(view((request as express.Request & { user?: VerifiedUser }).user ?? null));
    });
    expressServer = await new Promise<Server>((resolve) => {
      const server = app.listen(0, '127.0.0.1', () => resolve(server));
    });
    expressUrl = `http://127.0.0.1:${(expressServer.address() as AddressInfo).port}`;
  });

  after(async () => {
    await fastifyApp.close();
    await new Promise((resolve) => expressServer.close(resolve));
    await t.close();
  });

  it("a gatepass password sign-in's token says amr [pwd] and email_verified false", async () => {
    const user = await signUp(t.app);
    const response = await fastifyApp.inject({ url: '/me', headers: { authorization: `Bearer ${user.tokens.access_token}` } });
    assert.equal(response.statusCode, 200, response.body);
    assert.deepEqual(response.json(), { id: user.id, amr: ['pwd'], email_verified: false });
  });

  for (const [what, amr, status] of [
    ['a password sign-in', ['pwd'], 403],
    ['a token without amr (an older server)', undefined, 403],
    ['an amr that is not a list', 'otp', 403],
    ['a sign-in with TOTP', ['pwd', 'otp'], 200],
    ['a passkey sign-in', ['hwk'], 200],
  ] as const) {
    it(`requireAmr('otp','hwk','swk'): ${what} → ${status}`, async () => {
      const presented = token(amr);
      const fastifyAnswer = await fastifyApp.inject({ url: '/payouts', headers: { authorization: `Bearer ${presented}` } });
      const expressAnswer = await fetch(`${expressUrl}/payouts`, { headers: { authorization: `Bearer ${presented}` } });
      assert.equal(fastifyAnswer.statusCode, status, fastifyAnswer.body);
      assert.equal(expressAnswer.status, status);
      if (status === 403) {
        assert.deepEqual(fastifyAnswer.json(), MFA_REQUIRED);
        assert.deepEqual(await expressAnswer.json(), MFA_REQUIRED);
      } else {
        assert.deepEqual(fastifyAnswer.json<{ amr: string[] }>().amr, amr);
        assert.deepEqual(((await expressAnswer.json()) as { amr: string[] }).amr, amr);
      }
    });
  }

  it('requireAmr still authenticates first: no token is 401, a forged one 401', async () => {
    assert.equal((await fastifyApp.inject({ url: '/payouts' })).statusCode, 401);
    const forged = hs256({ alg: 'HS256', typ: 'JWT' }, claims(7, { amr: ['pwd', 'otp'] }), 'not-the-secret'.repeat(4));
    assert.equal((await fastifyApp.inject({ url: '/payouts', headers: { authorization: `Bearer ${forged}` } })).statusCode, 401);
  });
});
