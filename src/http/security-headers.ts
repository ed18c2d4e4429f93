import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';
import type { Settings } from '../config/settings.js';

/**
 * Security headers on every response (helmet) and CORS for the configured origins only: with no
 * CORS_ORIGINS, browsers on other origins may not read any answer.
 */
export async function installSecurityHeaders(app: FastifyInstance, settings: Settings): Promise<void> {
  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: {
        // Swagger UI (/docs) loads its scripts from this server and styles itself inline.
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        upgradeInsecureRequests: null,
      },
    },
    // HSTS pins browsers to HTTPS for a year: right behind TLS in production, wrong on a laptop.
    hsts: settings.env === 'production' ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    crossOriginEmbedderPolicy: false,
  });
  await app.register(cors, {
    origin: settings.corsOrigins.length === 0 ? false : settings.corsOrigins,
    credentials: true,
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'X-Gatepass-Cookie'],
    exposedHeaders: ['Retry-After', 'X-Total-Count', 'WWW-Authenticate'],
    maxAge: 600,
  });
}
