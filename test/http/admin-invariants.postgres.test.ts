import { describePostgres } from '../helpers/app.js';
import { defineAdminInvariantsSuite } from './admin-invariants-suite.js';

describePostgres('admin invariants', () => defineAdminInvariantsSuite('postgres'));
