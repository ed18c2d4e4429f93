import { defineRaceSuite } from './race-suite.js';

defineRaceSuite('sqlite');
