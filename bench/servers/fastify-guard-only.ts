/**
 * Diagnostic, not a baseline: a Fastify instance with nothing but gatepass's auth guard (taken from
 * an app built by buildApp that never listens, so none of the app's plugins run) on
 * GET /bench/protected (defined once, in servers/protected-route.ts) and GET /ping. Set beside the
 * bare node:http server and the full app, it splits the gap between them into what Fastify itself
 * costs and what the app's plugins and hooks (security headers, CORS, body parsing, docs…) add.
 */
import Fastify from 'fastify';
import { loadSettings } from '../../src/config/settings.js';
import { appServices, issueAccessToken } from '../lib/gatepass-internals.js';
import { addProtectedRoute, serveUntilSignalled } from './protected-route.js';

const cwd = process.cwd();
const settings = loadSettings(process.env, { cwd });
const { services, guards, close } = await appServices(settings, cwd);
const app = Fastify({ logger: { level: settings.logLevel } });
app.decorateRequest('auth', null);
app.addHook('onClose', close);
app.get('/ping', () => ({ status: 'ok', message: 'pong' }));
addProtectedRoute(app, guards.requireAuth);
await serveUntilSignalled(app, { token: issueAccessToken(services, 1) });
