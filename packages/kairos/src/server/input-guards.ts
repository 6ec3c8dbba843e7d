import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { KairosError } from '../errors.ts';

/**
 * Guards that sit in front of schema validation, for what Ajv and `JSON.parse` let through:
 * bodies nested deep enough to overflow a recursive walk (10,000 levels fit in 20 KB), numbers in
 * query strings and paths that Ajv's coercion reads as `Infinity` (`Infinity`, `1e309`: an integer
 * bound is not checked on a value that is not finite) or reads loosely (`0x10`, `' 5'`, `1e3`), and
 * NUL characters (U+0000), which PostgreSQL cannot hold in text or jsonb (a NUL in a job name in a
 * path answered 500 there, and SQLite kept it): refused everywhere, on both dialects alike; and
 * lone surrogates (`"\ud800"` without its pair: not Unicode), which PostgreSQL's jsonb refuses (a
 * job's params answered 500 there): refused in bodies likewise.
 */

/** The deepest a JSON body may nest (objects and arrays); deeper answers JSON_TOO_DEEP. */
export const MAX_JSON_DEPTH = 64;

/** How deep `text` nests, stopping once it passes `limit`; brackets inside strings do not count. */
export function jsonDepth(text: string, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/** JSON bodies: Fastify's own parser (prototype-poisoning checks), after a depth check. */
export function installJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    if (jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
      done(
        new KairosError('JSON_TOO_DEEP', `the body nests deeper than ${MAX_JSON_DEPTH} levels`, {
          limit: MAX_JSON_DEPTH,
        }),
        undefined,
      );
      return;
    }
    // A NUL or a surrogate can only come in escaped (JSON has no raw control characters in strings,
    // and the body's bytes were decoded as UTF-8, where a surrogate's bytes become U+FFFD).
    if (!/\\u(0000|d[89a-f])/i.test(text)) {
      parse(request, text, done);
      return;
    }
    parse(request, text, (error, value) => {
      const bad = error ? null : unstorablePath(value);
      if (bad === null) done(error as Error, value);
      // A worker's reports and log lines are its handlers' output (error messages, results, lines):
      // a NUL or a lone surrogate in them is kept as U+FFFD rather than refusing the batch and
      // losing its neighbours.
      else if (HANDLER_OUTPUT.has(request.routeOptions.url ?? '')) done(null, storable(value));
      else done(unstorableError('body', bad), undefined);
    });
  });
}

/** Routes whose bodies carry handlers' output (a poll may carry reports). */
const HANDLER_OUTPUT = new Set(['/v1/worker/:id/report', '/v1/worker/:id/poll', '/v1/worker/:id/logs']);

/** A surrogate without its pair: high not followed by low, or low not preceded by high. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/u;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'gu');

/** What a store cannot hold in a string: a NUL, or a lone surrogate. */
function unstorableIn(text: string): 'nul' | 'surrogate' | null {
  if (text.includes('\u0000')) return 'nul';
  return LONE_SURROGATE.test(text) ? 'surrogate' : null;
}

/** `text` with every NUL and lone surrogate replaced by U+FFFD. */
function storableText(text: string): string {
  return text.replaceAll('\u0000', '\ufffd').replace(LONE_SURROGATES, '\ufffd');
}

/** Path and query values with a NUL answer VALIDATION_FAILED (bodies are checked when parsed). */
export function installNulGuard(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    for (const [where, source] of [
      ['params', request.params],
      ['querystring', request.query],
    ] as const) {
      if (!source || typeof source !== 'object') continue;
      for (const [name, value] of Object.entries(source as Record<string, unknown>)) {
        if ([value].flat().some((one) => typeof one === 'string' && one.includes('\u0000'))) {
          throw nulError(where, `/${name}`);
        }
      }
    }
  });
}

