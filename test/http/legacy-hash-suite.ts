import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openDatabase, type DatabaseHandle } from '../../src/store/database.js';
import { createTestApp, type Backend, type TestApp } from '../helpers/app.js';
import { assertError, get, post, type Tokens } from '../helpers/client.js';

/**
 * Hashes written by the seeds' passlib `CryptContext(schemes=["bcrypt"])` (Debian python3-passlib
 * 1.7.4 with python3-bcrypt), as a FastAPI deployment would hand them over in a users export.
 */
const PASSLIB_HASHES = [
  { password: 'SecurePass123!', hash: '$2b$12$YsB7/dpJWVKBVw9yJji5n..99ppA5.B1N90u31CCKwycAhV3YYfBG' },
  { password: 'Caf\u00e9-legacy-pass', hash: '$2b$12$W5B4B8IE4XLXDnJ4JFk6D.4kkyutWJ3owB.7kiMeT0lTR6LbXsR8C' },
];

export function defineLegacyHashSuite(backend: Backend): void {
  describe(`legacy bcrypt hashes (${backend})`, () => {
    let t: TestApp;
    let database: DatabaseHandle;
    let n = 0;

    before(async () => {
      t = await createTestApp(backend);
      database = openDatabase(t.databaseUrl, t.cwd);
    });
    after(async () => {
      await database.close();
      await t.close();
    });

    async function importUser(hash: string): Promise<string> {
      n += 1;
      const email = `imported${n}@example.com`;
      await database.db
        .insertInto('users')
        .values({
          email,
          email_key: email,
          password_hash: hash,
          full_name: 'Imported',
          is_active: 1,
          created_at: Date.now(),
          updated_at: Date.now(),
        })
        .execute();
      return email;
    }

    async function storedHash(email: string): Promise<string> {
      const row = await database.db.selectFrom('users').select('password_hash').where('email', '=', email).executeTakeFirstOrThrow();
      return row.password_hash;
    }

    for (const [index, fixture] of PASSLIB_HASHES.entries()) {
      it(`logs in with a passlib hash and upgrades it to argon2id (fixture ${index + 1})`, async () => {
        const email = await importUser(fixture.hash);
        const response = await post(t.app, '/auth/login', { email, password: fixture.password });
        assert.equal(response.statusCode, 200, response.body);
        const upgraded = await storedHash(email);
        assert.match(upgraded, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
        // The upgraded hash verifies the same password, through both login forms.
        const again = await post(t.app, '/auth/login', { email, password: fixture.password });
        assert.equal(again.statusCode, 200, again.body);
        assert.equal((await get(t.app, '/users/me', again.json<Tokens>().access_token)).json<{ email: string }>().email, email);
        assert.equal(await storedHash(email), upgraded, 'an up-to-date hash is not rewritten');
      });
    }

    it('a wrong password against a bcrypt hash fails and leaves the hash alone', async () => {
      const fixture = PASSLIB_HASHES[0]!;
      const email = await importUser(fixture.hash);
      assertError(
        await post(t.app, '/auth/login', { email, password: 'SecurePass123?' }),
        401,
        'Incorrect email or password',
        'invalid_credentials',
      );
      assert.equal(await storedHash(email), fixture.hash);
    });

    it('accepts the $2a$ and $2y$ spellings of the same hash', async () => {
      const fixture = PASSLIB_HASHES[0]!;
      for (const prefix of ['$2a$', '$2y$']) {
        const email = await importUser(prefix + fixture.hash.slice(4));
        const response = await post(t.app, '/auth/login', { email, password: fixture.password });
        assert.equal(response.statusCode, 200, `${prefix}: ${response.body}`);
        assert.match(await storedHash(email), /^\$argon2id\$/);
      }
    });

    it('an unrecognised stored hash never logs in', async () => {
      const email = await importUser('plaintext-password');
      assertError(
        await post(t.app, '/auth/login', { email, password: 'plaintext-password' }),
        401,
        'Incorrect email or password',
        'invalid_credentials',
      );
    });
  });
}
