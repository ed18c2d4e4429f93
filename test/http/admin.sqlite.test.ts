import { defineAdminSuite } from './admin-suite.js';

defineAdminSuite('sqlite');
