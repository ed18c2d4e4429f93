import { definePasswordlessSuite } from './passwordless-suite.js';

definePasswordlessSuite('sqlite');
