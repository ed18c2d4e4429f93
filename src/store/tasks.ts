import type { Kysely } from 'kysely';
import type { Database, TaskRow } from './schema.js';

export interface Task {
  id: number;
  userId: number;
  title: string;
  description: string | null;
  done: boolean;
  createdAt: number;
  updatedAt: number;
}

/** A task was written for a user id that names no user (its row is gone). */
export class TaskOwnerMissingError extends Error {
  constructor(readonly userId: number) {
    super(`no user ${userId} to own the task`);
    this.name = 'TaskOwnerMissingError';
  }
}

function isForeignKeyViolation(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23503' || code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}

function toTask(row: TaskRow): Task {
  return {
    id: row.id,
    userId: row.user_id,
    title: row.title,
    description: row.description,
    done: Boolean(row.done),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Every query is scoped by owner: another user's task is indistinguishable from a missing one. */
export class TaskRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async list(userId: number, page: { limit: number; offset: number }): Promise<{ items: Task[]; total: number }> {
    const [rows, count] = await Promise.all([
      this.db.selectFrom('tasks').selectAll().where('user_id', '=', userId).orderBy('id').limit(page.limit).offset(page.offset).execute(),
      this.db
        .selectFrom('tasks')
        .select((eb) => eb.fn.countAll<number | string>().as('total'))
        .where('user_id', '=', userId)
        .executeTakeFirstOrThrow(),
    ]);
    return { items: rows.map(toTask), total: Number(count.total) };
  }

  /** Every task of a user (for the data export). */
  async all(userId: number): Promise<Task[]> {
    const rows = await this.db.selectFrom('tasks').selectAll().where('user_id', '=', userId).orderBy('id').execute();
    return rows.map(toTask);
  }

  async create(userId: number, input: { title: string; description: string | null; done: boolean }, now: number): Promise<Task> {
    try {
      return await this.insert(userId, input, now);
    } catch (error) {
      if (isForeignKeyViolation(error)) throw new TaskOwnerMissingError(userId);
      throw error;
    }
  }

  private async insert(userId: number, input: { title: string; description: string | null; done: boolean }, now: number): Promise<Task> {
    const row = await this.db
      .insertInto('tasks')
      .values({
        user_id: userId,
        title: input.title,
        description: input.description,
        done: input.done ? 1 : 0,
        created_at: now,
        updated_at: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return toTask(row);
  }

  async find(userId: number, id: number): Promise<Task | undefined> {
    const row = await this.db.selectFrom('tasks').selectAll().where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
    return row && toTask(row);
  }

  async update(
    userId: number,
    id: number,
    changes: { title?: string; description?: string | null; done?: boolean },
    now: number,
  ): Promise<Task | undefined> {
    const row = await this.db
      .updateTable('tasks')
      .set({
        ...(changes.title !== undefined && { title: changes.title }),
        ...(changes.description !== undefined && { description: changes.description }),
        ...(changes.done !== undefined && { done: changes.done ? 1 : 0 }),
        updated_at: now,
      })
      .where('id', '=', id)
      .where('user_id', '=', userId)
      .returningAll()
      .executeTakeFirst();
    return row && toTask(row);
  }

  async delete(userId: number, id: number): Promise<boolean> {
    const result = await this.db.deleteFrom('tasks').where('id', '=', id).where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}
