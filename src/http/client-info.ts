import type { FastifyRequest } from 'fastify';
import type { ClientInfo } from '../audit/audit-log.js';

/** Where a request came from, as sessions and the audit trail record it (bounded in size). */
export function clientInfo(request: FastifyRequest): ClientInfo {
  return { userAgent: request.headers['user-agent']?.slice(0, 512) ?? null, ip: request.ip.slice(0, 64) };
}

/** The origin the client reached this server at (behind TRUST_PROXY, what the proxy says). */
export function requestOrigin(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}
