import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { get, login, post, register, send, signUp, type Tokens } from '../helpers/client.js';
import {
  HS256_HEADER,
  TOKEN_REUSED,
  TOKEN_REVOKED,
  assertAccepted,
  assertInvalidRefresh,
  assertRejected,
  bearer,
  decodeJson,
  hs,
  refresh,
  segmentsOf,
} from './kit.js';

/**
 * Replaying tokens that were once genuine: after logout, logout-all, a deleted session, a password
 * change, a deactivation or a deletion, and refresh tokens presented again after rotation
 * (ASVS V3.3.1, V3.3.3, V3.5.3; RFC 6819 §5.2.2.3; API.md "token_revoked" and "token_reused").
 */

function assertRevoked(response: Awaited<ReturnType<typeof bearer>>): void {
  assertRejected(response, TOKEN_REVOKED);
}

describe('replay of access tokens after the session ends (HS256 server)', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp('sqlite');
  });
  after(() => t.close());

  it('ASVS V3.3.1 control: before logout, the access token and the refresh token work', async () => {
    const user = await signUp(t.app);
    assertAccepted(await bearer(t.app, user.tokens.access_token), user.id);
    assert.equal((await refresh(t.app, user.tokens.refresh_token)).statusCode, 200);
  });

  it('ASVS V3.3.1: an access token replayed after logout answers 401 token_revoked, on every protected route', async () => {
    const user = await signUp(t.app);
    assert.equal((await post(t.app, '/auth/logout', undefined, user.tokens.access_token)).statusCode, 204);
    assertRevoked(await bearer(t.app, user.tokens.access_token));
    for (const url of ['/users/me/status', '/tasks', '/auth/sessions', '/users/me/export'])
      assertRevoked(await bearer(t.app, user.tokens.access_token, url));
    assertRevoked(await post(t.app, '/auth/logout', undefined, user.tokens.access_token));
    assertRevoked(await post(t.app, '/tasks', { title: 'after logout' }, user.tokens.access_token));
  });

  it('ASVS V3.3.1: the refresh token replayed after logout answers 401 Invalid refresh token', async () => {
    const user = await signUp(t.app);
    assert.equal((await post(t.app, '/auth/logout', undefined, user.tokens.access_token)).statusCode, 204);
    assertInvalidRefresh(await refresh(t.app, user.tokens.refresh_token));
  });

  it('ASVS V3.5.3: a re-signed copy of a logged-out token (new jti, same sid) is still revoked', async () => {
    // Not an attacker's capability (it needs the secret), but it proves revocation is by session, not by token string.
    const user = await signUp(t.app);
    const claims = decodeJson(segmentsOf(user.tokens.access_token)[1]);
    assert.equal((await post(t.app, '/auth/logout', undefined, user.tokens.access_token)).statusCode, 204);
    assertRevoked(await bearer(t.app, hs(HS256_HEADER, { ...claims, jti: 'another-jti' }, t.settings.jwt.accessSecret)));
  });

  it('ASVS V3.3.4: after logout-all every access token of the user is revoked, another user is untouched', async () => {
    const user = await signUp(t.app);
    const second = await login(t.app, user);
    const bystander = await signUp(t.app);
    assert.equal((await post(t.app, '/auth/logout-all', undefined, user.tokens.access_token)).statusCode, 204);
    assertRevoked(await bearer(t.app, user.tokens.access_token));
    assertRevoked(await bearer(t.app, second.access_token));
    assertInvalidRefresh(await refresh(t.app, second.refresh_token));
    assertAccepted(await bearer(t.app, bystander.tokens.access_token), bystander.id);
  });

  it('ASVS V3.3.4: a session ended with DELETE /auth/sessions/{id} stops its access and refresh tokens', async () => {
    const user = await signUp(t.app);
    const victim = await login(t.app, user);
    const sid = String(decodeJson(segmentsOf(victim.access_token)[1]).sid);
    assert.equal((await send(t.app, 'DELETE', `/auth/sessions/${sid}`, undefined, user.tokens.access_token)).statusCode, 204);
    assertRevoked(await bearer(t.app, victim.access_token));
    assertInvalidRefresh(await refresh(t.app, victim.refresh_token));
    assertAccepted(await bearer(t.app, user.tokens.access_token), user.id);
  });

  it("ASVS V3.3.4: another user's session id cannot be ended (404), and their tokens keep working", async () => {
    const attacker = await signUp(t.app);
    const victim = await signUp(t.app);
    const sid = String(decodeJson(segmentsOf(victim.tokens.access_token)[1]).sid);
    const response = await send(t.app, 'DELETE', `/auth/sessions/${sid}`, undefined, attacker.tokens.access_token);
    assert.equal(response.statusCode, 404, response.body);
    assertAccepted(await bearer(t.app, victim.tokens.access_token), victim.id);
  });

  it("ASVS V3.3.3: a password change revokes the other sessions' tokens and keeps the current one", async () => {
    const user = await signUp(t.app);
    const other = await login(t.app, user);
    const response = await post(
      t.app,
      '/auth/password/change',
      { current_password: user.password, new_password: 'Fresh-Passphrase-4-gatepass' },
      user.tokens.access_token,
    );
    assert.equal(response.statusCode, 204, response.body);
    assertRevoked(await bearer(t.app, other.access_token));
    assertInvalidRefresh(await refresh(t.app, other.refresh_token));
    assertAccepted(await bearer(t.app, user.tokens.access_token), user.id);
  });
});

