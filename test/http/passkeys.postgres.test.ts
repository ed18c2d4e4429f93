import { describePostgres } from '../helpers/app.js';
import { definePasskeySuite } from './passkeys-suite.js';

describePostgres('passkeys', () => definePasskeySuite('postgres'));
