import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Backend, createTestApp, type TestApp } from '../helpers/app.js';
import { get, login, newCredentials, post, send, type Tokens, type UserBody } from '../helpers/client.js';
import { assertValidation } from '../helpers/responses.js';

/** The signed-in user (API.md /users/me): reading and updating one's own profile. */

export function defineProfileSuite(backend: Backend): void {
  describe(`the signed-in user (${backend})`, () => {
    let t: TestApp;
    let user: { email: string; password: string; id: number };
    let tokens: Tokens;
    let registered: UserBody;
    before(async () => {
      t = await createTestApp(backend);
      const credentials = newCredentials();
      const response = await post(t.app, '/auth/register', { ...credentials, full_name: 'Original Name' });
      assert.equal(response.statusCode, 201, response.body);
      registered = response.json<UserBody>();
      user = { ...credentials, id: registered.id };
      tokens = await login(t.app, user);
    });
    after(() => t.close());

    it('GET /users/me answers exactly the user object', async () => {
      const response = await get(t.app, '/users/me', tokens.access_token);
      assert.equal(response.statusCode, 200, response.body);
      assert.deepEqual(response.json(), {
        id: user.id,
        email: user.email,
        full_name: 'Original Name',
        role: 'student',
        is_active: true,
        email_verified: false,
        created_at: registered.created_at,
      });
      assert.doesNotMatch(response.body, /password|hash|\$argon2/i);
    });

    it('GET /users/me/status answers {email, is_active, message}', async () => {
      const response = await get(t.app, '/users/me/status', tokens.access_token);
      assert.equal(response.statusCode, 200, response.body);
      assert.deepEqual(response.json(), {
        email: user.email,
        is_active: true,
        message: `Hello ${user.email}! Your account is active.`,
      });
    });

    it('PATCH /users/me {"full_name"} answers the updated user, and the change persists', async () => {
      const response = await send(t.app, 'PATCH', '/users/me', { full_name: 'New Name' }, tokens.access_token);
      assert.equal(response.statusCode, 200, response.body);
      assert.deepEqual(response.json(), { ...registered, full_name: 'New Name' });
      const me = await get(t.app, '/users/me', tokens.access_token);
      assert.equal(me.json<UserBody>().full_name, 'New Name');
    });

    it('PATCH /users/me ignores role, is_active and email', async () => {
      const response = await send(
        t.app,
        'PATCH',
        '/users/me',
        { full_name: 'Still Student', role: 'admin', is_active: false, email: 'other@example.com' },
        tokens.access_token,
      );
      assert.ok(response.statusCode === 200 || response.statusCode === 422, response.body);
      const me = await get(t.app, '/users/me', tokens.access_token);
      assert.equal(me.statusCode, 200, me.body);
      const body = me.json<UserBody>();
      assert.equal(body.role, 'student');
      assert.equal(body.is_active, true);
      assert.equal(body.email, user.email);
    });

    it('PATCH /users/me {"full_name": 5} answers 422', async () => {
      const before = (await get(t.app, '/users/me', tokens.access_token)).json<UserBody>();
      assertValidation(await send(t.app, 'PATCH', '/users/me', { full_name: 5 }, tokens.access_token), {
        loc: ['body', 'full_name'],
      });
      assert.deepEqual((await get(t.app, '/users/me', tokens.access_token)).json(), before);
    });
  });
}
