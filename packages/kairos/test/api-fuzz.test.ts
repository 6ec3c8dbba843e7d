import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { ERROR_CODES } from '@kairos/client';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, tempDir } from './helpers.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

/**
 * Property-based fuzzing of the whole API, derived from its own OpenAPI document (every route the
 * node serves, with the schemas it validates with): random and hostile values for every path
 * parameter, query parameter and body field of every operation. For every answer:
 * - never a 5xx;
 * - a 4xx carries `{ error: { code, message } }` with a code of docs/errors.md and that code's status;
 * - a refused request changed nothing that the API stores (jobs, calendars, users, tokens, workers,
 *   group limits, manual runs, log lines, audit entries).
 * The counts are printed at the end, to be quoted.
 */

/** Codes docs/errors.md gives a second status: QUOTA_EXCEEDED is 429 for rates and queued runs
 * (a fuzzed `PUT /v1/namespaces/:name/quotas` may set a small `requestsPerSecond`). */
const ALSO_ANSWERED_AS: Record<string, number[]> = { QUOTA_EXCEEDED: [429] };

interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: Schema;
}
interface Schema {
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  maxItems?: number;
  pattern?: string;
}
interface Operation {
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, { schema?: Schema }> };
}
interface Route {
  method: string;
  path: string;
  pathParams: Parameter[];
  query: Parameter[];
  headers: Parameter[];
  body: Schema | null;
}

/** Long-lived answers (a log stream) and waits are not what this test is about. */
const SKIPPED = new Set(['GET /v1/runs/{id}/logs/stream']);
const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch']);

/** One node under test: its URL, its routes, who may call it, and what it stores. */
interface Target {
  url: string;
  routes: Route[];
  /** Who calls: mostly the admin token (it reaches every route), sometimes others. */
  callers: string[];
  /** What the API stores, as a hash: equal before and after a refused request. */
  fingerprint: () => Promise<string>;
}

async function startTarget(dialect: 'sqlite' | 'postgres'): Promise<Target> {
  const dataDir = tempDir('kairos-fuzz-');
  const schema = testSchema('kairos_fuzz');
  const { node } = await startTestNode(
    {},
    dialect === 'postgres' ? { dataDir, databaseUrl: `${testDatabaseUrl()}?schema=${schema}` } : { dataDir },
  );
  const document = (await (await fetch(`${node.url}/openapi.json`)).json()) as {
    paths: Record<string, Record<string, Operation>>;
  };
  const routes = Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.has(method) && !SKIPPED.has(`${method.toUpperCase()} ${path}`))
      .map(([method, op]) => ({
        method: method.toUpperCase(),
        path,
        pathParams: (op.parameters ?? []).filter((p) => p.in === 'path'),
        query: (op.parameters ?? []).filter((p) => p.in === 'query'),
        headers: (op.parameters ?? []).filter((p) => p.in === 'header'),
        body: op.requestBody?.content?.['application/json']?.schema ?? null,
      })),
  );
  const callers = [...Array.from({ length: 12 }, () => 'admin-t'), 'worker-t', 'nope', ''];
  // Some things for the requests to find: a job, a run, a calendar, tokens of other roles.
  const admin = { authorization: 'Bearer admin-t', 'content-type': 'application/json' };
  await fetch(`${node.url}/v1/jobs`, {
    method: 'POST',
    headers: admin,
    body: JSON.stringify({ name: 'fuzz', handler: 'h', trigger: { kind: 'cron', cron: '0 0 * * *' } }),
  });
  await fetch(`${node.url}/v1/jobs/fuzz/trigger`, { method: 'POST', headers: admin, body: '{}' });
  for (const [name, role, groups] of [
    ['fuzz-viewer', 'viewer', undefined],
    ['fuzz-scoped', 'worker', ['default']],
  ] as const) {
    const created = await fetch(`${node.url}/v1/tokens`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ name, role, groups }),
    });
    callers.push(((await created.json()) as { token: string }).token);
  }
  await fetch(`${node.url}/v1/calendars`, {
    method: 'POST',
    headers: admin,
    body: JSON.stringify({ name: 'fuzz', dates: ['2030-01-01'] }),
  });
  if (dialect === 'sqlite') {
    const db = new Database(join(dataDir, 'kairos.db'), { readonly: true, fileMustExist: true });
    afterAll(() => db.close());
    const statement = db.prepare(SQLITE_FINGERPRINT).raw();
    return { url: node.url, routes, callers, fingerprint: async () => hash(statement.get()) };
  }
  const client = new pg.Client({ connectionString: testDatabaseUrl(), options: `-c search_path=${schema}` });
  await client.connect();
  afterAll(async () => {
    await client.end();
    await dropTestSchemas();
  });
  return {
    url: node.url,
    routes,
    callers,
    fingerprint: async () =>
      hash((await client.query({ text: POSTGRES_FINGERPRINT, rowMode: 'array' })).rows),
  };
}

