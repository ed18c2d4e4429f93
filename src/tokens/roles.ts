/**
 * The seeds' roles. New accounts are students; only an admin (or the CLI) changes a role. An access
 * token carries its role, so what a role may do is token vocabulary: the server and `gatepass/verify`
 * read it alike.
 */
export const ROLES = ['student', 'teacher', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const PERMISSIONS = ['tasks:read', 'tasks:write', 'users:read', 'users:write', 'audit:read', 'services:write'] as const;
export type Permission = (typeof PERMISSIONS)[number];

export type RolePermissions = Record<Role, ReadonlySet<Permission>>;

/** The defaults; ROLE_PERMISSIONS overrides them role by role. */
export const DEFAULT_ROLE_PERMISSIONS: Record<Role, Permission[]> = {
  student: ['tasks:read', 'tasks:write'],
  teacher: ['tasks:read', 'tasks:write', 'users:read'],
  admin: ['tasks:read', 'tasks:write', 'users:read', 'users:write', 'audit:read', 'services:write'],
};

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

export function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}
