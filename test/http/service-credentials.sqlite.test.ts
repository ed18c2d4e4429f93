import { defineServiceCredentialsSuite } from './service-credentials-suite.js';

defineServiceCredentialsSuite('sqlite');