// Values ----------------------------------------------------------------------

const HOSTILE_STRINGS = [
  '',
  ' ',
  'Infinity',
  '-Infinity',
  'NaN',
  '1e309',
  '-1',
  '0',
  '1.5',
  '0x10',
  '99999999999999999999',
  '9223372036854775808',
  'null',
  'true',
  '[]',
  '{}',
  '%ff',
  '%00',
  "' OR 1=1--",
  '"; DROP TABLE jobs; --',
  '../../etc/passwd',
  '\u0000',
  'a\u0000b',
  '\r\n',
  'a\r\nX-Injected: 1',
  '\t',
  '__proto__',
  'constructor',
  '😀',
  '\ud800',
  'x'.repeat(300),
  '2024-02-30T00:00:00Z',
  '2030-01-01T24:00:00Z',
  '2030-01-01T10:00:00',
  '?/5 * * * *',
  '* * * * +1',
  '@reboot',
  'fuzz',
  'default',
];

/** Strings that pass for names, durations, instants, crons and URLs: requests that get past the schema. */
const PLAUSIBLE = [
  'fuzz',
  'fuzz-2',
  'default',
  'h',
  'viewer',
  'operator',
  'a.b:c',
  '5s',
  '250',
  '2030-01-01T00:00:00Z',
  '2030-06-01T00:00:00+02:00',
  '2030-01-01',
  '* * * * *',
  '0 0 * * MON-FRI',
  'UTC',
  'Europe/Berlin',
  'http://127.0.0.1:9/x',
  'echo hi',
  'correct horse battery',
];

/** What a query string or path can say in place of a number. */
const NUMERIC_STRINGS = [
  'Infinity',
  '-Infinity',
  '1e309',
  'NaN',
  '1e3',
  '0x10',
  ' 5',
  '1.5',
  '-1',
  '0',
  '99999999999999999999',
];

const hostileString = fc.oneof(
  fc.constantFrom(...HOSTILE_STRINGS),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
);

const hostileNumber = fc.oneof(
  fc.constantFrom(0, -1, 1, 2 ** 31, 2 ** 53, -(2 ** 53), 1e308, -0, 0.5, Number.MAX_SAFE_INTEGER + 2),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

/** Any JSON value, sometimes nested deep. */
const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 6, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.integer({ min: 30, max: 200 }).map((depth) => nest(depth)) },
  { weight: 1, arbitrary: hostileString },
  { weight: 1, arbitrary: hostileNumber },
);

function nest(depth: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = i % 2 ? [value] : { a: value };
  return value;
}

function typesOf(schema: Schema): string[] {
  return [schema.type ?? []].flat();
}

/**
 * A value of the schema as far as a generator can tell. `hostile`: now and then a hostile value in
 * any field, an unknown field, a required field left out.
 */
function arbitraryFor(schema: Schema | undefined, hostile: boolean, depth = 0): fc.Arbitrary<unknown> {
  if (!schema || depth > 4) return hostile ? anyJson : fc.constant({});
  if (!hostile) return fitting(schema, false, depth);
  return fc.oneof({ weight: 12, arbitrary: fitting(schema, true, depth) }, { weight: 1, arbitrary: anyJson });
}

function fitting(schema: Schema, hostile: boolean, depth: number): fc.Arbitrary<unknown> {
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const branches = schema.anyOf ?? schema.oneOf;
  if (branches) return fc.oneof(...branches.map((branch) => arbitraryFor(branch, hostile, depth + 1)));
  const types = typesOf(schema);
  const arbitraries: fc.Arbitrary<unknown>[] = [];
  for (const type of types.length > 0 ? types : ['any']) {
    if (type === 'string') {
      const random = fc.string({
        minLength: schema.minLength ?? 0,
        maxLength: Math.min(schema.maxLength ?? 30, 30),
      });
      arbitraries.push(
        hostile
          ? fc.oneof(
              { weight: 6, arbitrary: fc.constantFrom(...PLAUSIBLE) },
              { weight: 1, arbitrary: random },
              { weight: 2, arbitrary: hostileString },
            )
          : fc.oneof(
              { weight: 6, arbitrary: fc.constantFrom(...PLAUSIBLE) },
              { weight: 1, arbitrary: random },
            ),
      );
    } else if (type === 'integer' || type === 'number') {
      const min = schema.minimum ?? -1000;
      const max = schema.maximum ?? Math.max(min + 1000, 1000);
      const fits = fc.integer({ min: Math.ceil(min), max: Math.floor(max) });
      arbitraries.push(hostile ? fc.oneof(fits, hostileNumber) : fits);
    } else if (type === 'boolean') arbitraries.push(fc.boolean());
    else if (type === 'null') arbitraries.push(fc.constant(null));
    else if (type === 'array') {
      arbitraries.push(
        fc.array(arbitraryFor(schema.items, hostile, depth + 1), {
          maxLength: Math.min(schema.maxItems ?? 4, 4),
        }),
      );
    } else if (type === 'object') arbitraries.push(objectOf(schema, hostile, depth));
    else arbitraries.push(hostile ? anyJson : fc.jsonValue({ maxDepth: 2 }));
  }
  return fc.oneof(...arbitraries);
}

