import { Type } from '@sinclair/typebox';
import type { AppServices, GatepassApp } from '../app.js';
import { authOf } from '../auth-guard.js';
import { BEARER_SECURITY, FullName, MessageResponse, UserOut, errorResponses, userOut } from '../schemas.js';

export function userRoutes(app: GatepassApp, { accounts, requireAuth }: AppServices): void {
  const common = { onRequest: requireAuth } as const;
  const schemaBase = { tags: ['users'], security: BEARER_SECURITY };

  app.get(
    '/users/me',
    { ...common, schema: { ...schemaBase, summary: 'The signed-in user', response: { 200: Type.Ref(UserOut), ...errorResponses(401) } } },
    async (request) => userOut(await accounts.currentUser(authOf(request).userId)),
  );

  app.patch(
    '/users/me',
    {
      ...common,
      schema: {
        ...schemaBase,
        summary: 'Update your profile',
        body: Type.Object({ full_name: FullName }),
        response: { 200: Type.Ref(UserOut), ...errorResponses(401, 413, 415, 422) },
      },
    },
    async (request) => userOut(await accounts.updateProfile(authOf(request).userId, { fullName: request.body.full_name })),
  );

  app.get(
    '/users/me/status',
    {
      ...common,
      schema: {
        ...schemaBase,
        summary: 'Account status (as in the seed lab)',
        response: { 200: Type.Object({ email: Type.String(), is_active: Type.Boolean(), message: Type.String() }), ...errorResponses(401) },
      },
    },
    async (request) => {
      const user = await accounts.currentUser(authOf(request).userId);
      return {
        email: user.email,
        is_active: user.isActive,
        message: `Hello ${user.email}! Your account is ${user.isActive ? 'active' : 'inactive'}.`,
      };
    },
  );

  app.put(
    '/users/me/deactivate',
    {
      ...common,
      schema: {
        ...schemaBase,
        summary: 'Deactivate your account',
        description: 'Every session ends and every token of the account stops working; logging in then answers 403.',
        response: { 200: MessageResponse, ...errorResponses(401) },
      },
    },
    async (request) => {
      await accounts.deactivate(authOf(request).userId);
      return { message: 'Account deactivated successfully' };
    },
  );
}
