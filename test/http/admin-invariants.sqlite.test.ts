import { defineAdminInvariantsSuite } from './admin-invariants-suite.js';

defineAdminInvariantsSuite('sqlite');
