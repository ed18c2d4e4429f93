import { describePostgres } from '../helpers/app.js';
import { defineRaceSuite } from './race-suite.js';

describePostgres('races', () => defineRaceSuite('postgres'));
