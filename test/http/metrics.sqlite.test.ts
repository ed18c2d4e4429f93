import { defineMetricsSuite } from './metrics-suite.js';

defineMetricsSuite('sqlite');
