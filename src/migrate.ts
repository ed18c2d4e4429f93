import { ConfigError, loadSettings, redactUrl } from './config/settings.js';
import { openDatabase } from './store/database.js';
import { migrateToLatest } from './store/migrations.js';

/** `npm run migrate`: bring the configured database's schema up to date, then exit. */
async function main(): Promise<void> {
  const settings = loadSettings();
  const database = openDatabase(settings.databaseUrl);
  try {
    const applied = await migrateToLatest(database);
    console.log(
      applied.length === 0
        ? `${redactUrl(settings.databaseUrl)}: already up to date`
        : `${redactUrl(settings.databaseUrl)}: applied ${applied.join(', ')}`,
    );
  } finally {
    await database.close();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : `migration failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
