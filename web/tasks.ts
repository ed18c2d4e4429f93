import type { GatepassClient, Task } from '../src/client/index.js';
import { byId, h } from './dom.js';
import { attempt, showStatus } from './feedback.js';

/** The seeds' per-user resource: add, tick off and delete your own tasks. */
export class TasksView {
  constructor(private readonly client: GatepassClient) {
    byId('task-form', HTMLFormElement).addEventListener('submit', (event) => {
      event.preventDefault();
      void this.add();
    });
  }

  async load(): Promise<void> {
    this.render(await this.client.request<Task[]>('GET', '/tasks?limit=100'));
  }

  clear(): void {
    byId('task-list', HTMLUListElement).replaceChildren();
  }

  private async add(): Promise<void> {
    const input = byId('task-title', HTMLInputElement);
    const title = input.value.trim();
    await attempt(async () => {
      const task = await this.client.request<Task>('POST', '/tasks', { title });
      input.value = '';
      showStatus(`Task “${task.title}” added.`);
      await this.load();
    }, 'Could not add the task');
    input.focus();
  }

  private render(tasks: Task[]): void {
    const list = byId('task-list', HTMLUListElement);
    list.replaceChildren(
      ...tasks.map((task) => {
        const checkboxId = `task-${task.id}`;
        return h(
          'li',
          { class: task.done ? 'task done' : 'task', 'data-task-id': task.id },
          h('input', {
            type: 'checkbox',
            id: checkboxId,
            checked: task.done,
            onchange: (event: Event) => {
              const done = (event.target as HTMLInputElement).checked;
              void attempt(async () => {
                await this.client.request<Task>('PATCH', `/tasks/${task.id}`, { done });
                showStatus(`“${task.title}” marked ${done ? 'done' : 'not done'}.`);
                await this.load();
              }, 'Could not update the task');
            },
          }),
          h('label', { for: checkboxId }, task.title),
          h(
            'button',
            {
              type: 'button',
              class: 'secondary small',
              'aria-label': `Delete task ${task.title}`,
              onclick: () => {
                void attempt(async () => {
                  await this.client.request<undefined>('DELETE', `/tasks/${task.id}`);
                  showStatus(`“${task.title}” deleted.`);
                  await this.load();
                }, 'Could not delete the task');
              },
            },
            'Delete',
          ),
        );
      }),
    );
    byId('tasks-empty', HTMLParagraphElement).hidden = tasks.length > 0;
  }
}
