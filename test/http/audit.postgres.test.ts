import { describePostgres } from '../helpers/app.js';
import { defineAuditSuite } from './audit-suite.js';

describePostgres('roles, admin, audit, reset and metrics', () => defineAuditSuite('postgres'));