function objectOf(schema: Schema, hostile: boolean, depth: number): fc.Arbitrary<unknown> {
  const properties = schema.properties ?? {};
  const required = new Set(schema.required ?? []);
  const fields = Object.fromEntries(
    Object.entries(properties).map(([name, field]) => [name, arbitraryFor(field, hostile, depth + 1)]),
  );
  const known = fc.record(fields, {
    requiredKeys: Object.keys(fields).filter((name) => required.has(name)),
  });
  if (!hostile) return known;
  // Sometimes a required field is missing or an unknown one is added.
  return fc
    .tuple(
      known,
      fc.option(fc.tuple(hostileString, anyJson), { freq: 5 }),
      required.size > 0 ? fc.option(fc.constantFrom(...required), { freq: 8 }) : fc.constant(null),
    )
    .map(([value, extra, drop]) => {
      const object = { ...(value as Record<string, unknown>) };
      if (extra) object[extra[0]] = extra[1];
      if (drop) delete object[drop];
      return object;
    });
}

/** Every place in a JSON value that can be replaced: [parent, key] pairs. */
function places(value: unknown, found: Array<[Record<string, unknown> | unknown[], string | number]> = []) {
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      found.push([value, i]);
      places(item, found);
    });
  } else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      found.push([value as Record<string, unknown>, key]);
      places(item, found);
    }
  }
  return found;
}

/** A value of the schema with one thing wrong: one field hostile, removed, or one field added. */
function mutated(schema: Schema): fc.Arbitrary<unknown> {
  return fc
    .tuple(
      arbitraryFor(schema, false),
      fc.nat(),
      fc.oneof(anyJson, hostileString, hostileNumber),
      fc.constantFrom('replace', 'replace', 'replace', 'drop', 'add'),
    )
    .map(([value, pick, hostile, how]) => {
      const all = places(value);
      if (all.length === 0) return hostile;
      const [parent, key] = all[pick % all.length]!;
      if (how === 'drop' && !Array.isArray(parent)) delete (parent as Record<string, unknown>)[key as string];
      else if (how === 'add' && !Array.isArray(parent))
        (parent as Record<string, unknown>).unknownField = hostile;
      else (parent as Record<string | number, unknown>)[key] = hostile;
      return value;
    });
}

/** A request to one route: path values, query values and a body (JSON, or raw text). */
function requestOf(route: Route) {
  const pathValue = (p: Parameter) =>
    fc.oneof(
      { weight: 3, arbitrary: fitting(p.schema ?? { type: 'string' }, true, 0).map(String) },
      { weight: 1, arbitrary: fc.constantFrom('fuzz', '1', '2', ...NUMERIC_STRINGS) },
      { weight: 2, arbitrary: hostileString },
    );
  const path = fc.tuple(...route.pathParams.map(pathValue));
  const query = fc.record(
    Object.fromEntries(
      route.query.map((p) => [
        p.name,
        fc.oneof(
          fitting(p.schema ?? { type: 'string' }, true, 0).map(String),
          hostileString,
          fc.constantFrom(...NUMERIC_STRINGS),
        ),
      ]),
    ),
    { requiredKeys: [] },
  );
  const body = route.body
    ? fc.oneof(
        { weight: 3, arbitrary: arbitraryFor(route.body, false).map((value) => ({ json: value })) },
        { weight: 4, arbitrary: mutated(route.body).map((value) => ({ json: value })) },
        { weight: 2, arbitrary: arbitraryFor(route.body, true).map((value) => ({ json: value })) },
        {
          weight: 1,
          arbitrary: fc.constantFrom(
            { raw: '{"a":', type: 'application/json' },
            { raw: '', type: 'application/json' },
            { raw: '<a/>', type: 'text/xml' },
            { raw: `{"params":{"a":${'['.repeat(10_000)}${']'.repeat(10_000)}}}`, type: 'application/json' },
            { raw: '{"__proto__":{"admin":true}}', type: 'application/json' },
            { raw: 'null', type: 'application/json' },
          ),
        },
      )
    : fc.constant(null);
  const headers = fc.record(
    Object.fromEntries(
      route.headers.map((p) => [
        p.name,
        fc.oneof(
          fitting(p.schema ?? { type: 'string' }, true, 0).map(String),
          hostileString,
          fc.constantFrom('"1"', 'W/"1"', '*', '"0"', '"99999999999999999999"', ...NUMERIC_STRINGS),
        ),
      ]),
    ),
    { requiredKeys: [] },
  );
  return fc.record({ path, query, headers, body, caller: fc.nat({ max: 1000 }) });
}

