import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyPluginAsync,
  FastifyPluginOptions,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { Settings } from '../config/settings.js';
import type { Services } from '../services.js';
import type { Guards } from './auth-guard.js';
import type { ServiceAuth } from './service-auth.js';

/** A Fastify instance whose route schemas type the handlers' requests (TypeBox). */
export type GatepassApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** The services, and the guards of protected routes (users' and services'): what `app.gatepass` holds. */
export interface AppServices extends Services {
  guards: Guards & ServiceAuth;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** gatepass's services, on the app that registered gatepass: for tests, benchmarks and the host's own code, never for gatepass's routes. */
    gatepass: AppServices;
  }
}

/** An encapsulated route group, registered with exactly the services it uses. */
export type RoutePlugin<Needs extends FastifyPluginOptions> = FastifyPluginAsync<Needs, RawServerDefault, TypeBoxTypeProvider>;

/** The settings the auth routes read: body bound, and the origins cookie mode accepts. */
export type AuthRouteSettings = Pick<Settings, 'authBodyLimitBytes' | 'corsOrigins'>;

export type HealthServices = Pick<AppServices, 'database' | 'revocations' | 'tokens'> & { redisConfigured: boolean };
export type AuthServices = Pick<
  AppServices,
  'accounts' | 'mfa' | 'sessions' | 'passwordReset' | 'emailVerification' | 'guards' | 'rateLimiter'
> & {
  settings: AuthRouteSettings;
};
export type SessionServices = Pick<AppServices, 'sessions' | 'accounts' | 'mfa' | 'guards'> & { authBodyLimitBytes: number };
export type UserServices = Pick<
  AppServices,
  'accounts' | 'emailVerification' | 'mfa' | 'passkeys' | 'externalSignIn' | 'sessions' | 'tasks' | 'audit' | 'guards' | 'now'
> & {
  authBodyLimitBytes: number;
};
export type EmailVerificationServices = Pick<AppServices, 'emailVerification' | 'guards' | 'rateLimiter'> & { authBodyLimitBytes: number };
export type MfaServices = Pick<AppServices, 'mfa' | 'guards' | 'rateLimiter'> & { settings: AuthRouteSettings };
export type ExternalSignInServices = Pick<AppServices, 'externalSignIn' | 'guards' | 'rateLimiter'> & {
  settings: Pick<Settings, 'authBodyLimitBytes' | 'publicUrl'>;
};
export type PasskeyServices = Pick<AppServices, 'passkeys' | 'guards' | 'rateLimiter'> & { settings: AuthRouteSettings };
export type TaskServices = Pick<AppServices, 'tasks' | 'guards' | 'now'>;
export type AdminServices = Pick<AppServices, 'admin' | 'mfa' | 'audit' | 'guards'>;
export type ServiceCredentialServices = Pick<AppServices, 'serviceCredentials' | 'guards'>;
export type MetricsServices = Pick<AppServices, 'metrics' | 'guards'> & { metricsAccess: Settings['metrics'] };
export type OAuthServices = Pick<AppServices, 'introspection' | 'guards'> & {
  /** JWT_ISSUER when it is a URL (RFC 8414 wants the issuer as one); otherwise the metadata names the request's origin. */
  issuer: string | undefined;
  /** The algorithms access tokens are signed with. */
  algorithms: string[];
};
export type RevocationFeedServices = Pick<AppServices, 'revocations' | 'serviceCredentials' | 'guards'>;
