import { describePostgres } from '../helpers/app.js';
import { defineMetricsSuite } from './metrics-suite.js';

describePostgres('roles, admin, audit, reset and metrics', () => defineMetricsSuite('postgres'));
