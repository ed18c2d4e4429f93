import { describePostgres } from '../helpers/app.js';
import { defineEmailVerificationSuite } from './email-verification-suite.js';

describePostgres('email verification', () => defineEmailVerificationSuite('postgres'));
