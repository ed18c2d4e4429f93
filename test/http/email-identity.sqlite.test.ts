import { defineEmailIdentitySuite } from './email-identity-suite.js';

defineEmailIdentitySuite('sqlite');
