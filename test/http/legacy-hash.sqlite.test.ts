import { defineLegacyHashSuite } from './legacy-hash-suite.js';

defineLegacyHashSuite('sqlite');
