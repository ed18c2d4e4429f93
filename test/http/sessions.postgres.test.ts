import { describePostgres } from '../helpers/app.js';
import { defineSessionsSuite } from './sessions-suite.js';

describePostgres('sessions and account lifecycle', () => defineSessionsSuite('postgres'));
