import { STATUS_CODES } from 'node:http';
import { ErrorBodySchema } from '@kairos/client';
import { type TSchema, Type } from '@sinclair/typebox';

/**
 * Describes what a route answers, for the OpenAPI document and for the serializer (Fastify
 * serializes a body with the schema of its status, and leaves out fields the schema does not
 * list): the body of each 2xx status it answers with, and the error body of every other status.
 */
export function answers(ok: Record<number, TSchema>): Record<string, TSchema> {
  const described: Record<string, TSchema> = {};
  for (const [status, schema] of Object.entries(ok)) {
    described[status] = { ...schema, description: schema.description ?? STATUS_CODES[status] };
  }
  return { ...described, '4xx': ErrorAnswer, '5xx': ErrorAnswer };
}

const ErrorAnswer = Type.Object(ErrorBodySchema.properties, {
  description: '`{ error: { code, message, details } }`; docs/errors.md lists every code.',
});

/** A 2xx answer without a body. */
export const NoContent = Type.Null();
