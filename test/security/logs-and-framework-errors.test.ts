import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { post, signUp } from '../helpers/client.js';

/**
 * Issue 12, property 9 (logs and framework errors): a token in a query string never reaches the
 * request log, and the errors Fastify and Node's HTTP parser raise before any route runs answer in
 * API.md's `{detail, code}` shape, over real sockets.
 */

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

async function listen(t: TestApp): Promise<number> {
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const address = t.app.server.address();
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

/** One request with node:http, which sends the path as given (fetch would normalise `/%`). */
function request(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const outgoing = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers as Record<string, string>, body: text }),
      );
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

/** Raw bytes on a socket, for requests that node:http refuses to send; reads until the server closes. */
function rawRequest(port: number, bytes: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...headerLines] = head.split('\r\n');
      const headers = Object.fromEntries(
        headerLines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
      );
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') });
    });
    socket.write(bytes);
  });
}

/** API.md's error: JSON, exactly `{detail, code}` with a string detail, no `error`/`message`/`statusCode` of Fastify's own shape. */
function assertApiError(answer: RawAnswer, status: number, code: string, context: string): void {
  assert.equal(answer.status, status, `${context}: ${answer.body}`);
  assert.match(answer.headers['content-type'] ?? '', /^application\/json/, context);
  const body = JSON.parse(answer.body) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body).sort(), ['code', 'detail'], `${context}: ${answer.body}`);
  assert.equal(body.code, code, `${context}: ${answer.body}`);
  assert.equal(typeof body.detail, 'string', context);
}

describe('framework errors answer {detail, code} over real HTTP', () => {
  let t: TestApp;
  let port: number;
  before(async () => {
    t = await createTestApp('sqlite', { LOG_LEVEL: 'silent' });
    port = await listen(t);
  });
  after(() => t.close());

  it('a URL with broken percent-encoding answers 400 invalid_url, without echoing the URL', async () => {
    for (const path of ['/%', '/%zz', '/users/%E0%A4%A', '/auth/sessions/%', '/%?access_token=secret-in-bad-url']) {
      const answer = await request(port, 'GET', path);
      assertApiError(answer, 400, 'invalid_url', `GET ${path}`);
      assert.ok(!answer.body.includes('secret-in-bad-url'), answer.body);
    }
    const withBody = await request(port, 'POST', '/auth/%zz', { 'content-type': 'application/json' }, '{}');
    assertApiError(withBody, 400, 'invalid_url', 'POST /auth/%zz');
  });

  it('a path parameter longer than the router allows answers 414 uri_too_long', async () => {
    const answer = await request(port, 'DELETE', `/auth/sessions/${'a'.repeat(500)}`);
    assertApiError(answer, 414, 'uri_too_long', 'DELETE /auth/sessions/<500 characters>');
  });

  it('an unparseable Content-Type answers 415, and a body without one too', async () => {
    const broken = await request(port, 'POST', '/auth/login', { 'content-type': ';;;' }, '{}');
    assertApiError(broken, 415, 'unsupported_media_type', 'Content-Type ;;;');
    const missing = await rawRequest(port, 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}');
    assertApiError(missing, 415, 'unsupported_media_type', 'no Content-Type');
  });

  it('a body shorter than its Content-Length answers 400 invalid_content_length', async () => {
    // A real client cannot send this and still read the answer (the server waits for the rest); inject can.
    const response = await t.app.inject({
      method: 'POST',
      url: '/auth/refresh',
      payload: '{"refresh_token":"x"}',
      headers: { 'content-type': 'application/json', 'content-length': '50' },
    });
    assert.equal(response.statusCode, 400, response.body);
    assert.deepEqual(Object.keys(response.json<object>()).sort(), ['code', 'detail']);
    assert.equal(response.json<{ code: string }>().code, 'invalid_content_length');
  });

  it("requests Node's HTTP parser refuses answer 400 bad_request or 431, in the same shape", async () => {
    const cases: [string, string, number, string][] = [
      ['a header line without a colon', 'GET /ping HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n', 400, 'bad_request'],
      ['an unknown method', 'BREW /ping HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'bad_request'],
      [
        'a non-numeric Content-Length',
        'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}',
        400,
        'bad_request',
      ],
      [
        'a broken chunk size',
        'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
        400,
        'bad_request',
      ],
      ['headers over the size limit', `GET /ping HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`, 431, 'headers_too_large'],
    ];
    for (const [name, bytes, status, code] of cases) assertApiError(await rawRequest(port, bytes), status, code, name);
  });

  it('after all of that the server still answers', async () => {
    assert.equal((await request(port, 'GET', '/ping')).status, 200);
  });
});

describe('request logs never contain a token or a password from the query string or the body', () => {
  let t: TestApp;
  let port: number;
  let logText = '';
  before(async () => {
    const stream = new PassThrough();
    stream.on('data', (chunk: Buffer) => (logText += chunk.toString()));
    t = await createTestApp('sqlite', { LOG_LEVEL: 'trace' }, { logStream: stream });
    port = await listen(t);
  });
  after(() => t.close());

  it('logs the path and the names of query parameters, never their values', async () => {
    const user = await signUp(t.app);
    const { access_token: access, refresh_token: refresh } = user.tokens;
    const secrets = [
      access,
      refresh,
      user.password,
      'Query-Password-Value-1',
      'Body-Password-Value-2',
      'Form-Password-Value-3',
      'secret-in-bad-url',
    ];

    const queried = await request(
      port,
      'GET',
      `/users/me?access_token=${access}&refresh_token=${refresh}&password=Query-Password-Value-1&flag`,
    );
    assert.equal(queried.status, 401, 'a token in the query string is not accepted as credentials');
    await request(port, 'GET', `/users/me?${access}`);
    await request(port, 'GET', `/tasks?limit=5&token=${encodeURIComponent(refresh)}`, { authorization: `Bearer ${access}` });
    await request(port, 'GET', '/%?access_token=secret-in-bad-url');
    await request(
      port,
      'POST',
      '/auth/login?x=1',
      { 'content-type': 'application/json' },
      JSON.stringify({ email: user.email, password: 'Body-Password-Value-2' }),
    );
    await request(
      port,
      'POST',
      '/auth/login',
      { 'content-type': 'application/json' },
      `{"email":"${user.email}","password":"Body-Password-Value-2",}`,
    );
    await request(
      port,
      'POST',
      '/login',
      { 'content-type': 'application/x-www-form-urlencoded' },
      `username=${encodeURIComponent(user.email)}&password=Form-Password-Value-3`,
    );
    await rawRequest(
      port,
      `GET /users/me?access_token=${access} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${access}\r\nBroken header line\r\n\r\n`,
    );
    await post(t.app, '/auth/refresh', { refresh_token: refresh });

    assert.ok(
      logText.includes('"url":"/users/me?access_token=[redacted]&refresh_token=[redacted]&password=[redacted]&flag"'),
      'names are kept, values replaced',
    );
    assert.ok(logText.includes('"url":"/tasks?limit=[redacted]&token=[redacted]"'));
    assert.ok(logText.includes('"url":"/users/me?[redacted]"'), 'a name that is not a short identifier is replaced too');
    assert.ok(logText.includes('"url":"/%?access_token=[redacted]"'), 'a malformed URL is logged, redacted');
    for (const secret of secrets) assert.ok(!logText.includes(secret), `log contains a secret: ${secret.slice(0, 12)}…`);
    assert.ok(!/eyJ[\w-]+\.eyJ/.test(logText), 'log contains something shaped like a JWT');
  });
});
