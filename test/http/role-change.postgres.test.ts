import { describePostgres } from '../helpers/app.js';
import { defineRoleChangeSuite } from './role-change-suite.js';

describePostgres('roles, admin, audit, reset and metrics', () => defineRoleChangeSuite('postgres'));
