import { definePasskeySuite } from './passkeys-suite.js';

definePasskeySuite('sqlite');
