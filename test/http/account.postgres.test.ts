import { describePostgres } from '../helpers/app.js';
import { defineAccountSuite } from './account-suite.js';

describePostgres('sessions and account lifecycle', () => defineAccountSuite('postgres'));
