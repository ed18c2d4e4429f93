import { Type } from '@sinclair/typebox';
import { SERVICE_NAME_MAX_LENGTH, SERVICE_NAME_PATTERN } from '../../accounts/service-credentials.js';
import { GatepassError } from '../../errors.js';
import { authOf } from '../auth-guard.js';
import { clientInfo } from '../client-info.js';
import { BEARER_SECURITY, errorResponses } from '../schemas.js';
import type { RoutePlugin, ServiceCredentialServices } from '../types.js';

const ServiceName = Type.String({
  minLength: 1,
  maxLength: SERVICE_NAME_MAX_LENGTH,
  pattern: SERVICE_NAME_PATTERN,
  description: `1–${SERVICE_NAME_MAX_LENGTH} characters: letters, digits, ".", "_", "-"`,
  examples: ['projects-service'],
});
const schemaBase = { tags: ['admin'], security: BEARER_SECURITY };

const createSchema = {
  ...schemaBase,
  summary: 'Create a service credential (services:write)',
  description:
    'For another service: HTTP Basic `client_id:client_secret` on the revocation feed and the token endpoints. ' +
    'The secret is in this answer only: it is stored hashed and cannot be shown again. 409 `service_exists` for a taken name.',
  body: Type.Object({ name: ServiceName }),
  response: {
    201: Type.Object({
      name: Type.String(),
      client_id: Type.String(),
      client_secret: Type.String({ description: 'shown once' }),
      created_at: Type.String({ format: 'date-time' }),
    }),
    ...errorResponses(401, 403, 409, 413, 415, 422),
  },
};

const listSchema = {
  ...schemaBase,
  summary: 'Service credentials, oldest first (services:write)',
  response: {
    200: Type.Object({
      items: Type.Array(
        Type.Object({
          name: Type.String(),
          client_id: Type.String(),
          created_at: Type.String({ format: 'date-time' }),
          last_used_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
            description: 'to the minute: uses are recorded at most once a minute',
          }),
        }),
      ),
    }),
    ...errorResponses(401, 403),
  },
};

const revokeSchema = {
  ...schemaBase,
  summary: 'Revoke a service credential (services:write)',
  description: 'Takes effect at once on every instance: the next request with it answers 401 `invalid_client`.',
  params: Type.Object({ name: ServiceName }),
  response: { 204: Type.Null(), ...errorResponses(401, 403, 404, 422) },
};

/** The admin API of service credentials (API.md "Services and token endpoints"). */
export const serviceRoutes: RoutePlugin<ServiceCredentialServices> = async (app, { serviceCredentials, guards }) => {
  const canWrite = guards.requirePermission('services:write');

  app.post('/admin/services', { onRequest: canWrite, schema: createSchema }, async (request, reply) => {
    const created = await serviceCredentials.create(request.body.name, { adminId: authOf(request).userId, client: clientInfo(request) });
    return reply.code(201).send({
      name: created.name,
      client_id: created.clientId,
      client_secret: created.clientSecret,
      created_at: new Date(created.createdAt).toISOString(),
    });
  });

  app.get('/admin/services', { onRequest: canWrite, schema: listSchema }, async () => {
    const credentials = await serviceCredentials.list();
    return {
      items: credentials.map((credential) => ({
        name: credential.name,
        client_id: credential.clientId,
        created_at: new Date(credential.createdAt).toISOString(),
        last_used_at: credential.lastUsedAt === null ? null : new Date(credential.lastUsedAt).toISOString(),
      })),
    };
  });

  app.delete('/admin/services/:name', { onRequest: canWrite, schema: revokeSchema }, async (request, reply) => {
    const revoked = await serviceCredentials.revoke(request.params.name, { adminId: authOf(request).userId, client: clientInfo(request) });
    if (!revoked) throw new GatepassError('not_found', 'Service credential not found');
    return reply.code(204).send(null);
  });
};
