/** The little of a logger that services need; pino (Fastify's logger) satisfies it, and so does the CLI's. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(context: { err: unknown }, message: string): void;
}
