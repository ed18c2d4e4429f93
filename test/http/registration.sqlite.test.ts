import { defineRegistrationSuite } from './registration-suite.js';

defineRegistrationSuite('sqlite');
