import type { Settings } from './config/settings.js';
import { redactUrl } from './config/settings.js';
import { buildApp } from './http/app.js';

/** Builds the app on `settings` and serves it until SIGINT/SIGTERM, then closes it cleanly. */
export async function serve(settings: Settings): Promise<void> {
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
