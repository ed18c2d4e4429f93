/**
 * gatepass as the bench runs it: the real app from buildApp, configured from the environment like
 * `npm start`, plus one DB-free protected route, GET /bench/protected, behind the app's own auth
 * guard (the instance its routes use). Listens on 127.0.0.1 at a free port and prints it after READY_MARKER.
 */
import { loadSettings } from '../../src/config/settings.js';
import { buildApp } from '../../src/http/app.js';
import { appGuard } from '../lib/gatepass-internals.js';
import { addProtectedRoute, serveUntilSignalled } from './protected-route.js';

const cwd = process.cwd();
const settings = loadSettings(process.env, { cwd });
const app = await buildApp(settings, { cwd });
addProtectedRoute(app, appGuard(app));
await serveUntilSignalled(app);
