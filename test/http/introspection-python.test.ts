import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { claimsOf, post, refresh, signUp } from '../helpers/client.js';

/**
 * A service written in another language (API.md "Services and token endpoints"): a Python 3 script
 * using the standard library only checks tokens through RFC 7662 introspection and revokes a refresh
 * token through RFC 7009, over a real loopback socket, with HTTP Basic service credentials.
 */

const SCRIPT = String.raw`
import base64, json, sys, urllib.error, urllib.parse, urllib.request

base_url, endpoint, client_id, client_secret, token = sys.argv[1:6]
basic = base64.b64encode(f"{client_id}:{client_secret}".encode("utf-8")).decode("ascii")
request = urllib.request.Request(
    base_url + endpoint,
    data=urllib.parse.urlencode({"token": token}).encode("ascii"),
    headers={
        "Authorization": "Basic " + basic,
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
        "User-Agent": "python-service/1.0",
    },
    method="POST",
)
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        status, body = response.status, response.read().decode("utf-8")
except urllib.error.HTTPError as error:
    status, body = error.code, error.read().decode("utf-8")
print(json.dumps({"status": status, "body": json.loads(body)}))
`;

interface PythonAnswer {
  status: number;
  body: Record<string, unknown>;
}

function runPython(scriptPath: string, args: string[]): Promise<PythonAnswer> {
  return new Promise((resolve, reject) => {
    execFile('python3', [scriptPath, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      if (error !== null) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          reject(new Error('python3 is not installed or not on PATH: this test needs a Python 3 interpreter (standard library only)'));
          return;
        }
        reject(new Error(`python3 failed (${error.message}): ${stderr}`));
        return;
      }
      try {
        resolve(JSON.parse(stdout) as PythonAnswer);
      } catch {
        reject(new Error(`python3 printed no JSON: ${stdout} ${stderr}`));
      }
    });
  });
}

describe('a Python service checks and revokes tokens through the standard endpoints (sqlite)', () => {
  let t: TestApp;
  let baseUrl: string;
  let dir: string;
  let script: string;
  let clientId: string;
  let clientSecret: string;

  before(async () => {
    t = await createTestApp('sqlite');
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.app.server.address() as AddressInfo;
    baseUrl = `http://127.0.0.1:${address.port}`;
    ({ clientId, clientSecret } = await t.app.gatepass.serviceCredentials.create('python-service'));
    dir = mkdtempSync(path.join(tmpdir(), 'gatepass-python-'));
    script = path.join(dir, 'check_token.py');
    writeFileSync(script, SCRIPT);
  });
  after(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const python = (endpoint: string, token: string, secret = clientSecret) =>
    runPython(script, [baseUrl, endpoint, clientId, secret, token]);

  it('sees a live access token as active (its sub) and, after logout, as inactive', async () => {
    const user = await signUp(t.app);
    const live = await python('/oauth/introspect', user.tokens.access_token);
    assert.equal(live.status, 200, JSON.stringify(live));
    assert.equal(live.body.active, true, JSON.stringify(live));
    assert.equal(live.body.sub, String(user.id));
    assert.equal(live.body.sid, claimsOf(user.tokens.access_token).sid);
    assert.equal(live.body.token_type, 'access_token');

    assert.equal((await post(t.app, '/auth/logout', undefined, user.tokens.access_token)).statusCode, 204);
    const loggedOut = await python('/oauth/introspect', user.tokens.access_token);
    assert.deepEqual(loggedOut, { status: 200, body: { active: false } });

    // A wrong secret is refused with invalid_client, not answered.
    const refused = await python('/oauth/introspect', user.tokens.access_token, `${clientSecret}x`);
    assert.deepEqual(refused, { status: 401, body: { detail: 'Invalid service credentials', code: 'invalid_client' } });
  });

  it('revokes a refresh token (RFC 7009): its session ends and the token no longer refreshes', async () => {
    const user = await signUp(t.app);
    const before = await python('/oauth/introspect', user.tokens.refresh_token);
    assert.equal(before.body.active, true, JSON.stringify(before));
    assert.equal(before.body.token_type, 'refresh_token');

    const revoked = await python('/oauth/revoke', user.tokens.refresh_token);
    assert.deepEqual(revoked, { status: 200, body: {} });

    const refused = await refresh(t.app, user.tokens.refresh_token);
    assert.equal(refused.statusCode, 401, refused.body);
    const access = await python('/oauth/introspect', user.tokens.access_token);
    assert.deepEqual(access, { status: 200, body: { active: false } }, "the session's access token is still active");
  });
});
