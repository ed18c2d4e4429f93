import { defineProfileSuite } from './profile-suite.js';

defineProfileSuite('sqlite');
