import { definePasswordResetSuite } from './password-reset-suite.js';

definePasswordResetSuite('sqlite');
