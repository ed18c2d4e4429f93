import formbody from '@fastify/formbody';
import type { FastifyInstance } from 'fastify';
import { FieldError } from '../errors.js';

/**
 * Bounds on a JSON body, checked on its raw text before it is parsed. No body of API.md comes close:
 * each is one flat object of a handful of fields, and the longest string is a task description
 * (10,000 characters) or a token (8 KiB at most). They exist so that nothing after the
 * parse — schema validation, the NUL check, a handler — meets a body built to hurt (8,000 levels of
 * nesting, thousands of keys) within the body-size limit.
 */
export const MAX_JSON_DEPTH = 32;
/** Members of one object or array (and fields of one urlencoded form). */
export const MAX_JSON_MEMBERS = 1000;
/** Characters of one string, key or value, with every escape counted as the one character it stands for. */
export const MAX_JSON_STRING_LENGTH = 16_384;

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LETTER_U = 0x75;

/** A body past a bound: FastAPI's 422 with `loc: ["body"]`, as malformed JSON answers. */
const refusal = (msg: string, type: string): FieldError => new FieldError(['body'], msg, type);

/**
 * One pass over the raw JSON text, in time linear in its length and constant memory: tracks depth on
 * `{`/`[` outside strings, members per open container (by its commas), and each string's length,
 * skipping escapes so that an escaped quote or bracket is never taken for structure. It does not
 * validate JSON — the parser after it does — so on malformed text it may stop at a bound first.
 */
function scanJson(text: string): FieldError | undefined {
  const commas = new Int32Array(MAX_JSON_DEPTH + 1);
  let depth = 0;
  const length = text.length;
  for (let i = 0; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      let characters = 0;
      i++;
      while (i < length) {
        const s = text.charCodeAt(i);
        if (s === QUOTE) break;
        if (s === BACKSLASH) {
          i += text.charCodeAt(i + 1) === LETTER_U ? 6 : 2;
        } else {
          i++;
        }
        if (++characters > MAX_JSON_STRING_LENGTH)
          return refusal(`JSON string longer than ${MAX_JSON_STRING_LENGTH} characters`, 'json_string_too_long');
      }
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > MAX_JSON_DEPTH) return refusal(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`, 'json_too_deep');
      commas[depth] = 0;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      if (depth > 0) depth--;
    } else if (c === COMMA && depth > 0) {
      // n commas separate n + 1 members.
      const separators = (commas[depth] ?? 0) + 1;
      if (separators >= MAX_JSON_MEMBERS)
        return refusal(`JSON object or array with more than ${MAX_JSON_MEMBERS} members`, 'json_too_wide');
      commas[depth] = separators;
    }
  }
  return undefined;
}

/**
 * The same bounds for an urlencoded form. @fastify/formbody's parser (fast-querystring) is already a
 * single linear pass that yields a flat object — each name maps to a string, or to the array of a
 * repeated name's strings — so the bounds are checked on its result, before anything walks it.
 */
function checkFormBounds(form: Record<string, unknown>): FieldError | undefined {
  let fields = 0;
  for (const [name, value] of Object.entries(form)) {
    const values: unknown[] = Array.isArray(value) ? (value as unknown[]) : [value];
    fields += values.length;
    if (fields > MAX_JSON_MEMBERS) return refusal(`Form with more than ${MAX_JSON_MEMBERS} fields`, 'form_too_wide');
    for (const text of [name, ...values]) {
      if (typeof text === 'string' && text.length > MAX_JSON_STRING_LENGTH)
        return refusal(`Form field longer than ${MAX_JSON_STRING_LENGTH} characters`, 'form_field_too_long');
    }
  }
  return undefined;
}

/**
 * Location of a string holding U+0000 in a parsed body (a value, or an object key), if any.
 * Iterative, and only containers are stacked, each with its parent and key: linear in the body's
 * size whatever its depth, and the path is built once, for the string found.
 */
function findNulCharacter(body: unknown): (string | number)[] | undefined {
  if (typeof body === 'string') return body.includes('\u0000') ? ['body'] : undefined;
  if (typeof body !== 'object' || body === null) return undefined;
  interface Container {
    value: object;
    key: string | number;
    parent: Container | undefined;
  }
  const locationOf = (container: Container, last: string | number): (string | number)[] => {
    const path: (string | number)[] = [last];
    for (let at: Container | undefined = container; at !== undefined; at = at.parent) path.push(at.key);
    return path.reverse();
  };
  const stack: Container[] = [{ value: body, key: 'body', parent: undefined }];
  /** Checks one member of `container`: a string in place, a container onto the stack. */
  const visit = (container: Container, key: string | number, item: unknown): (string | number)[] | undefined => {
    if (typeof key === 'string' && key.includes('\u0000')) return locationOf(container, key);
    if (typeof item === 'string') return item.includes('\u0000') ? locationOf(container, key) : undefined;
    if (typeof item === 'object' && item !== null) stack.push({ value: item, key, parent: container });
    return undefined;
  };
  for (let container = stack.pop(); container !== undefined; container = stack.pop()) {
    const { value } = container;
    let found: (string | number)[] | undefined;
    if (Array.isArray(value)) {
      for (let index = 0; index < value.length && found === undefined; index++) found = visit(container, index, value[index]);
    } else {
      const record = value as Record<string, unknown>;
      for (const key of Object.keys(record)) {
        found = visit(container, key, record[key]);
        if (found !== undefined) break;
      }
    }
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * Accepts JSON and (for the OAuth2 password flow) urlencoded forms; anything else answers 415.
 * An empty JSON body means "no body", as in FastAPI. A body past a bound above answers 422 before
 * it is parsed (JSON) or walked (forms), and strings holding U+0000 are refused with a 422
 * (PostgreSQL cannot store them, and no legitimate field needs one).
 */
export async function installBodyParsing(app: FastifyInstance): Promise<void> {
  // Fastify's own parser (secure-json-parse), which refuses __proto__ and constructor.prototype keys.
  const defaultJsonParser = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body.toString();
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    const refused = scanJson(text);
    if (refused !== undefined) {
      done(refused, undefined);
      return;
    }
    // Given `done`, the parser answers through it; its type also allows the promise form, unused here.
    void defaultJsonParser(request, text, done);
  });
  app.removeContentTypeParser('text/plain');
  // A host app's own form parser (gatepass mounted as a plugin) gives way to ours, in this context only.
  if (app.hasContentTypeParser('application/x-www-form-urlencoded')) app.removeContentTypeParser('application/x-www-form-urlencoded');
  await app.register(formbody);

  app.addHook('preValidation', async (request) => {
    if (
      request.body !== null &&
      typeof request.body === 'object' &&
      request.headers['content-type']?.toLowerCase().startsWith('application/x-www-form-urlencoded') === true
    ) {
      const refused = checkFormBounds(request.body as Record<string, unknown>);
      if (refused !== undefined) throw refused;
    }
    const nul = findNulCharacter(request.body);
    if (nul !== undefined) throw new FieldError(nul, 'String should not contain NUL characters', 'string_nul');
  });
}
