/** The seeds' roles. New accounts are students; only an admin (or the CLI) changes a role. */
export const ROLES = ['student', 'teacher', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export const PERMISSIONS = ['tasks:read', 'tasks:write', 'users:read', 'users:write', 'audit:read'] as const;
export type Permission = (typeof PERMISSIONS)[number];

export type RolePermissions = Record<Role, ReadonlySet<Permission>>;

/** The defaults; ROLE_PERMISSIONS overrides them role by role. */
export const DEFAULT_ROLE_PERMISSIONS: Record<Role, Permission[]> = {
  student: ['tasks:read', 'tasks:write'],
  teacher: ['tasks:read', 'tasks:write', 'users:read'],
  admin: ['tasks:read', 'tasks:write', 'users:read', 'users:write', 'audit:read'],
};

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

export function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}

/**
 * Parses ROLE_PERMISSIONS, a JSON object from role to permission list, over the defaults.
 * Returns the mapping, or the problems found in it.
 */
export function parseRolePermissions(json: string | undefined): { value: RolePermissions; problems: string[] } {
  const merged: Record<Role, Permission[]> = { ...DEFAULT_ROLE_PERMISSIONS };
  const problems: string[] = [];
  if (json !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch {
      parsed = undefined;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      problems.push('ROLE_PERMISSIONS must be a JSON object like {"teacher": ["tasks:read", "users:read"]}');
    } else {
      for (const [role, permissions] of Object.entries(parsed)) {
        if (!isRole(role)) problems.push(`ROLE_PERMISSIONS names an unknown role "${role}" (roles: ${ROLES.join(', ')})`);
        else if (!Array.isArray(permissions) || !permissions.every((p): p is Permission => typeof p === 'string' && isPermission(p))) {
          problems.push(`ROLE_PERMISSIONS.${role} must be a list of permissions from ${PERMISSIONS.join(', ')}`);
        } else merged[role] = permissions;
      }
    }
  }
  return {
    value: { student: new Set(merged.student), teacher: new Set(merged.teacher), admin: new Set(merged.admin) },
    problems,
  };
}
