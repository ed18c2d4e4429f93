import type { Kysely } from 'kysely';
import { GatepassError } from '../errors.js';
import type { ClientInfo } from '../audit/audit-log.js';
import type { SessionService } from '../sessions/session-service.js';
import type { Database } from '../store/schema.js';
import { UserRepository, type User } from '../store/users.js';
import { ACCESS_TOKEN_DETAILS } from '../tokens/failures.js';
import type { Clock } from '../tokens/token-service.js';
import type { AccountService } from './account-service.js';
import { keepAnActiveAdmin, roleWithin } from './admin-invariants.js';
import type { Role, RolePermissions } from '../tokens/roles.js';

const USER_NOT_FOUND = 'User not found';

/** What administrators do to other accounts. Every change is audited with the admin as actor. */
export class AdminService {
  private readonly users: UserRepository;

  constructor(
    db: Kysely<Database>,
    private readonly accounts: AccountService,
    private readonly sessions: SessionService,
    private readonly rolePermissions: RolePermissions,
    private readonly now: Clock = Date.now,
  ) {
    this.users = new UserRepository(db);
  }

  listUsers(filter: {
    email?: string;
    role?: string;
    emailVerified?: boolean;
    limit: number;
    offset: number;
  }): Promise<{ items: User[]; total: number }> {
    return this.users.list({
      ...(filter.email !== undefined && { emailContains: filter.email.trim().normalize('NFC').toLowerCase() }),
      ...(filter.role !== undefined && { role: filter.role }),
      ...(filter.emailVerified !== undefined && { emailVerified: filter.emailVerified }),
      limit: filter.limit,
      offset: filter.offset,
    });
  }

  async getUser(id: number): Promise<User> {
    const user = await this.users.findById(id);
    if (user === undefined) throw new GatepassError('not_found', USER_NOT_FOUND);
    return user;
  }

  /**
   * Changes a user's role and/or active flag. Either takes effect on the user's next request: a role
   * change refuses their current access tokens (the next refresh carries the new role), and a
   * deactivation ends their sessions.
   *
   * An admin (API) cannot grant a role with a permission they lack, nor change a user who holds one
   * (403); no change leaves zero active admins (409 last_admin, decided in the change's transaction).
   * The CLI (`actor.userId` null) is the operator and passes the first rule, not the second.
   */
  async updateUser(
    actor: { userId: number | null; client: ClientInfo },
    id: number,
    changes: { role?: Role; isActive?: boolean },
  ): Promise<User> {
    const user = await this.getUser(id);
    if (actor.userId !== null) await this.assertActorOutranks(actor.userId, user, changes.role);
    if (changes.role !== undefined && changes.role !== user.role) {
      const role = changes.role;
      await this.sessions.changeRole(
        id,
        { event: 'role_changed', userId: id, actorId: actor.userId, client: actor.client, details: { from: user.role, to: role } },
        async (trx) => {
          if (role !== 'admin') await keepAnActiveAdmin(trx, id);
          await new UserRepository(trx).update(id, { role }, this.now());
        },
      );
    }
    if (changes.isActive === false && user.isActive) await this.accounts.deactivate(id, actor.client, actor.userId);
    if (changes.isActive === true && !user.isActive) await this.accounts.activate(id, actor.client, actor.userId);
    return this.getUser(id);
  }

  /** The actor's permissions (their role as stored now) must include the target's and the new role's. */
  private async assertActorOutranks(actorId: number, target: User, newRole: Role | undefined): Promise<void> {
    const actor = await this.users.findById(actorId);
    const within = (role: string) => actor !== undefined && roleWithin(this.rolePermissions, role, actor.role);
    if (!within(target.role) || (newRole !== undefined && !within(newRole)))
      throw new GatepassError('forbidden', ACCESS_TOKEN_DETAILS.forbidden);
  }

  /** The user `id` if the actor may change them (404, 403 otherwise), for changes made by other services (a second-factor reset). */
  async userToManage(actor: { userId: number | null }, id: number): Promise<User> {
    const user = await this.getUser(id);
    if (actor.userId !== null) await this.assertActorOutranks(actor.userId, user, undefined);
    return user;
  }

  /** Ends every session of a user; all their tokens stop working. Like a change, only of a user the actor outranks. */
  async revokeSessions(actor: { userId: number | null; client: ClientInfo }, id: number): Promise<void> {
    const user = await this.getUser(id);
    if (actor.userId !== null) await this.assertActorOutranks(actor.userId, user, undefined);
    await this.sessions.endAllSessions(id, {
      event: 'session_revoked',
      userId: id,
      actorId: actor.userId,
      client: actor.client,
      details: { all: true },
    });
  }
}
