import { type TObject, type TProperties, type TSchema, Type } from '@sinclair/typebox';

/**
 * The building blocks of every schema of the API. Request bodies are closed objects (an unknown
 * field is a 400); answers are open objects, which the node's serializer cuts to the listed fields.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** A closed object: unknown fields fail validation. Every request body is one. */
export const closed = <T extends TProperties>(properties: T): TObject<T> =>
  Type.Object(properties, { additionalProperties: false });

/** Any JSON value. */
export const JsonSchema = Type.Unsafe<Json>({});
/** A JSON object with any fields (the serializer keeps them all). */
export const JsonObjectSchema = Type.Unsafe<JsonObject>(Type.Record(Type.String(), Type.Unknown()));

/** Milliseconds, or a string with a unit: `'250ms'`, `'30s'`, `'5m'`, `'2h'`, `'1d'`. */
export const DurationSchema = Type.Union([
  Type.Integer({ minimum: 0 }),
  Type.String({ minLength: 1, maxLength: 32 }),
]);

/** Names of jobs, groups and calendars. */
export const NameSchema = Type.String({ minLength: 1, maxLength: 128 });

/** A string-to-string map: labels, selectors, environments, headers. */
export const StringMapSchema = Type.Record(Type.String({ maxLength: 128 }), Type.String({ maxLength: 8192 }));

/** An instant on the wire: an ISO-8601 string. */
export const InstantSchema = Type.String({ maxLength: 64 });

export const nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** `{ error: { code, message, details } }`: the body of every non-2xx answer (codes: docs/errors.md). */
export const ErrorBodySchema = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    details: Type.Optional(JsonSchema),
  }),
});

/** One page of a list: `nextCursor` is null on the last page. */
export const PageSchema = <T extends TSchema>(item: T) =>
  Type.Object({ items: Type.Array(item), nextCursor: nullable(Type.String()) });

/** A whole list in one answer. */
export const ItemsSchema = <T extends TSchema>(item: T) => Type.Object({ items: Type.Array(item) });

/** An answer with nothing to say. */
export const EmptySchema = Type.Object({});

/**
 * A closed object for a union of object kinds, keyed by `kind`: every field of every kind, all
 * optional but `kind`. A request body validates with it so that a wrong field gets a message that
 * names it (a union would only say "must match a schema in anyOf"); which fields each kind needs is
 * checked by the node when it compiles the spec.
 */
export function oneObjectOfKinds<T extends TObject[]>(
  variants: [...T],
  overrides: TProperties = {},
): TObject {
  const properties: TProperties = {};
  for (const variant of variants) {
    for (const [key, schema] of Object.entries(variant.properties)) {
      if (key !== 'kind') properties[key] = Type.Optional(schema);
    }
  }
  const kinds = variants.map((variant) => variant.properties.kind as TSchema);
  return closed({ kind: Type.Union(kinds), ...properties, ...overrides });
}
