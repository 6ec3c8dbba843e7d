import { type Json, type JsonObject, SECRET_MASK } from '@kairos/client';
import { KairosError } from '../errors.ts';

/**
 * Secret fields of params (docs/security.md). A job names them as dotted paths into its params
 * (`secretParams: ['apiKey', 'db.password']`), and a trigger may name more for its run. The value at
 * such a path (a string, a number, an object: any JSON) is stored as an envelope in its place:
 *
 *   { "$kairos:secret": "v1:<keyId>:<iv>:<ciphertext and tag>" }
 *
 * The envelope lives inside the params' JSON, so that every copy the store makes of params (a fire
 * copies the job's into its run, a broadcast copies a run into its shards) carries it unchanged, and a
 * value is secret wherever it is an envelope: masking and decrypting need no list of paths. This file
 * is pure: which values are secret and where; `scheduler/secret-keyring.ts` does the cryptography.
 */

/** The one key of an envelope object. */
export const ENVELOPE_KEY = '$kairos:secret';

// A type, not an interface: it is a JSON object (an interface has no index signature).
export type SecretEnvelope = { [ENVELOPE_KEY]: string };

export { SECRET_MASK };

export function isEnvelope(value: unknown): value is SecretEnvelope {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    typeof (value as Record<string, unknown>)[ENVELOPE_KEY] === 'string' &&
    Object.keys(value).length === 1
  );
}

/** Whether params hold any envelope. */
export function hasSecrets(value: Json): boolean {
  let found = false;
  mapEnvelopes(value, (envelope) => {
    found = true;
    return envelope;
  });
  return found;
}

/** Every envelope replaced by what `replace` makes of it (a copy; `value` is not changed). */
export function mapEnvelopes(value: Json, replace: (envelope: SecretEnvelope) => Json): Json {
  if (isEnvelope(value)) return replace(value);
  if (Array.isArray(value)) return value.map((item) => mapEnvelopes(item, replace));
  if (typeof value === 'object' && value !== null) {
    const out: JsonObject = {};
    for (const [key, item] of Object.entries(value)) out[key] = mapEnvelopes(item, replace);
    return out;
  }
  return value;
}

/** Params as the API answers them: every secret value is `"***"`. */
export function maskSecrets(params: JsonObject): JsonObject {
  return hasSecrets(params) ? (mapEnvelopes(params, () => SECRET_MASK) as JsonObject) : params;
}

/**
 * Refuses params from outside that hold an object with the envelope's key: only the node makes
 * envelopes, so that every one it stores is one it can read.
 */
export function checkNoEnvelopes(params: JsonObject | undefined, field: string): void {
  if (params === undefined) return;
  const walk = (value: Json, path: string): void => {
    if (Array.isArray(value)) {
      for (const [i, item] of value.entries()) walk(item, `${path}[${i}]`);
    } else if (typeof value === 'object' && value !== null) {
      for (const [key, item] of Object.entries(value)) {
        if (key === ENVELOPE_KEY) {
          throw new KairosError('VALIDATION_FAILED', `${path}: the key "${ENVELOPE_KEY}" is reserved`, {
            field: path,
          });
        }
        walk(item, `${path}.${key}`);
      }
    }
  };
  walk(params, field);
}

const PATH_PATTERN = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
export const SECRET_PATHS_LIMIT = 64;

/** Validates the secret paths of a job or trigger: each once, in the dotted form, at most 64. */
export function compileSecretPaths(paths: readonly string[] | undefined, field: string): string[] {
  if (paths === undefined) return [];
  if (!Array.isArray(paths) || paths.length > SECRET_PATHS_LIMIT) {
    throw new KairosError('VALIDATION_FAILED', `${field}: expected at most ${SECRET_PATHS_LIMIT} paths`, {
      field,
    });
  }
  for (const path of paths) {
    if (typeof path !== 'string' || path.length > 200 || !PATH_PATTERN.test(path)) {
      throw new KairosError(
        'VALIDATION_FAILED',
        `${field}: ${JSON.stringify(path)} is not a dotted path of keys (letters, digits, _ and -), such as db.password`,
        { field },
      );
    }
  }
  return [...new Set(paths)];
}

/**
 * What to do with the value found at a secret path: an envelope already (kept as is), the mask sent
 * back (take the stored value), or a plain value (encrypt it, unless it is what is stored already).
 */
export type SecretSlot =
  | { kind: 'envelope'; envelope: SecretEnvelope }
  | { kind: 'mask' }
  | { kind: 'plain'; value: Json };

/**
 * Params with the value at each secret path replaced by what `decide` answers for it. A path whose
 * parent is not an object, or that is missing, has nothing to replace (the value may come with a
 * trigger). A path names one value whole: a path through an array is not followed.
 */
export function replaceAtPaths(
  params: JsonObject,
  paths: readonly string[],
  decide: (path: string, slot: SecretSlot) => Json,
): JsonObject {
  if (paths.length === 0) return params;
  const out = structuredClone(params);
  for (const path of paths) {
    const keys = path.split('.');
    const last = keys.pop()!;
    let parent: Json | undefined = out;
    for (const key of keys) parent = ownValue(parent, key);
    // Own keys only: `constructor` or `toString` is a key of these params, not what every object inherits.
    if (
      typeof parent !== 'object' ||
      parent === null ||
      Array.isArray(parent) ||
      !Object.hasOwn(parent, last)
    )
      continue;
    const value = parent[last]!;
    const slot: SecretSlot = isEnvelope(value)
      ? { kind: 'envelope', envelope: value }
      : value === SECRET_MASK
        ? { kind: 'mask' }
        : { kind: 'plain', value };
    parent[last] = decide(path, slot);
  }
  return out;
}

/** The dotted paths at which params hold envelopes (through objects; an envelope in an array has none). */
export function envelopePaths(params: JsonObject): string[] {
  const out: string[] = [];
  const walk = (value: JsonObject, prefix: string): void => {
    for (const [key, item] of Object.entries(value)) {
      if (isEnvelope(item)) out.push(prefix + key);
      else if (typeof item === 'object' && item !== null && !Array.isArray(item))
        walk(item, `${prefix}${key}.`);
    }
  };
  walk(params, '');
  return out;
}

/** The value at a dotted path, or undefined. */
export function valueAt(params: JsonObject, path: string): Json | undefined {
  let value: Json | undefined = params;
  for (const key of path.split('.')) value = ownValue(value, key);
  return value;
}

/** The value of an object's own key, or undefined (for a key it only inherits, or a value that is no object). */
function ownValue(value: Json | undefined, key: string): Json | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.hasOwn(value, key)
    ? value[key]
    : undefined;
}
