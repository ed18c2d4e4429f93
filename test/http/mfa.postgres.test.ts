import { describePostgres } from '../helpers/app.js';
import { defineMfaSuite } from './mfa-suite.js';

describePostgres('two-factor sign-in', () => defineMfaSuite('postgres'));
