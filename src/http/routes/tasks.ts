import { Type } from '@sinclair/typebox';
import { GatepassError } from '../../errors.js';
import { authOf } from '../auth-guard.js';
import { BEARER_SECURITY, TaskOut, errorResponses, taskOut, refTo } from '../schemas.js';
import type { RoutePlugin, TaskServices } from '../types.js';

const Title = Type.String({ minLength: 1, maxLength: 200 });
const Description = Type.Union([Type.String({ maxLength: 10_000 }), Type.Null()]);
const TaskId = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }) });
const TASK_NOT_FOUND = 'Task not found';
const schemaBase = { tags: ['tasks'], security: BEARER_SECURITY };

const listSchema = {
  ...schemaBase,
  summary: 'Your tasks, oldest first',
  description: 'The total count is in the `X-Total-Count` header.',
  querystring: Type.Object({
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
    offset: Type.Integer({ minimum: 0, maximum: 1_000_000_000, default: 0 }),
  }),
  response: { 200: Type.Array(refTo(TaskOut)), ...errorResponses(401, 422) },
};

const createSchema = {
  ...schemaBase,
  summary: 'Create a task',
  body: Type.Object({ title: Title, description: Type.Optional(Description), done: Type.Optional(Type.Boolean()) }),
  response: { 201: refTo(TaskOut), ...errorResponses(401, 413, 415, 422) },
};

const readSchema = {
  ...schemaBase,
  summary: 'One of your tasks',
  params: TaskId,
  response: { 200: refTo(TaskOut), ...errorResponses(401, 404, 422) },
};

const updateSchema = {
  ...schemaBase,
  summary: 'Change one of your tasks',
  params: TaskId,
  body: Type.Object({ title: Type.Optional(Title), description: Type.Optional(Description), done: Type.Optional(Type.Boolean()) }),
  response: { 200: refTo(TaskOut), ...errorResponses(401, 404, 413, 415, 422) },
};

const deleteSchema = {
  ...schemaBase,
  summary: 'Delete one of your tasks',
  params: TaskId,
  response: { 204: Type.Null(), ...errorResponses(401, 404, 422) },
};

/** The seeds' per-user resource. Another user's task answers 404, exactly like a missing one. */
export const taskRoutes: RoutePlugin<TaskServices> = async (app, { tasks, guards, now }) => {
  const read = guards.requirePermission('tasks:read');
  const write = guards.requirePermission('tasks:write');

  app.get('/tasks', { onRequest: read, schema: listSchema }, async (request, reply) => {
    const page = await tasks.list(authOf(request).userId, request.query);
    reply.header('X-Total-Count', String(page.total));
    return page.items.map(taskOut);
  });

  app.post('/tasks', { onRequest: write, schema: createSchema }, async (request, reply) => {
    const { title, description = null, done = false } = request.body;
    const task = await tasks.create(authOf(request).userId, { title, description, done }, now());
    return reply.code(201).send(taskOut(task));
  });

  app.get('/tasks/:id', { onRequest: read, schema: readSchema }, async (request) => {
    const task = await tasks.find(authOf(request).userId, request.params.id);
    if (task === undefined) throw new GatepassError('not_found', TASK_NOT_FOUND);
    return taskOut(task);
  });

  app.patch('/tasks/:id', { onRequest: write, schema: updateSchema }, async (request) => {
    const task = await tasks.update(authOf(request).userId, request.params.id, request.body, now());
    if (task === undefined) throw new GatepassError('not_found', TASK_NOT_FOUND);
    return taskOut(task);
  });

  app.delete('/tasks/:id', { onRequest: write, schema: deleteSchema }, async (request, reply) => {
    if (!(await tasks.delete(authOf(request).userId, request.params.id))) throw new GatepassError('not_found', TASK_NOT_FOUND);
    return reply.code(204).send(null);
  });
};
