import type { Backend } from '../helpers/app.js';
import { defineHealthSuite } from './health-suite.js';
import { defineLoginSuite } from './login-suite.js';
import { defineProfileSuite } from './profile-suite.js';
import { defineRefreshLogoutSuite } from './refresh-logout-suite.js';
import { defineRegistrationSuite } from './registration-suite.js';
import { defineTasksSuite } from './tasks-suite.js';

/**
 * The HTTP contract of /work/shared/API.md, end to end over `app.inject` against a real database:
 * health and docs, registration, login, token claims, access-token failures, refresh, logout,
 * deactivation, the user's own profile, tasks, and robustness against bad input. Each part has its
 * own runners on SQLite and PostgreSQL; the `api.<algorithm>.test.ts` runners run them all again
 * with another JWT_ALGORITHM.
 */
export function defineApiSuite(backend: Backend): void {
  defineHealthSuite(backend);
  defineRegistrationSuite(backend);
  defineLoginSuite(backend);
  defineRefreshLogoutSuite(backend);
  defineProfileSuite(backend);
  defineTasksSuite(backend);
}
