import type { Kysely } from 'kysely';
import { GatepassError } from '../errors.js';
import type { Database } from '../store/schema.js';
import { UserRepository } from '../store/users.js';
import type { Permission, Role, RolePermissions } from '../tokens/roles.js';

/**
 * Refuses a change that would leave no active admin: call it inside the transaction that demotes,
 * deactivates or deletes `userId`, before that change. The active admins are read under a lock
 * (UserRepository.lockActiveAdminIds), so of two admins demoting each other at once the second
 * decides on the first's committed result and is refused.
 */
export async function keepAnActiveAdmin(trx: Kysely<Database>, userId: number): Promise<void> {
  const admins = await new UserRepository(trx).lockActiveAdminIds();
  if (admins.includes(userId) && admins.length === 1) {
    throw new GatepassError('last_admin', 'This is the last active admin: make another account admin first');
  }
}

function permissionsOf(rolePermissions: RolePermissions, role: string): ReadonlySet<Permission> {
  return role in rolePermissions ? rolePermissions[role as Role] : new Set();
}

/** True when every permission of `role` is also one of `actorRole`'s. */
export function roleWithin(rolePermissions: RolePermissions, role: string, actorRole: string): boolean {
  const actor = permissionsOf(rolePermissions, actorRole);
  return [...permissionsOf(rolePermissions, role)].every((permission) => actor.has(permission));
}
