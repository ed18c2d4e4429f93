import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Backend, createTestApp, type TestApp } from '../helpers/app.js';
import { assertError, claimsOf, get, ISO_UTC, login, newCredentials, post, USER_KEYS, type UserBody } from '../helpers/client.js';
import { assertValidation } from '../helpers/responses.js';

/** POST /auth/register (API.md): the user it answers, and the email and password rules. */

function assertUserShape(body: UserBody): void {
  assert.deepEqual(Object.keys(body).sort(), USER_KEYS);
  assert.equal(typeof body.id, 'number');
  assert.ok(Number.isInteger(body.id) && body.id > 0);
  assert.match(body.created_at, ISO_UTC);
}

/** A password of exactly `length` characters that is not on any common-password list. */
function passwordOfLength(length: number): string {
  return 'Zq7!vR2#kP9m'.repeat(Math.ceil(length / 12)).slice(0, length);
}

export function defineRegistrationSuite(backend: Backend): void {
  describe(`registration (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    it('POST /auth/register answers 201 with the user object and no password or hash', async () => {
      const credentials = newCredentials();
      const response = await post(t.app, '/auth/register', { ...credentials, full_name: 'Reg Istered' });
      assert.equal(response.statusCode, 201, response.body);
      const user = response.json<UserBody>();
      assertUserShape(user);
      assert.equal(user.email, credentials.email);
      assert.equal(user.full_name, 'Reg Istered');
      assert.equal(user.role, 'student');
      assert.equal(user.is_active, true);
      assert.ok(Math.abs(Date.parse(user.created_at) - Date.now()) < 60_000, user.created_at);
      assert.ok(!response.body.includes(credentials.password), 'the password is in the response');
      assert.doesNotMatch(response.body, /\$argon2|\$2[aby]\$|password|hash/i);
    });

    it('full_name is optional and null by default', async () => {
      const response = await post(t.app, '/auth/register', newCredentials());
      assert.equal(response.statusCode, 201, response.body);
      assert.equal(response.json<UserBody>().full_name, null);
    });

    it('the alias POST /register works the same', async () => {
      const credentials = newCredentials();
      const response = await post(t.app, '/register', credentials);
      assert.equal(response.statusCode, 201, response.body);
      const user = response.json<UserBody>();
      assertUserShape(user);
      assert.equal(user.email, credentials.email);
      assert.equal(user.role, 'student');
      assert.equal(user.is_active, true);
      // One user store: the same email on the canonical route is taken.
      assertError(await post(t.app, '/auth/register', credentials), 409, 'Email already registered', 'email_taken');
    });

    it('normalises the email, and a differently-cased duplicate answers 409 email_taken', async () => {
      const password = passwordOfLength(16);
      const response = await post(t.app, '/auth/register', { email: '  Alice@Example.COM ', password });
      assert.equal(response.statusCode, 201, response.body);
      assert.equal(response.json<UserBody>().email, 'alice@example.com');
      const again = await post(t.app, '/auth/register', { email: 'ALICE@example.com', password: passwordOfLength(20) });
      assert.equal(again.statusCode, 409, again.body);
      assert.deepEqual(again.json(), { detail: 'Email already registered', code: 'email_taken' });
      // The stored (normalised) email is what /users/me shows, and login works in any case.
      const tokens = await login(t.app, { email: 'alice@EXAMPLE.com', password });
      const me = await get(t.app, '/users/me', tokens.access_token);
      assert.equal(me.json<UserBody>().email, 'alice@example.com');
    });

    it('a role or is_active in the body never takes effect', async () => {
      const credentials = newCredentials();
      const response = await post(t.app, '/auth/register', { ...credentials, role: 'admin', is_active: false });
      assert.equal(response.statusCode, 201, response.body);
      const user = response.json<UserBody>();
      assert.equal(user.role, 'student');
      assert.equal(user.is_active, true);
      const tokens = await login(t.app, credentials);
      assert.equal(claimsOf(tokens.access_token).role, 'student');
      const me = await get(t.app, '/users/me', tokens.access_token);
      assert.equal(me.statusCode, 200, me.body);
      assert.equal(me.json<UserBody>().role, 'student');
      assert.equal(me.json<UserBody>().is_active, true);
    });

    it('an invalid email answers 422 at loc ["body","email"]', async () => {
      for (const email of ['not-an-email', 'a@', '@example.com', 'a b@example.com', '']) {
        const response = await post(t.app, '/auth/register', { email, password: passwordOfLength(16) });
        assertValidation(response, { loc: ['body', 'email'] });
      }
    });

    it('a password of 7 characters answers 422 string_too_short', async () => {
      const response = await post(t.app, '/auth/register', { email: newCredentials().email, password: passwordOfLength(7) });
      assertValidation(response, { loc: ['body', 'password'], type: 'string_too_short' });
    });

    it('a password of 129 characters answers 422 string_too_long', async () => {
      const response = await post(t.app, '/auth/register', { email: newCredentials().email, password: passwordOfLength(129) });
      assertValidation(response, { loc: ['body', 'password'], type: 'string_too_long' });
    });

    it('a very common password answers 422 at loc ["body","password"]', async () => {
      for (const password of ['password123', 'Password123', 'qwertyuiop']) {
        const response = await post(t.app, '/auth/register', { email: newCredentials().email, password });
        assertValidation(response, { loc: ['body', 'password'] });
      }
    });

    it('a missing field answers 422 with loc ["body","password"] and type missing', async () => {
      const response = await post(t.app, '/auth/register', { email: newCredentials().email });
      assertValidation(response, { loc: ['body', 'password'], type: 'missing' });
      const noEmail = await post(t.app, '/auth/register', { password: passwordOfLength(16) });
      assertValidation(noEmail, { loc: ['body', 'email'], type: 'missing' });
    });

    it('a rejected registration creates no account', async () => {
      const credentials = newCredentials();
      assertValidation(await post(t.app, '/auth/register', { email: credentials.email, password: 'password123' }));
      // The email is still free.
      assert.equal((await post(t.app, '/auth/register', credentials)).statusCode, 201);
    });

    it('a password of exactly 128 characters is accepted, and logs in', async () => {
      const credentials = { email: newCredentials().email, password: passwordOfLength(128) };
      assert.equal(credentials.password.length, 128);
      const response = await post(t.app, '/auth/register', credentials);
      assert.equal(response.statusCode, 201, response.body);
      await login(t.app, credentials);
    });
  });
}
