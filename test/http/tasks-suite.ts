import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Backend, createTestApp, type TestApp } from '../helpers/app.js';
import { get, ISO_UTC, post, send, signUp, type Tokens } from '../helpers/client.js';
import { assertNotAuthenticated, assertValidation } from '../helpers/responses.js';

/** Tasks (API.md /tasks): each user's own list, create, read, update and delete, paging and validation. */

const TASK_KEYS = ['created_at', 'description', 'done', 'id', 'title', 'updated_at'];

interface TaskBody {
  id: number;
  title: string;
  description: string | null;
  done: boolean;
  created_at: string;
  updated_at: string;
}

function assertTaskShape(body: TaskBody): void {
  assert.deepEqual(Object.keys(body).sort(), TASK_KEYS);
  assert.ok(Number.isInteger(body.id) && body.id > 0);
  assert.match(body.created_at, ISO_UTC);
  assert.match(body.updated_at, ISO_UTC);
}

export function defineTasksSuite(backend: Backend): void {
  describe(`tasks (${backend})`, () => {
    let t: TestApp;
    let alice: { id: number; tokens: Tokens };
    let bob: { id: number; tokens: Tokens };
    const aliceTasks: TaskBody[] = [];
    let bobTask: TaskBody;
    before(async () => {
      t = await createTestApp(backend);
      alice = await signUp(t.app);
      bob = await signUp(t.app);
    });
    after(() => t.close());

    it('POST /tasks answers 201 with the task; description null and done false by default', async () => {
      const response = await post(t.app, '/tasks', { title: 'First' }, alice.tokens.access_token);
      assert.equal(response.statusCode, 201, response.body);
      const task = response.json<TaskBody>();
      assertTaskShape(task);
      assert.equal(task.title, 'First');
      assert.equal(task.description, null);
      assert.equal(task.done, false);
      assert.equal(task.updated_at, task.created_at);
      assert.ok(Math.abs(Date.parse(task.created_at) - Date.now()) < 60_000);
      aliceTasks.push(task);

      const full = await post(t.app, '/tasks', { title: 'Second', description: 'with text', done: true }, alice.tokens.access_token);
      assert.equal(full.statusCode, 201, full.body);
      const second = full.json<TaskBody>();
      assertTaskShape(second);
      assert.deepEqual(
        { title: second.title, description: second.description, done: second.done },
        { title: 'Second', description: 'with text', done: true },
      );
      assert.notEqual(second.id, task.id);
      aliceTasks.push(second);

      const third = await post(t.app, '/tasks', { title: 'Third' }, alice.tokens.access_token);
      assert.equal(third.statusCode, 201, third.body);
      aliceTasks.push(third.json<TaskBody>());

      const bobs = await post(t.app, '/tasks', { title: "Bob's secret" }, bob.tokens.access_token);
      assert.equal(bobs.statusCode, 201, bobs.body);
      bobTask = bobs.json<TaskBody>();
    });

    it("GET /tasks lists only the caller's tasks, in creation order, with X-Total-Count", async () => {
      const response = await get(t.app, '/tasks', alice.tokens.access_token);
      assert.equal(response.statusCode, 200, response.body);
      assert.deepEqual(response.json(), aliceTasks);
      assert.equal(response.headers['x-total-count'], '3');
      assert.ok(!response.body.includes("Bob's secret"));

      const bobs = await get(t.app, '/tasks', bob.tokens.access_token);
      assert.equal(bobs.statusCode, 200, bobs.body);
      assert.deepEqual(bobs.json(), [bobTask]);
      assert.equal(bobs.headers['x-total-count'], '1');
    });

    it('GET /tasks?limit=1&offset=1 paginates; X-Total-Count stays the total', async () => {
      const response = await get(t.app, '/tasks?limit=1&offset=1', alice.tokens.access_token);
      assert.equal(response.statusCode, 200, response.body);
      assert.deepEqual(response.json(), [aliceTasks[1]]);
      assert.equal(response.headers['x-total-count'], '3');
      const rest = await get(t.app, '/tasks?limit=2&offset=1', alice.tokens.access_token);
      assert.deepEqual(rest.json(), aliceTasks.slice(1));
      const beyond = await get(t.app, '/tasks?offset=10', alice.tokens.access_token);
      assert.equal(beyond.statusCode, 200);
      assert.deepEqual(beyond.json(), []);
      assert.equal(beyond.headers['x-total-count'], '3');
    });

    it('limit=0, limit=abc and a negative offset answer 422', async () => {
      assertValidation(await get(t.app, '/tasks?limit=0', alice.tokens.access_token), { loc: ['query', 'limit'] });
      assertValidation(await get(t.app, '/tasks?limit=abc', alice.tokens.access_token), { loc: ['query', 'limit'] });
      assertValidation(await get(t.app, '/tasks?offset=-1', alice.tokens.access_token), { loc: ['query', 'offset'] });
    });

    it('GET /tasks/{id} answers the owner the task', async () => {
      const task = aliceTasks[0];
      assert.ok(task !== undefined);
      const response = await get(t.app, `/tasks/${task.id}`, alice.tokens.access_token);
      assert.equal(response.statusCode, 200, response.body);
      assert.deepEqual(response.json(), task);
    });

    it('PATCH /tasks/{id} {"done":true} updates only what it names', async () => {
      const task = aliceTasks[0];
      assert.ok(task !== undefined);
      const response = await send(t.app, 'PATCH', `/tasks/${task.id}`, { done: true }, alice.tokens.access_token);
      assert.equal(response.statusCode, 200, response.body);
      const updated = response.json<TaskBody>();
      assertTaskShape(updated);
      assert.deepEqual({ ...updated, updated_at: task.updated_at }, { ...task, done: true });
      assert.ok(Date.parse(updated.updated_at) >= Date.parse(task.updated_at));
      assert.deepEqual((await get(t.app, `/tasks/${task.id}`, alice.tokens.access_token)).json(), updated);
      aliceTasks[0] = updated;

      const renamed = await send(
        t.app,
        'PATCH',
        `/tasks/${task.id}`,
        { title: 'Renamed', description: 'now described' },
        alice.tokens.access_token,
      );
      assert.equal(renamed.statusCode, 200, renamed.body);
      const body = renamed.json<TaskBody>();
      assert.deepEqual(
        { title: body.title, description: body.description, done: body.done },
        { title: 'Renamed', description: 'now described', done: true },
      );
      aliceTasks[0] = body;
    });

    it("another user's task answers 404 Task not found for GET, PATCH and DELETE, and stays unchanged", async () => {
      const task = aliceTasks[1];
      assert.ok(task !== undefined);
      const notFound = { detail: 'Task not found', code: 'not_found' };
      const read = await get(t.app, `/tasks/${task.id}`, bob.tokens.access_token);
      assert.equal(read.statusCode, 404, read.body);
      assert.deepEqual(read.json(), notFound);
      const change = await send(t.app, 'PATCH', `/tasks/${task.id}`, { title: 'hijacked', done: false }, bob.tokens.access_token);
      assert.equal(change.statusCode, 404, change.body);
      assert.deepEqual(change.json(), notFound);
      const remove = await send(t.app, 'DELETE', `/tasks/${task.id}`, undefined, bob.tokens.access_token);
      assert.equal(remove.statusCode, 404, remove.body);
      assert.deepEqual(remove.json(), notFound);
      // Nothing of the task leaked, and nothing changed.
      for (const response of [read, change, remove]) assert.ok(!response.body.includes(task.title));
      const after = await get(t.app, `/tasks/${task.id}`, alice.tokens.access_token);
      assert.equal(after.statusCode, 200, after.body);
      assert.deepEqual(after.json(), task);
    });

    it('a task id that does not exist answers 404 Task not found', async () => {
      const response = await get(t.app, '/tasks/999999', alice.tokens.access_token);
      assert.equal(response.statusCode, 404, response.body);
      assert.deepEqual(response.json(), { detail: 'Task not found', code: 'not_found' });
    });

    it('DELETE /tasks/{id} answers 204, then GET answers 404', async () => {
      const task = aliceTasks[2];
      assert.ok(task !== undefined);
      const response = await send(t.app, 'DELETE', `/tasks/${task.id}`, undefined, alice.tokens.access_token);
      assert.equal(response.statusCode, 204, response.body);
      assert.equal(response.body, '');
      const gone = await get(t.app, `/tasks/${task.id}`, alice.tokens.access_token);
      assert.equal(gone.statusCode, 404, gone.body);
      assert.deepEqual(gone.json(), { detail: 'Task not found', code: 'not_found' });
      const again = await send(t.app, 'DELETE', `/tasks/${task.id}`, undefined, alice.tokens.access_token);
      assert.equal(again.statusCode, 404, again.body);
      aliceTasks.pop();
      const list = await get(t.app, '/tasks', alice.tokens.access_token);
      assert.deepEqual(list.json(), aliceTasks);
      assert.equal(list.headers['x-total-count'], String(aliceTasks.length));
    });

    it('/tasks/abc answers 422 for GET, PATCH and DELETE', async () => {
      for (const method of ['GET', 'PATCH', 'DELETE'] as const) {
        const response = await send(
          t.app,
          method,
          '/tasks/abc',
          method === 'PATCH' ? { done: true } : undefined,
          alice.tokens.access_token,
        );
        assertValidation(response, { loc: ['path', 'id'] });
      }
    });

    it('a non-string title answers 422, not a coerced string', async () => {
      const response = await post(t.app, '/tasks', { title: 5 }, alice.tokens.access_token);
      // Should the server accept it, remove the task again so that the later tests see the expected list.
      if (response.statusCode === 201)
        await send(t.app, 'DELETE', `/tasks/${response.json<TaskBody>().id}`, undefined, alice.tokens.access_token);
      assertValidation(response, { loc: ['body', 'title'] });
    });

    it('an empty or missing title answers 422', async () => {
      assertValidation(await post(t.app, '/tasks', { title: '' }, alice.tokens.access_token), { loc: ['body', 'title'] });
      assertValidation(await post(t.app, '/tasks', { description: 'no title' }, alice.tokens.access_token), {
        loc: ['body', 'title'],
        type: 'missing',
      });
      const task = aliceTasks[0];
      assert.ok(task !== undefined);
      assertValidation(await send(t.app, 'PATCH', `/tasks/${task.id}`, { title: '' }, alice.tokens.access_token), {
        loc: ['body', 'title'],
      });
      // Nothing was created by the refused requests.
      const list = await get(t.app, '/tasks', alice.tokens.access_token);
      assert.equal(list.headers['x-total-count'], String(aliceTasks.length));
    });

    it('without a token every task route answers 401 Not authenticated', async () => {
      const task = aliceTasks[0];
      assert.ok(task !== undefined);
      assertNotAuthenticated(await get(t.app, '/tasks'));
      assertNotAuthenticated(await post(t.app, '/tasks', { title: 'anonymous' }));
      assertNotAuthenticated(await get(t.app, `/tasks/${task.id}`));
      assertNotAuthenticated(await send(t.app, 'PATCH', `/tasks/${task.id}`, { done: false }));
      assertNotAuthenticated(await send(t.app, 'DELETE', `/tasks/${task.id}`));
      assert.equal((await get(t.app, `/tasks/${task.id}`, alice.tokens.access_token)).statusCode, 200);
    });

    it('a JSON body with text/plain on POST /tasks answers 415, not 500', async () => {
      const response = await t.app.inject({
        method: 'POST',
        url: '/tasks',
        payload: '{"title":"plain"}',
        headers: { 'content-type': 'text/plain', authorization: `Bearer ${alice.tokens.access_token}` },
      });
      assert.equal(response.statusCode, 415, response.body);
      assert.equal(response.json<{ code: string }>().code, 'unsupported_media_type');
    });
  });
}
