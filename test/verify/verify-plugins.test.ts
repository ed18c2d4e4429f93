import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express, { type Request } from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { createVerifier, gatepassExpress, gatepassFastify, type VerifiedUser, type Verifier } from '../../src/verify/index.js';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { login, signUp, type Tokens } from '../helpers/client.js';
import { b64, claims, decode, EXPIRED, INVALID, listen, segments } from '../helpers/jwt.js';

/**
 * `gatepass/verify`'s Fastify plugin and Express middleware, in small apps of their own, against a
 * real gatepass app on a loopback port.
 */

const NOT_AUTHENTICATED = { detail: 'Not authenticated', code: 'not_authenticated' };
const FORBIDDEN = { detail: 'Not enough permissions', code: 'forbidden' };

describe('the Fastify plugin and the Express middleware', () => {
  const ADMIN = { email: 'admin@example.com', password: 'Gatepass-Admin-Passphrase-1' };
  // Undefined until before() sets them, and still undefined in after() when before() failed half-way.
  let t: TestApp | undefined;
  let verifier: Verifier;
  let fastifyApp: FastifyInstance | undefined;
  let expressServer: Server | undefined;
  let expressUrl: string;
  let student: Awaited<ReturnType<typeof signUp>>;
  let teacher: Awaited<ReturnType<typeof signUp>>;
  let teacherToken: string;
  let adminToken: string;

  before(async () => {
    t = await createTestApp('sqlite', { JWT_ALGORITHM: 'ES256', ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password });
    verifier = createVerifier({ jwksUrl: `${await listen(t)}/.well-known/jwks.json` });
    student = await signUp(t.app);
    teacher = await signUp(t.app);
    adminToken = (await login(t.app, ADMIN)).access_token;
    const promoted = await t.app.inject({
      method: 'PATCH',
      url: `/admin/users/${teacher.id}`,
      headers: { authorization: `Bearer ${adminToken}` },
      payload: { role: 'teacher' },
    });
    assert.equal(promoted.statusCode, 200, promoted.body);
    const refreshed = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      payload: { refresh_token: teacher.tokens.refresh_token },
    });
    assert.equal(refreshed.statusCode, 200, refreshed.body);
    teacherToken = refreshed.json<Tokens>().access_token;
    assert.equal(decode(segments(teacherToken)[1]).role, 'teacher');

    fastifyApp = Fastify();
    await fastifyApp.register(gatepassFastify(verifier));
    const whoami = (user: VerifiedUser | null) => ({ id: user?.id, role: user?.role, session_id: user?.sessionId });
    fastifyApp.get('/me', { onRequest: fastifyApp.gatepassAuth.authenticate }, async (request) => whoami(request.user));
    fastifyApp.get('/teachers', { onRequest: fastifyApp.gatepassAuth.requireRole('teacher') }, async (request) => whoami(request.user));
    fastifyApp.get('/users', { onRequest: fastifyApp.gatepassAuth.requirePermission('users:read') }, async (request) =>
      whoami(request.user),
    );
    fastifyApp.get('/open', async (request) => ({ user: request.user }));
    await fastifyApp.ready();

    const auth = gatepassExpress(verifier);
    const app = express();
    const userOf = (request: Request) => whoami((request as Request & { user?: VerifiedUser }).user ?? null);
    app.get('/me', auth.authenticate, (request, response) => {
      response.json(userOf(request));
    });
    app.get('/teachers', auth.requireRole('teacher'), (request, response) => {
      response.json(userOf(request));
    });
    app.get('/users', auth.requirePermission('users:read'), (request, response) => {
      response.json(userOf(request));
    });
    expressServer = await new Promise<Server>((resolve) => {
      const server = app.listen(0, '127.0.0.1', () => resolve(server));
    });
    expressUrl = `http://127.0.0.1:${(expressServer.address() as AddressInfo).port}`;
  });

  after(async () => {
    await fastifyApp?.close();
    const server = expressServer;
    if (server !== undefined) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await t?.close();
  });

  interface Answer {
    status: number;
    body: unknown;
    challenge: string | undefined;
  }
  type Call = (url: string, authorization?: string) => Promise<Answer>;

  const callFastify: Call = async (url, authorization) => {
    const response = await fastifyApp!.inject({ method: 'GET', url, headers: authorization === undefined ? {} : { authorization } });
    const challenge = response.headers['www-authenticate'];
    return {
      status: response.statusCode,
      body: response.json<unknown>(),
      challenge: typeof challenge === 'string' ? challenge : undefined,
    };
  };
  const callExpress: Call = async (url, authorization) => {
    const response = await fetch(`${expressUrl}${url}`, { headers: authorization === undefined ? {} : { authorization } });
    return {
      status: response.status,
      body: await response.json(),
      challenge: response.headers.get('www-authenticate') ?? undefined,
    };
  };

  for (const [kind, call] of [
    ['Fastify plugin (inject)', () => callFastify],
    ['Express middleware (real socket)', () => callExpress],
  ] as const) {
    describe(kind, () => {
      it('no header, or not Bearer: 401 not_authenticated with a plain Bearer challenge', async () => {
        for (const authorization of [undefined, 'Basic YWRtaW46YWRtaW4=', 'Bearer', 'Bearer ', 'Token abc']) {
          for (const url of ['/me', '/teachers', '/users']) {
            const answer = await call()(url, authorization);
            assert.deepEqual(answer, { status: 401, body: NOT_AUTHENTICATED, challenge: 'Bearer' }, `${url} with ${String(authorization)}`);
          }
        }
      });

      it('a bad token: 401 invalid_token; an expired one: 401 token_expired', async () => {
        const [header, payload, signature] = segments(student.tokens.access_token);
        const promoted = `${header}.${b64({ ...decode(payload), role: 'teacher' })}.${signature}`;
        for (const token of [promoted, 'garbage', student.tokens.refresh_token]) {
          for (const url of ['/me', '/teachers']) {
            const answer = await call()(url, `Bearer ${token}`);
            assert.deepEqual(
              answer,
              { status: 401, body: INVALID, challenge: 'Bearer error="invalid_token"' },
              `${url}: ${token.slice(0, 20)}`,
            );
          }
        }
        const now = Math.floor(Date.now() / 1000);
        const expired = t!.app.gatepass.tokens.signAccess(claims(student.id, { iat: now - 2000, exp: now - 60 }));
        assert.deepEqual(await call()('/me', `Bearer ${expired}`), {
          status: 401,
          body: EXPIRED,
          challenge: 'Bearer error="invalid_token"',
        });
      });

      it('a genuine token: the user (id, role, session) reaches the handler', async () => {
        const sid = decode(segments(student.tokens.access_token)[1]).sid;
        const answer = await call()('/me', `Bearer ${student.tokens.access_token}`);
        assert.deepEqual(answer, { status: 200, body: { id: student.id, role: 'student', session_id: sid }, challenge: undefined });
        const teacherAnswer = await call()('/me', `Bearer ${teacherToken}`);
        assert.equal(teacherAnswer.status, 200);
        assert.deepEqual(teacherAnswer.body, { id: teacher.id, role: 'teacher', session_id: decode(segments(teacherToken)[1]).sid });
      });

      it("requireRole('teacher'): a student gets 403 forbidden, the teacher passes", async () => {
        assert.deepEqual(await call()('/teachers', `Bearer ${student.tokens.access_token}`), {
          status: 403,
          body: FORBIDDEN,
          challenge: undefined,
        });
        assert.deepEqual(
          await call()('/teachers', `Bearer ${adminToken}`),
          { status: 403, body: FORBIDDEN, challenge: undefined },
          'the role list is exact',
        );
        const answer = await call()('/teachers', `Bearer ${teacherToken}`);
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        assert.deepEqual(answer.body, { id: teacher.id, role: 'teacher', session_id: decode(segments(teacherToken)[1]).sid });
      });

      it("requirePermission('users:read'): the promoted teacher and the admin pass, a student gets 403", async () => {
        const answer = await call()('/users', `Bearer ${teacherToken}`);
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        assert.equal((answer.body as { id: number }).id, teacher.id);
        assert.equal((await call()('/users', `Bearer ${adminToken}`)).status, 200);
        assert.deepEqual(await call()('/users', `Bearer ${student.tokens.access_token}`), {
          status: 403,
          body: FORBIDDEN,
          challenge: undefined,
        });
      });
    });
  }

  it('Fastify: a route without the hook sees no user', async () => {
    const response = await fastifyApp!.inject({
      method: 'GET',
      url: '/open',
      headers: { authorization: `Bearer ${student.tokens.access_token}` },
    });
    assert.equal(response.statusCode, 200);
    assert.deepEqual(response.json<unknown>(), { user: null });
  });
});
