import { defineAuditSuite } from './audit-suite.js';

defineAuditSuite('sqlite');
