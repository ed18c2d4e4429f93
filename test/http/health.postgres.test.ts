import { describePostgres } from '../helpers/app.js';
import { defineHealthSuite } from './health-suite.js';

describePostgres('HTTP API', () => defineHealthSuite('postgres'));
