import { describePostgres } from '../helpers/app.js';
import { defineEmailIdentitySuite } from './email-identity-suite.js';

describePostgres('email identity', () => defineEmailIdentitySuite('postgres'));
