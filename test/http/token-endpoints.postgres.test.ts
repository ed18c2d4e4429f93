import { describePostgres } from '../helpers/app.js';
import { defineTokenEndpointsSuite } from './token-endpoints-suite.js';

describePostgres('token endpoints', () => defineTokenEndpointsSuite('postgres'));
