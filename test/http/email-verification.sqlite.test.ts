import { defineEmailVerificationSuite } from './email-verification-suite.js';

defineEmailVerificationSuite('sqlite');
