import { Ajv, type Options } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { isValidEmail } from '../accounts/email.js';

/**
 * Request validation with two Ajv instances. Query strings and path parameters arrive as text, so
 * they are coerced ("1" → 1); JSON bodies are not: `{"title": 5}` is a 422, as in FastAPI/pydantic,
 * never silently stored as "5". Both report every error at once and drop unknown body fields.
 */
export function installValidation(app: FastifyInstance, sharedSchemas: object[]): void {
  const common: Options = { useDefaults: true, removeAdditional: true, allErrors: true, addUsedSchema: false };
  const bodies = createAjv({ ...common, coerceTypes: false }, sharedSchemas);
  const textParts = createAjv({ ...common, coerceTypes: 'array' }, sharedSchemas);
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodies : textParts).compile(schema));
}

function createAjv(options: Options, sharedSchemas: object[]): Ajv {
  const ajv = new Ajv(options);
  addFormats.default(ajv);
  // Our own email check (with normalisation) replaces ajv-formats' so validation and storage agree.
  ajv.addFormat('email', isValidEmail);
  for (const schema of sharedSchemas) ajv.addSchema(schema);
  return ajv;
}
