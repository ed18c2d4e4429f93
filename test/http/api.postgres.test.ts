import { describePostgres } from '../helpers/app.js';
import { defineApiSuite } from './api-suite.js';

describePostgres('HTTP API', () => defineApiSuite('postgres'));
