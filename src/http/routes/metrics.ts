import { timingSafeEqual } from 'node:crypto';
import { GatepassError } from '../../errors.js';
import { ACCESS_TOKEN_DETAILS, bearerToken } from '../../tokens/failures.js';
import type { MetricsServices, RoutePlugin } from '../types.js';

function sameSecret(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * GET /metrics in Prometheus' text format. METRICS=off removes it, public opens it, and protected
 * (the default) asks for `Authorization: Bearer <METRICS_TOKEN>` or an access token whose role has
 * `audit:read`.
 */
export const metricsRoutes: RoutePlugin<MetricsServices> = async (app, { metricsAccess, metrics, guards }) => {
  const { mode, token } = metricsAccess;
  if (mode === 'off') return;
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['health'],
        summary: 'Prometheus metrics',
        description: 'Protected by default: a Bearer METRICS_TOKEN, or an access token with the audit:read permission.',
        ...(mode === 'protected' && { security: [{ OAuth2PasswordBearer: [] }] }),
      },
    },
    async (request, reply) => {
      if (mode === 'protected') {
        const presented = bearerToken(request.headers.authorization);
        const scraper = token !== undefined && presented !== undefined && sameSecret(presented, token);
        if (!scraper && !guards.can(guards.authenticate(request.headers.authorization), 'audit:read')) {
          throw new GatepassError('forbidden', ACCESS_TOKEN_DETAILS.forbidden);
        }
      }
      reply.header('Content-Type', metrics.contentType).header('Cache-Control', 'no-store');
      return metrics.render();
    },
  );
};
