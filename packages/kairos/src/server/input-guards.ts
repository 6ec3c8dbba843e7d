import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import { KairosError } from '../errors.ts';

/**
 * Guards that sit in front of schema validation, for what Ajv and `JSON.parse` let through:
 * bodies nested deep enough to overflow a recursive walk (10,000 levels fit in 20 KB), and numbers in
 * query strings and paths that Ajv's coercion reads as `Infinity` (`Infinity`, `1e309`: an integer
 * bound is not checked on a value that is not finite) or reads loosely (`0x10`, `' 5'`, `1e3`).
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
    parse(request, text, done);
  });
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
