import { defineLoginSuite } from './login-suite.js';

defineLoginSuite('sqlite');
