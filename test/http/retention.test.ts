import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createTestApp, describePostgres, type Backend, type TestApp } from '../helpers/app.js';
import { assertError, login, post, signUp } from '../helpers/client.js';
import { waitFor } from '../helpers/instances.js';

/**
 * The retention sweep (store/retention.ts): expired revocations, refresh-token records and reset
 * tokens are deleted, on a controlled clock, and no answer of the API changes because of it.
 */
function defineRetentionSuite(backend: Backend): void {
  let t: TestApp;
  let clock = Date.now();

  before(async () => {
    t = await createTestApp(backend, {}, { now: () => clock });
  });
  after(() => t.close());

  const rows = async (table: 'revocations' | 'refresh_tokens' | 'password_reset_tokens' | 'email_verification_tokens') => {
    const { db } = t.app.gatepass.database;
    const row = await db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    return Number(row.n);
  };

  it('deletes only what has expired, and the answers stay the same', async () => {
    const user = await signUp(t.app);
    const first = user.tokens;
    assert.equal((await post(t.app, '/auth/logout', {}, first.access_token)).statusCode, 204);
    const kept = await login(t.app, user);
    assert.equal((await post(t.app, '/auth/password/forgot', { email: user.email })).statusCode, 202);
    await waitFor('the reset token to be stored', async () => (await rows('password_reset_tokens')) === 1, 5000);
    await waitFor(
      'the verification token of the registration to be stored',
      async () => (await rows('email_verification_tokens')) === 1,
      5000,
    );
    const counts = { revocations: await rows('revocations'), refreshTokens: await rows('refresh_tokens') };
    assert.equal(counts.revocations, 1, 'the logout stored one revocation');
    assert.equal(counts.refreshTokens, 2, 'one refresh-token record per login');

    assert.deepEqual(
      await t.app.gatepass.retention.sweep(),
      { revocations: 0, refreshTokens: 0, passwordResetTokens: 0, emailVerificationTokens: 0, mfaChallenges: 0, oauthFlows: 0 },
      'nothing has expired yet',
    );

    // Past every expiry (refresh tokens: 7 days), plus the hour rows are kept after it.
    clock += (7 * 24 * 3600 + 3600 + 60) * 1000;
    const fresh = await login(t.app, user);
    assert.deepEqual(await t.app.gatepass.retention.sweep(), {
      revocations: 1,
      refreshTokens: 2,
      passwordResetTokens: 1,
      emailVerificationTokens: 1,
      mfaChallenges: 0,
      oauthFlows: 0,
    });
    assert.equal(await rows('revocations'), 0);
    assert.equal(await rows('refresh_tokens'), 1, 'the record of the login after the jump is kept');
    assert.equal(await rows('password_reset_tokens'), 0);
    assert.equal(await rows('email_verification_tokens'), 0);

    for (const expired of [first.refresh_token, kept.refresh_token]) {
      assertError(
        await post(t.app, '/auth/refresh', { refresh_token: expired }),
        401,
        'Refresh token has expired. Please log in again.',
        'token_expired',
      );
    }
    assert.equal((await post(t.app, '/auth/refresh', { refresh_token: fresh.refresh_token })).statusCode, 200);
  });
}

describe('retention sweep (sqlite)', () => defineRetentionSuite('sqlite'));
describePostgres('retention sweep', () => defineRetentionSuite('postgres'));