// The store's fingerprint -----------------------------------------------------

/** Jobs, calendars, users, tokens, workers, group limits, manual runs, log lines, audit entries. */
const SQLITE_FINGERPRINT = `SELECT
  (SELECT group_concat(id || name || description || group_name || handler || params || trigger || retry
     || timeout_ms || priority || paused || schedule || dispatch || coalesce(task, '') || version, '|') FROM jobs),
  (SELECT group_concat(name || definition, '|') FROM calendars),
  (SELECT group_concat(name || role || password_hash, '|') FROM users),
  (SELECT group_concat(name || role || coalesce(groups, ''), '|') FROM api_tokens),
  (SELECT count(*) || max(registered_at) FROM workers),
  (SELECT group_concat(namespace || group_name || coalesce(max_concurrency, '') || coalesce(rate_limit, '')
     || coalesce(rate_per_ms, ''), '|') FROM namespace_group_limits),
  (SELECT count(*) FROM runs WHERE cause = 'manual'), (SELECT count(*) FROM run_logs),
  (SELECT count(*) FROM audit_log)`;

/** The same on PostgreSQL (JSON columns read as text). */
const POSTGRES_FINGERPRINT = `SELECT
  (SELECT string_agg(id || name || description || group_name || handler || params::text || trigger::text
     || retry::text || timeout_ms || priority || paused || schedule::text || dispatch::text
     || coalesce(task::text, '') || version, '|' ORDER BY id) FROM jobs),
  (SELECT string_agg(name || definition::text, '|' ORDER BY name) FROM calendars),
  (SELECT string_agg(name || role || password_hash, '|' ORDER BY name) FROM users),
  (SELECT string_agg(name || role || coalesce(groups::text, ''), '|' ORDER BY id) FROM api_tokens),
  (SELECT count(*) || coalesce(max(registered_at)::text, '') FROM workers),
  (SELECT string_agg(namespace || group_name || coalesce(max_concurrency::text, '') || coalesce(rate_limit::text, '')
     || coalesce(rate_per_ms::text, ''), '|' ORDER BY namespace, group_name) FROM namespace_group_limits),
  (SELECT count(*) FROM runs WHERE cause = 'manual'), (SELECT count(*) FROM run_logs),
  (SELECT count(*) FROM audit_log)`;

function hash(rows: unknown): string {
  return createHash('sha256').update(JSON.stringify(rows)).digest('hex');
}

// The property ------------------------------------------------------------------

/** Requests per dialect: SQLite gets more (its node is in-process and cheap to fingerprint). */
const RUNS = {
  sqlite: Number(process.env.KAIROS_FUZZ_RUNS ?? 3000),
  postgres: Number(process.env.KAIROS_FUZZ_RUNS ?? 2000),
};

