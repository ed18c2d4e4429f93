import { defineRoleChangeSuite } from './role-change-suite.js';

defineRoleChangeSuite('sqlite');
