import { defineMfaSuite } from './mfa-suite.js';

defineMfaSuite('sqlite');
