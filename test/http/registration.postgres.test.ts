import { describePostgres } from '../helpers/app.js';
import { defineRegistrationSuite } from './registration-suite.js';

describePostgres('HTTP API', () => defineRegistrationSuite('postgres'));