/** The JSON pointer of the first string or key a store cannot hold, and why; or null. */
function unstorablePath(value: unknown): { path: string; why: 'nul' | 'surrogate' } | null {
  const stack: Array<[unknown, string]> = [[value, '']];
  while (stack.length > 0) {
    const [item, path] = stack.pop()!;
    if (typeof item === 'string') {
      const why = unstorableIn(item);
      if (why) return { path: path || '/', why };
    } else if (Array.isArray(item)) {
      for (let i = 0; i < item.length; i++) stack.push([item[i], `${path}/${i}`]);
    } else if (item && typeof item === 'object') {
      for (const [key, child] of Object.entries(item)) {
        const why = unstorableIn(key);
        if (why) return { path: `${path}/${JSON.stringify(key).slice(1, -1)}`, why };
        stack.push([child, `${path}/${key}`]);
      }
    }
  }
  return null;
}

/** The value with every NUL and lone surrogate in its strings and keys replaced by U+FFFD. */
function storable(value: unknown): unknown {
  if (typeof value === 'string') return storableText(value);
  if (Array.isArray(value)) return value.map(storable);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([key, child]) => [storableText(key), storable(child)]),
    );
  }
  return value;
}

function unstorableError(where: string, bad: { path: string; why: 'nul' | 'surrogate' }): KairosError {
  return bad.why === 'nul'
    ? nulError(where, bad.path)
    : new KairosError(
        'VALIDATION_FAILED',
        `${where}${bad.path}: must be Unicode text: a lone surrogate (U+D800–U+DFFF without its pair) cannot be stored`,
        [{ path: bad.path, message: 'must not contain a lone surrogate' }],
      );
}

function nulError(where: string, path: string): KairosError {
  const message = 'must not contain a NUL character (U+0000)';
  return new KairosError('VALIDATION_FAILED', `${where}${path}: ${message}`, [{ path, message }]);
}

const INTEGER = /^-?\d{1,16}$/;
const NUMBER = /^-?\d{1,16}(\.\d{1,16})?$/;

/**
 * Query string and path fields the route's schema declares as integers (or numbers) must be
 * written in plain decimal digits and be safe integers: anything else answers VALIDATION_FAILED
 * before Ajv coerces it. Installed as an `onRoute` hook, so it covers every route added after it.
 */
export function installNumberGuard(app: FastifyInstance): void {
  app.addHook('onRoute', (route: RouteOptions) => {
    const schema = route.schema as { querystring?: unknown; params?: unknown } | undefined;
    const fields = [
      ...numericFields(schema?.querystring).map((f) => ({ ...f, where: 'querystring' as const })),
      ...numericFields(schema?.params).map((f) => ({ ...f, where: 'params' as const })),
    ];
    if (fields.length === 0) return;
    const guard = async (request: FastifyRequest) => {
      for (const { name, integer, where } of fields) {
        const source = (where === 'querystring' ? request.query : request.params) as Record<string, unknown>;
        const value = source?.[name];
        if (value === undefined) continue;
        for (const one of [value].flat()) {
          if (typeof one !== 'string') continue;
          const ok = (integer ? INTEGER : NUMBER).test(one) && Number.isSafeInteger(Math.trunc(Number(one)));
          if (!ok) {
            const message = integer
              ? 'must be an integer in decimal digits'
              : 'must be a number in decimal digits';
            throw new KairosError('VALIDATION_FAILED', `${where}/${name}: ${message}`, [
              { path: `/${name}`, message },
            ]);
          }
        }
      }
    };
    route.preValidation = [guard, ...[route.preValidation ?? []].flat()] as RouteOptions['preValidation'];
  });
}

function numericFields(schema: unknown): Array<{ name: string; integer: boolean }> {
  const properties = (schema as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties;
  if (!properties) return [];
  return Object.entries(properties).flatMap(([name, field]): Array<{ name: string; integer: boolean }> => {
    const types = [field.type].flat();
    if (types.includes('integer')) return [{ name, integer: true }];
    if (types.includes('number')) return [{ name, integer: false }];
    return [];
  });
}
