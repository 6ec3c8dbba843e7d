import {
  type Static,
  type TObject,
  type TProperties,
  type TSchema,
  type TUnion,
  type TUnsafe,
  Type,
} from '@sinclair/typebox';

/**
 * The building blocks of every schema of the API. Request bodies are closed objects (an unknown
 * field is a 400); answers are open objects, which the node's serializer cuts to the listed fields.
 *
 * Answers avoid `anyOf`: fast-json-stringify serializes an `anyOf` by validating the value against
 * each branch, with validators it compiles on the first answer of a route (hundreds of ms with the
 * event loop blocked on a busy machine). Enums, `type: [t, 'null']` and one object for a union of
 * kinds serialize without a validator.
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

/** What a job, group or calendar name may be: letters, digits and `._:-`, starting with a letter or digit. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
/** What a handler name may be (jobs name it, workers register it): as a name, and `/` too. */
export const HANDLER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;

/** Names of jobs, groups and calendars. */
export const NameSchema = Type.String({ minLength: 1, maxLength: 128 });

/** An instant on the wire: an RFC 3339 string with seconds and an offset (`2030-01-01T09:00:00Z`). */
export const InstantSchema = Type.String({ maxLength: 64 });

/** One of a few strings: an enum (a union of literals would be an `anyOf`). */
export const literals = <const T extends string>(values: readonly T[]): TUnsafe<T> =>
  Type.Unsafe<T>({ type: 'string', enum: [...values] });

/** A value or null, as a list of types (`type: ['string', 'null']`). */
export function nullable<T extends TSchema>(schema: T): TUnsafe<Static<T> | null> {
  if (typeof schema.type !== 'string') throw new Error('nullable: the schema needs one type');
  return Type.Unsafe<Static<T> | null>({ ...schema, type: [schema.type, 'null'] });
}

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
  return closed({ kind: kindsOf(variants), ...properties, ...overrides });
}

/**
 * The answer form of a union of object kinds: one open object with every field of every kind,
 * which serializes without a validator; its static type stays the union. Fields that are a union
 * of plain types (a duration: integer or string) become a list of types.
 */
export function kindsAnswer<T extends TObject[]>(variants: [...T]): TUnsafe<Static<TUnion<T>>> {
  const properties: Record<string, unknown> = {};
  for (const variant of variants) {
    for (const [key, schema] of Object.entries(variant.properties)) {
      if (key === 'kind') continue;
      const branches = (schema as { anyOf?: TSchema[] }).anyOf;
      properties[key] = branches ? { type: branches.map((branch) => branch.type as string) } : schema;
    }
  }
  return Type.Unsafe<Static<TUnion<T>>>({
    type: 'object',
    properties: { kind: kindsOf(variants), ...properties },
    required: ['kind'],
  });
}

function kindsOf(variants: TObject[]): TSchema {
  return literals(variants.map((variant) => (variant.properties.kind as TSchema).const as string));
}

/**
 * Resources a run requests or a worker has (docs/workers.md#resource-based-scheduling): `cpu` in
 * cores (fractions allowed), `memory` in bytes or as `'512Mi'`/`'2Gi'`, other names (`gpu`,
 * `licence`) whole units. Names and amounts are checked by the node (`INVALID_RESOURCES`).
 */
export const ResourceSpecSchema = Type.Record(
  Type.String({ minLength: 1, maxLength: 64 }),
  Type.Union([Type.Number(), Type.String({ minLength: 1, maxLength: 32 })]),
  { maxProperties: 64 },
);

/** Resources as the node answers them: `cpu` in cores, `memory` in bytes, others in units. */
export const ResourceAmountsSchema = Type.Record(Type.String(), Type.Number());
