import { ConfigError, loadSettings } from './config/settings.js';
import { runMigrations } from './cli/commands.js';

/** `npm run migrate`: bring the configured database's schema up to date, then exit. */
try {
  console.log(await runMigrations(loadSettings()));
} catch (error) {
  console.error(
    error instanceof ConfigError ? error.message : `migration failed: ${error instanceof Error ? error.message : String(error)}`,
  );
  process.exit(1);
}
