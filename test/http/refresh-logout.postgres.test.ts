import { describePostgres } from '../helpers/app.js';
import { defineRefreshLogoutSuite } from './refresh-logout-suite.js';

describePostgres('HTTP API', () => defineRefreshLogoutSuite('postgres'));
