import { ConfigError, loadSettings } from './config/settings.js';
import { serve } from './server.js';

/** `npm start`: serve with the settings of the environment and `.env`. */
try {
  await serve(loadSettings());
} catch (error) {
  console.error(
    error instanceof ConfigError ? error.message : `gatepass failed to start: ${error instanceof Error ? error.message : String(error)}`,
  );
  process.exit(error instanceof ConfigError ? 2 : 1);
}
