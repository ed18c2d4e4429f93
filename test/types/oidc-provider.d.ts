/**
 * The little of oidc-provider 9 (which ships no types) that test/helpers/oidc-provider.ts uses: the
 * constructor, the Node request handler, and Koa middleware around its routes.
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  /** The Koa context as a middleware sees it after oidc-provider's own handling. */
  export interface ProviderContext {
    method: string;
    path: string;
    status: number;
    body: unknown;
  }

  export default class Provider {
    constructor(issuer: string, configuration?: Record<string, unknown>);
    readonly issuer: string;
    callback(): (request: IncomingMessage, response: ServerResponse) => void;
    use(middleware: (context: ProviderContext, next: () => Promise<void>) => Promise<void>): void;
  }
}
