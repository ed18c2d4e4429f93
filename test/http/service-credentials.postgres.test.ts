import { describePostgres } from '../helpers/app.js';
import { defineServiceCredentialsSuite } from './service-credentials-suite.js';

describePostgres('service credentials', () => defineServiceCredentialsSuite('postgres'));
