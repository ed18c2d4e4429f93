import { describePostgres } from '../helpers/app.js';
import { defineLegacyHashSuite } from './legacy-hash-suite.js';

describePostgres('legacy bcrypt hashes', () => defineLegacyHashSuite('postgres'));
