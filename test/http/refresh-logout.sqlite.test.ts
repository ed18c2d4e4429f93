import { defineRefreshLogoutSuite } from './refresh-logout-suite.js';

defineRefreshLogoutSuite('sqlite');