describe.each(['sqlite', 'postgres'] as const)(
  'the API on %s under random and hostile requests',
  (dialect) => {
    let target: Target;
    beforeAll(async () => {
      target = await startTarget(dialect);
    });

    it('never answers 5xx, answers every 4xx in the documented shape, and stores nothing on a refusal', async () => {
      const { routes, callers, fingerprint } = target;
      const counts = { requests: 0, '2xx': 0, '4xx': 0, '5xx': 0, other: 0 };
      expect(routes.length).toBeGreaterThan(40);
      const codes = new Map<string, number>();
      const failures: string[] = [];
      const started = Date.now();
      const arbitrary = fc
        .integer({ min: 0, max: routes.length - 1 })
        .chain((index) => requestOf(routes[index]!).map((request) => ({ route: routes[index]!, request })));

      await fc.assert(
        fc.asyncProperty(arbitrary, async ({ route, request }) => {
          let url = route.path;
          route.pathParams.forEach((p, i) => {
            const value = request.path[i] as string;
            // A raw `%ff` stays raw (bad encoding); anything else is encoded as a client would.
            url = url.replace(
              `{${p.name}}`,
              value === '%ff' ? value : encodeURIComponent(Buffer.from(value).toString()),
            );
          });
          const search = new URLSearchParams(request.query as Record<string, string>).toString();
          const caller = callers[request.caller % callers.length]!;
          const headers: Record<string, string> = caller ? { authorization: `Bearer ${caller}` } : {};
          // Header values an HTTP client can send at all (no line breaks, NUL or non-Latin-1).
          for (const [name, value] of Object.entries(request.headers as Record<string, string>))
            if (/^[\t\u0020-\u007e\u0080-\u00ff]*$/.test(value)) headers[name] = value;
          let body: string | undefined;
          const b = request.body as { json?: unknown; raw?: string; type?: string } | null;
          if (b && 'raw' in b) {
            body = b.raw;
            headers['content-type'] = b.type!;
          } else if (b) {
            body = JSON.stringify(b.json ?? null);
            headers['content-type'] = 'application/json';
          }
          // A poll would wait: ask it not to.
          if (route.path.endsWith('/poll') && b && 'json' in b && typeof b.json === 'object' && b.json) {
            (b.json as Record<string, unknown>).waitMs = 0;
            body = JSON.stringify(b.json);
          }
          const before = route.method === 'GET' ? '' : await fingerprint();
          const response = await fetch(`${target.url}${url}${search ? `?${search}` : ''}`, {
            method: route.method,
            headers,
            body,
          });
          const text = await response.text();
          counts.requests++;
          const label = `${route.method} ${url}${search ? `?${search}` : ''} ${body?.slice(0, 200) ?? ''}`;
          if (response.status >= 500) {
            counts['5xx']++;
            failures.push(`${response.status} ${label}: ${text.slice(0, 300)}`);
            return;
          }
          if (response.status >= 200 && response.status < 300) {
            counts['2xx']++;
            // Quotas a fuzzed request set would refuse most of what follows (3 requests a second):
            // take them off again, so that the rest of the run still reaches every route.
            if (route.method === 'PUT' && route.path.endsWith('/quotas')) {
              await fetch(`${target.url}${url}`, {
                method: 'PUT',
                headers: { authorization: 'Bearer admin-t', 'content-type': 'application/json' },
                body: '{}',
              });
            }
            return;
          }
          if (response.status < 400) {
            counts.other++;
            return;
          }
          counts['4xx']++;
          let parsed: { error?: { code?: unknown; message?: unknown } } = {};
          try {
            parsed = JSON.parse(text);
          } catch {
            failures.push(`not JSON: ${response.status} ${label}: ${text.slice(0, 200)}`);
            return;
          }
          const code = parsed.error?.code;
          codes.set(String(code), (codes.get(String(code)) ?? 0) + 1);
          const documented = typeof code === 'string' && code in ERROR_CODES;
          const statusOk =
            documented &&
            (ERROR_CODES[code as keyof typeof ERROR_CODES] === response.status ||
              (ALSO_ANSWERED_AS[code] ?? []).includes(response.status));
          if (
            !documented ||
            !statusOk ||
            typeof parsed.error?.message !== 'string' ||
            Object.keys(parsed).length !== 1
          ) {
            failures.push(`shape: ${response.status} ${label}: ${text.slice(0, 300)}`);
          }
          if (route.method !== 'GET' && (await fingerprint()) !== before) {
            failures.push(`stored junk: ${response.status} ${label}: ${text.slice(0, 300)}`);
          }
        }),
        {
          numRuns: RUNS[dialect],
          seed: process.env.KAIROS_FUZZ_SEED ? Number(process.env.KAIROS_FUZZ_SEED) : undefined,
        },
      );
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      console.log(
        `api fuzz on ${dialect}: ${routes.length} operations (${routes.filter((r) => r.headers.length > 0).length} with header parameters), ${counts.requests} requests in ${seconds} s: ` +
          `${counts['2xx']} 2xx, ${counts['4xx']} 4xx, ${counts['5xx']} 5xx, ${counts.other} other; ` +
          `codes ${JSON.stringify(Object.fromEntries([...codes].sort((a, b) => b[1] - a[1])))}`,
      );
      expect(failures.slice(0, 20)).toEqual([]);
      expect(counts['5xx']).toBe(0);
    }, 120_000);
  },
);
