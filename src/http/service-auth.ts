import type { ServiceClient, ServiceCredentials } from '../accounts/service-credentials.js';
import { GatepassError } from '../errors.js';
import type { Hook } from './auth-guard.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The calling service, on routes behind requireService. */
    service: ServiceClient | null;
  }
}

export interface ServiceAuth {
  /**
   * onRequest (or preHandler) hook of the routes other services call: checks the request's HTTP Basic
   * service credential and sets `request.service`, or answers 401 invalid_client with a Basic challenge.
   */
  requireService: Hook;
}

/**
 * The guard of the service routes. Unlike the access-token guards it reads the database on every
 * request: that is what makes a revoked credential stop working at once on every instance.
 */
export function createServiceAuth(credentials: Pick<ServiceCredentials, 'authenticate'>): ServiceAuth {
  return {
    requireService: async (request) => {
      const service = await credentials.authenticate(request.headers.authorization);
      if (service === undefined) throw new GatepassError('invalid_client', 'Invalid service credentials');
      request.service = service;
    },
  };
}
