import { describePostgres } from '../helpers/app.js';
import { defineAdminSuite } from './admin-suite.js';

describePostgres('roles, admin, audit, reset and metrics', () => defineAdminSuite('postgres'));
