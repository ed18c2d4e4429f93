import { describePostgres } from '../helpers/app.js';
import { definePasswordResetSuite } from './password-reset-suite.js';

describePostgres('roles, admin, audit, reset and metrics', () => definePasswordResetSuite('postgres'));
