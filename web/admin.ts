import type { AuditEvent, AuditPage, GatepassClient, User, UserPage } from '../src/client/index.js';
import { byId, formatTime, h } from './dom.js';
import { attempt, showStatus } from './feedback.js';

const ROLES = ['student', 'teacher', 'admin'] as const;

/** For admins: every user with a role switch, and the audit log. */
export class AdminView {
  private before: number | null = null;

  constructor(private readonly client: GatepassClient) {
    byId('audit-reload', HTMLButtonElement).addEventListener(
      'click',
      () => void attempt(() => this.loadAudit(), 'Could not load the audit log'),
    );
    byId('audit-more', HTMLButtonElement).addEventListener(
      'click',
      () => void attempt(() => this.loadAudit(true), 'Could not load the audit log'),
    );
  }

  async load(): Promise<void> {
    await Promise.all([this.loadUsers(), this.loadAudit()]);
  }

  clear(): void {
    this.tbody('users-table').replaceChildren();
    this.tbody('audit-table').replaceChildren();
  }

  private tbody(tableId: string): HTMLTableSectionElement {
    const body = byId(tableId, HTMLTableElement).tBodies[0];
    if (body === undefined) throw new Error(`#${tableId} has no tbody`);
    return body;
  }

  private async loadUsers(): Promise<void> {
    const page = await this.client.request<UserPage>('GET', '/admin/users?limit=100');
    this.tbody('users-table').replaceChildren(...page.items.map((user) => this.userRow(user)));
  }

  private userRow(user: User): HTMLTableRowElement {
    const selectId = `role-${user.id}`;
    const select = h(
      'select',
      {
        id: selectId,
        'aria-label': `Role of ${user.email}`,
        onchange: (event: Event) => {
          const role = (event.target as HTMLSelectElement).value;
          void attempt(async () => {
            await this.client.request<User>('PATCH', `/admin/users/${user.id}`, { role });
            showStatus(`${user.email} is now ${role}.`);
            await this.load();
          }, `Could not change the role of ${user.email}`).then(async (done) => {
            if (!done) await this.loadUsers().catch(() => undefined);
          });
        },
      },
      ...ROLES.map((role) => h('option', { value: role, selected: role === user.role }, role)),
    );
    return h(
      'tr',
      { 'data-user-id': user.id },
      h('td', {}, user.id),
      h('td', {}, user.email),
      h('td', {}, user.full_name ?? ''),
      h('td', {}, select),
      h('td', {}, user.is_active ? 'yes' : 'no'),
    );
  }

  private async loadAudit(more = false): Promise<void> {
    const query = new URLSearchParams({ limit: '25' });
    if (more && this.before !== null) query.set('before', String(this.before));
    const page = await this.client.request<AuditPage>('GET', `/admin/audit?${query.toString()}`);
    const rows = page.items.map((event) => this.auditRow(event));
    const body = this.tbody('audit-table');
    if (more) body.append(...rows);
    else body.replaceChildren(...rows);
    this.before = page.next_before;
    byId('audit-more', HTMLButtonElement).hidden = page.next_before === null;
  }

  private auditRow(event: AuditEvent): HTMLTableRowElement {
    const details = Object.keys(event.details).length === 0 ? '' : JSON.stringify(event.details);
    return h(
      'tr',
      {},
      h('td', { class: 'nowrap' }, formatTime(event.created_at)),
      h('td', {}, h('code', {}, event.event)),
      h('td', {}, event.user_id ?? '–'),
      h('td', {}, event.actor_id ?? ''),
      h('td', {}, event.ip ?? ''),
      h('td', { class: 'details' }, details),
    );
  }
}
