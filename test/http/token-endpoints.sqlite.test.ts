import { defineTokenEndpointsSuite } from './token-endpoints-suite.js';

defineTokenEndpointsSuite('sqlite');
