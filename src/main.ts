import { ConfigError, loadSettings, redactUrl } from './config/settings.js';
import { buildApp } from './http/app.js';

/** `npm start`: load settings, build the app on its database, serve until SIGINT/SIGTERM. */
async function main(): Promise<void> {
  let settings;
  try {
    settings = loadSettings();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  const app = await buildApp(settings);
  for (const warning of settings.warnings) app.log.warn(warning);
  app.log.info({ database: redactUrl(settings.databaseUrl), algorithm: settings.jwt.algorithm, env: settings.env }, 'gatepass starting');

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  await app.listen({ host: settings.host, port: settings.port });
}

main().catch((error: unknown) => {
  console.error('gatepass failed to start:', error instanceof Error ? error.message : error);
  process.exit(1);
});
