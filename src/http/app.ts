import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify from 'fastify';
import type { Settings } from '../config/settings.js';
import type { Clock } from '../tokens/token-service.js';
import { gatepass } from './plugin.js';
import { gatepassServerOptions } from './server-options.js';
import type { GatepassApp } from './types.js';

export type { AppServices, GatepassApp } from './types.js';

export interface BuildAppOptions {
  /** The clock every service reads; tests pass their own to move time. */
  now?: Clock;
  /** Where log lines go (newline-delimited JSON); standard output by default. Tests capture them here. */
  logStream?: NodeJS.WritableStream;
  /** Directory relative SQLite paths resolve against. */
  cwd?: string;
}

/**
 * The app factory of the gatepass server: a Fastify instance with gatepass's server options and
 * gatepass registered at the root. Closing the app closes the services (database, Redis, …).
 */
export async function buildApp(settings: Settings, options: BuildAppOptions = {}): Promise<GatepassApp> {
  const app = Fastify(gatepassServerOptions(settings, options)).withTypeProvider<TypeBoxTypeProvider>();
  await app.register(gatepass, { settings, now: options.now, cwd: options.cwd });
  return app;
}
