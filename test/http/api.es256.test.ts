import { useTestDefaults } from '../helpers/app.js';
import { defineApiSuite } from './api-suite.js';

// The whole HTTP suite with access tokens signed by a ES256 key pair (generated in JWT_KEYS_DIR).
useTestDefaults({ JWT_ALGORITHM: 'ES256' });
defineApiSuite('sqlite');
