import { describePostgres } from '../helpers/app.js';
import { defineLoginSuite } from './login-suite.js';

describePostgres('HTTP API', () => defineLoginSuite('postgres'));
