import { describePostgres } from '../helpers/app.js';
import { defineExternalSignInSuite } from './external-sign-in-suite.js';

describePostgres('external sign-in', () => defineExternalSignInSuite('postgres'));