describe('refresh token reuse after rotation (HS256 server, REFRESH_REUSE_GRACE_SECONDS=0)', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp('sqlite', { REFRESH_REUSE_GRACE_SECONDS: '0' });
  });
  after(() => t.close());

  it('RFC 6819 §5.2.2.3 control: a refresh token is exchanged once for a working pair', async () => {
    const user = await signUp(t.app);
    const response = await refresh(t.app, user.tokens.refresh_token);
    assert.equal(response.statusCode, 200, response.body);
    assertAccepted(await bearer(t.app, response.json<Tokens>().access_token), user.id);
  });

  it('RFC 6819 §5.2.2.3 / ASVS V3.5.3: a rotated refresh token presented again answers 401 token_reused', async () => {
    const user = await signUp(t.app);
    assert.equal((await refresh(t.app, user.tokens.refresh_token)).statusCode, 200);
    assertRejected(await refresh(t.app, user.tokens.refresh_token), TOKEN_REUSED);
  });

  it("RFC 6819 §5.2.2.3: after reuse the whole family is revoked — the thief's and the victim's new tokens die", async () => {
    const user = await signUp(t.app);
    const rotated = (await refresh(t.app, user.tokens.refresh_token)).json<Tokens>();
    assertRejected(await refresh(t.app, user.tokens.refresh_token), TOKEN_REUSED);
    assertRevoked(await bearer(t.app, rotated.access_token));
    assertRevoked(await bearer(t.app, user.tokens.access_token));
    assertInvalidRefresh(await refresh(t.app, rotated.refresh_token));
    // Presenting the stolen token yet again is still refused.
    const again = await refresh(t.app, user.tokens.refresh_token);
    assert.equal(again.statusCode, 401, again.body);
  });

  it('RFC 6819 §5.2.2.3: a concurrent double exchange yields one pair at most, the other is reuse', async () => {
    const user = await signUp(t.app);
    const answers = await Promise.all([refresh(t.app, user.tokens.refresh_token), refresh(t.app, user.tokens.refresh_token)]);
    const statuses = answers.map((response) => response.statusCode).sort();
    assert.deepEqual(statuses, [200, 401], answers.map((response) => response.body).join('\n'));
    const loser = answers.find((response) => response.statusCode === 401);
    assert.ok(loser !== undefined);
    assertRejected(loser, TOKEN_REUSED);
  });
});

describe('tokens of a deactivated or deleted account (HS256 server)', () => {
  let t: TestApp;
  before(async () => {
    t = await createTestApp('sqlite');
  });
  after(() => t.close());

  it("ASVS V3.3.1 control: an active user's token works", async () => {
    const user = await signUp(t.app);
    assertAccepted(await bearer(t.app, user.tokens.access_token), user.id);
  });

  it("ASVS V3.3.1 / API.md: a deactivated user's access tokens answer 401 token_revoked, refresh tokens are invalid", async () => {
    const user = await signUp(t.app);
    const other = await login(t.app, user);
    assert.equal((await send(t.app, 'PUT', '/users/me/deactivate', undefined, user.tokens.access_token)).statusCode, 200);
    for (const tokens of [user.tokens, other]) {
      assertRevoked(await bearer(t.app, tokens.access_token));
      assertInvalidRefresh(await refresh(t.app, tokens.refresh_token));
    }
    const again = await post(t.app, '/auth/login', { email: user.email, password: user.password });
    assert.equal(again.statusCode, 403, again.body);
  });

  it("ASVS V3.3.1: a deleted account's tokens are revoked and its id is never handed to a new account", async () => {
    const user = await signUp(t.app);
    const deleted = await send(t.app, 'DELETE', '/users/me', { password: user.password }, user.tokens.access_token);
    assert.equal(deleted.statusCode, 204, deleted.body);
    assertRevoked(await bearer(t.app, user.tokens.access_token));
    assertInvalidRefresh(await refresh(t.app, user.tokens.refresh_token));
    // A new account does not inherit the id (SQLite AUTOINCREMENT), so old tokens can never name it.
    const newcomer = await register(t.app);
    assert.notEqual(newcomer.id, user.id);
    assert.ok(newcomer.id > user.id);
    const relogin = await post(t.app, '/auth/login', { email: user.email, password: user.password });
    assert.equal(relogin.statusCode, 401, relogin.body);
  });

  it("ASVS V3.5.3: a re-minted token of a deactivated user's session (fresh iat and UUIDv7 jti) stays revoked", async () => {
    // Needs the secret, so not an attacker's capability; it proves revocation holds for the whole session.
    const user = await signUp(t.app);
    const claims = decodeJson(segmentsOf(user.tokens.access_token)[1]);
    assert.equal((await send(t.app, 'PUT', '/users/me/deactivate', undefined, user.tokens.access_token)).statusCode, 200);
    const later = Date.now() + 1000;
    const jti = `${later
      .toString(16)
      .padStart(12, '0')
      .replace(/^(.{8})(.{4})$/, '$1-$2')}-7000-8000-${'0'.repeat(12)}`;
    assertRevoked(await bearer(t.app, hs(HS256_HEADER, { ...claims, jti, iat: Math.floor(later / 1000) }, t.settings.jwt.accessSecret)));
    assert.equal((await get(t.app, '/ping')).statusCode, 200);
  });
});
