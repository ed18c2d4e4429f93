import { defineExternalSignInSuite } from './external-sign-in-suite.js';

defineExternalSignInSuite('sqlite');
