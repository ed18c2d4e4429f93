import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * Where `npm run build` put the page (scripts/build-web.mjs): dist/web beside dist/http when this
 * file runs built, and the same dist/web when it runs from source (src/http, through tsx).
 */
function builtPageDir(): string | undefined {
  return [path.resolve(here, '../web'), path.resolve(here, '../../dist/web')].find((dir) => existsSync(path.join(dir, 'index.html')));
}

/**
 * Serves the web page at `/` and its files under `/assets/`, exactly the files that were built
 * (no wildcard route, so no API path can be shadowed). Without a build, `/` answers a 404 that says
 * how to make one. `pageDir` replaces the built page's directory (tests).
 */
export async function registerWebPage(app: FastifyInstance, pageDir: string | undefined = builtPageDir()): Promise<void> {
  const root = pageDir !== undefined && existsSync(path.join(pageDir, 'index.html')) ? pageDir : undefined;
  if (root === undefined) {
    app.get('/', { schema: { hide: true } }, (_request, reply) =>
      reply.code(404).send({ detail: 'The web page is not built; run `npm run build`', code: 'not_found' }),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    wildcard: false,
    index: 'index.html',
    decorateReply: false,
    cacheControl: true,
    maxAge: 0,
  });
}
