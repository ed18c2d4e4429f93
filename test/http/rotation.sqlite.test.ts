import { defineRotationSuite } from './rotation-suite.js';

defineRotationSuite('sqlite');
