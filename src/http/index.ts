/**
 * The package's root export (`import … from 'gatepass'`): gatepass as a Fastify plugin, the
 * standalone app factory, and the settings both are made from.
 *
 * ```ts
 * import Fastify from 'fastify';
 * import { gatepass, loadSettings } from 'gatepass';
 *
 * const app = Fastify({ logger: true });
 * await app.register(gatepass, { settings: loadSettings(process.env), prefix: '/auth-api' });
 * ```
 */
export { ConfigError, loadSettings, type LoadSettingsOptions, type Settings } from '../config/settings.js';
export { buildApp, type BuildAppOptions } from './app.js';
export { gatepass, type GatepassOptions } from './plugin.js';
export { gatepassServerOptions } from './server-options.js';
export type { AppServices, GatepassApp } from './types.js';
