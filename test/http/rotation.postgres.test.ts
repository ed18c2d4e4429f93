import { describePostgres } from '../helpers/app.js';
import { defineRotationSuite } from './rotation-suite.js';

describePostgres('refresh rotation', () => defineRotationSuite('postgres'));
