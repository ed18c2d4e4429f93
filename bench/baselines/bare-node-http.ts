/**
 * The ceiling: a bare node:http server doing gatepass's own access-token check — the guard's
 * `authenticate` of an app built by buildApp (which never listens) — with nothing else around it:
 * no framework, no schema, no hooks, no logging. GET /bench/protected is the check alone; GET /users/me
 * adds a synchronous better-sqlite3 lookup in the same gatepass database. Listens on 127.0.0.1 at a
 * free port and prints it, with a token it accepts, after READY_MARKER.
 */
import http from 'node:http';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { loadSettings } from '../../src/config/settings.js';
import { appServices, issueAccessToken } from '../lib/gatepass-internals.js';
import { READY_MARKER } from '../lib/processes.js';

const settings = loadSettings(process.env, { cwd: process.cwd() });
if (!settings.databaseUrl.startsWith('sqlite:')) throw new Error('the bare server reads a SQLite database');
const database = new SQLite(path.resolve(process.cwd(), settings.databaseUrl.slice('sqlite:'.length)));
const findUser = database.prepare<
  [number],
  { id: number; email: string; full_name: string | null; role: string; is_active: number; created_at: number }
>('select id, email, full_name, role, is_active, created_at from users where id = ?');
const { services, guards, close } = await appServices(settings, process.cwd());

function send(response: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}

const server = http.createServer((request, response) => {
  const url = request.url ?? '/';
  if (url === '/ping') {
    send(response, 200, { status: 'ok', message: 'pong' });
    return;
  }
  if (request.method !== 'GET' || (url !== '/bench/protected' && url !== '/users/me')) {
    send(response, 404, { detail: 'Not Found' });
    return;
  }
  let caller;
  try {
    caller = guards.authenticate(request.headers.authorization);
  } catch {
    send(response, 401, { detail: 'Could not validate credentials' });
    return;
  }
  if (url === '/bench/protected') {
    send(response, 200, { user_id: caller.userId, role: caller.role });
    return;
  }
  const user = findUser.get(caller.userId);
  if (user === undefined) {
    send(response, 401, { detail: 'Could not validate credentials' });
    return;
  }
  send(response, 200, {
    id: user.id,
    email: user.email,
    full_name: user.full_name,
    role: user.role,
    is_active: Boolean(user.is_active),
    created_at: new Date(user.created_at).toISOString(),
  });
});

server.keepAliveTimeout = 72_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  console.log(`${READY_MARKER} ${JSON.stringify({ port, token: issueAccessToken(services, 1) })}`);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    server.close();
    server.closeAllConnections();
    database.close();
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
