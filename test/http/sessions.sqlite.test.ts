import { defineSessionsSuite } from './sessions-suite.js';

defineSessionsSuite('sqlite');
