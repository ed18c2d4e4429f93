import { defineTasksSuite } from './tasks-suite.js';

defineTasksSuite('sqlite');
