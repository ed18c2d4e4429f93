import { describePostgres } from '../helpers/app.js';
import { defineProfileSuite } from './profile-suite.js';

describePostgres('HTTP API', () => defineProfileSuite('postgres'));
