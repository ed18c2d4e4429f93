import formbody from '@fastify/formbody';
import type { FastifyInstance } from 'fastify';
import { FieldError } from '../errors.js';

/** Path to the first string containing U+0000 in a parsed body, if any. */
function findNulCharacter(value: unknown, path: (string | number)[]): (string | number)[] | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path : undefined;
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = findNulCharacter(item, [...path, index]);
      if (found !== undefined) return found;
    }
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      const found = findNulCharacter(item, [...path, key]);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/**
 * Accepts JSON and (for the OAuth2 password flow) urlencoded forms; anything else answers 415.
 * An empty JSON body means "no body", as in FastAPI, and strings holding U+0000 are refused with a
 * 422 (PostgreSQL cannot store them, and no legitimate field needs one).
 */
export async function installBodyParsing(app: FastifyInstance): Promise<void> {
  const defaultJsonParser = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body.toString();
    if (text.trim() === '') return done(null, undefined);
    defaultJsonParser(request, text, done);
  });
  app.removeContentTypeParser('text/plain');
  await app.register(formbody);

  app.addHook('preValidation', async (request) => {
    const nul = findNulCharacter(request.body, ['body']);
    if (nul !== undefined) throw new FieldError(nul, 'String should not contain NUL characters', 'string_nul');
  });
}
