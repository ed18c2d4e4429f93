import { describePostgres } from '../helpers/app.js';
import { definePasswordlessSuite } from './passwordless-suite.js';

describePostgres('passwordless', () => definePasswordlessSuite('postgres'));
