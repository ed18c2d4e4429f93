import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestApp, type TestApp } from '../helpers/app.js';
import { assertError, claimsOf, get, post, signUp, type SignedUpUser, type Tokens } from '../helpers/client.js';
import { type Enrolment, enrol, mfaToken, nextCode, testClock, verify } from '../helpers/mfa.js';
import { INVALID_REFRESH, INVALID_TOKEN, assertAccepted, assertRejected, bearer, refresh } from './kit.js';

/**
 * The mfa_token of a two-factor login (API.md "Two-factor sign-in"): a single-purpose, short-lived
 * bearer of "the password was right", which must be worth nothing anywhere else (ASVS V2.8, V3.5;
 * RFC 8725 §2.8 cross-JWT confusion): not as an access token, not as a refresh token, not for
 * another account's code, not after it expired or was used.
 */

const INVALID_MFA_TOKEN = ['Invalid or expired MFA token', 'invalid_mfa_token'] as const;

describe('mfa_token misuse (HS256 server)', () => {
  let t: TestApp;
  const clock = testClock();
  let alice: SignedUpUser & Enrolment;
  let bob: SignedUpUser & Enrolment;
  before(async () => {
    t = await createTestApp('sqlite', {}, { now: clock.now });
    const enrolled = async () => {
      const user = await signUp(t.app);
      return { ...user, ...(await enrol(t.app, clock, user.tokens.access_token)) };
    };
    alice = await enrolled();
    bob = await enrolled();
  });
  after(() => t.close());

  it("control: the mfa_token with its own account's code signs in", async () => {
    const response = await verify(t.app, await mfaToken(t.app, alice), nextCode(clock, alice.secret));
    assert.equal(response.statusCode, 200, response.body);
    assertAccepted(await bearer(t.app, response.json<Tokens>().access_token), alice.id);
  });

  it('an mfa_token as a Bearer access token → 401 invalid_token, on every kind of route', async () => {
    const token = await mfaToken(t.app, alice);
    assertRejected(await bearer(t.app, token), INVALID_TOKEN);
    assertRejected(await bearer(t.app, token, '/tasks'), INVALID_TOKEN);
    assertRejected(await post(t.app, '/auth/mfa/totp/setup', undefined, token), INVALID_TOKEN);
    assertRejected(await post(t.app, '/auth/logout', {}, token), INVALID_TOKEN);
    // Still good for its own purpose afterwards: nothing above spent it.
    assert.equal((await verify(t.app, token, nextCode(clock, alice.secret))).statusCode, 200);
  });

  it('an mfa_token as a refresh token → 401 Invalid refresh token', async () => {
    const token = await mfaToken(t.app, alice);
    assertRejected(await refresh(t.app, token), INVALID_REFRESH);
  });

  it('tokens of other kinds as an mfa_token → 401 invalid_mfa_token', async () => {
    const tokens = alice.tokens;
    for (const other of [tokens.access_token, tokens.refresh_token, 'x', 'A'.repeat(43)]) {
      assertError(await verify(t.app, other, nextCode(clock, alice.secret)), 401, ...INVALID_MFA_TOKEN);
    }
  });

  it("account A's mfa_token with B's valid code → 400 invalid_code, no session for either; B's code stays unspent", async () => {
    const token = await mfaToken(t.app, alice);
    const bobsCode = nextCode(clock, bob.secret);
    const crossed = await verify(t.app, token, bobsCode);
    assertError(crossed, 400, 'Invalid two-factor code', 'invalid_code');
    // A's token survives one wrong code; B's code still works for B (it was not spent against A).
    assert.equal((await verify(t.app, await mfaToken(t.app, bob), bobsCode)).statusCode, 200);
    assert.equal((await verify(t.app, token, alice.recoveryCodes[0] ?? '')).statusCode, 200);
    // B's recovery code against A's token: refused too.
    assertError(
      await verify(t.app, await mfaToken(t.app, alice), bob.recoveryCodes[0] ?? ''),
      400,
      'Invalid two-factor code',
      'invalid_code',
    );
  });

  it('an expired mfa_token (past 5 minutes) → 401, whatever the code', async () => {
    const token = await mfaToken(t.app, alice);
    clock.advance(5 * 60_000);
    assertError(await verify(t.app, token, nextCode(clock, alice.secret)), 401, ...INVALID_MFA_TOKEN);
  });

  it('an mfa_token replayed after its success → 401, with a new valid code or a recovery code', async () => {
    const token = await mfaToken(t.app, alice);
    const first = await verify(t.app, token, nextCode(clock, alice.secret));
    assert.equal(first.statusCode, 200, first.body);
    assertError(await verify(t.app, token, nextCode(clock, alice.secret)), 401, ...INVALID_MFA_TOKEN);
    assertError(await verify(t.app, token, alice.recoveryCodes[1] ?? ''), 401, ...INVALID_MFA_TOKEN);
    // The refused replay did not spend the recovery code.
    assert.equal((await verify(t.app, await mfaToken(t.app, alice), alice.recoveryCodes[1] ?? '')).statusCode, 200);
  });

  it('the access tokens of a two-factor session say so (amr), and an mfa_token carries no claims at all', async () => {
    const token = await mfaToken(t.app, alice);
    assert.equal(token.split('.').length, 1, 'opaque, not a JWT');
    const response = await verify(t.app, token, nextCode(clock, alice.secret));
    const tokens = response.json<Tokens>();
    assert.deepEqual(claimsOf(tokens.access_token).amr, ['pwd', 'otp']);
    assert.equal((await get(t.app, '/users/me', tokens.access_token)).statusCode, 200);
  });
});
