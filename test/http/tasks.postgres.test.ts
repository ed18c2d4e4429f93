import { describePostgres } from '../helpers/app.js';
import { defineTasksSuite } from './tasks-suite.js';

describePostgres('HTTP API', () => defineTasksSuite('postgres'));
