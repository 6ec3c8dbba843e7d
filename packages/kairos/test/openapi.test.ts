import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Validator } from '@seriousme/openapi-schema-validator';
import openapiTS, { astToString } from 'openapi-typescript';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';
import type { KairosNode } from '../src/node.ts';
import { startTestNode, tempDir } from './helpers.ts';

interface Operation {
  operationId?: string;
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown }> }>;
}
type Document = { openapi: string; paths: Record<string, Record<string, Operation>> };

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLIENT = join(ROOT, 'packages/client/src/index.ts');
const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options']);

let node: KairosNode;
let document: Document;

beforeAll(async () => {
  ({ node } = await startTestNode());
  document = (await (await fetch(`${node.url}/openapi.json`)).json()) as Document;
});

function operations(): Array<{ key: string; operation: Operation }> {
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.has(method))
      .map(([method, operation]) => ({ key: `${method.toUpperCase()} ${path}`, operation })),
  );
}

describe('the OpenAPI document at /openapi.json', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(
      structuredClone(document) as Parameters<Validator['validate']>[0],
    );
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(document.openapi).toBe('3.1.0');
  });

  it('lists every API route the node serves, and only those', () => {
    const served = node.routes
      .filter((route) => route.url.startsWith('/v1/'))
      .map((route) => `${route.method} ${route.url.replace(/:(\w+)/g, '{$1}')}`);
    const documented = operations().map((op) => op.key);
    expect(new Set(served).size).toBe(served.length);
    expect(documented.filter((key) => key.split(' ')[1]!.startsWith('/v1/')).sort()).toEqual(served.sort());
    // Routes outside /v1 (metrics, the document itself, the console's files) are hidden unless described.
    const all = new Set(
      node.routes.map((route) => `${route.method} ${route.url.replace(/:(\w+)/g, '{$1}')}`),
    );
    for (const key of documented) expect(all, key).toContain(key);
  });

  it('names every operation and describes every answer with a body schema', () => {
    const ids = new Set<string>();
    for (const { key, operation } of operations()) {
      expect(operation.operationId, `${key}: operationId`).toMatch(/^[a-z][A-Za-z]+$/);
      expect(ids.has(operation.operationId!), `${key}: operationId ${operation.operationId} twice`).toBe(
        false,
      );
      ids.add(operation.operationId!);
      const responses = operation.responses ?? {};
      // A 2xx, or a redirect for the browser routes of single sign-on.
      const success = Object.keys(responses).filter((status) => /^(2\d\d|302|303)$/.test(status));
      expect(success.length, `${key}: no 2xx answer`).toBeGreaterThan(0);
      for (const status of Object.keys(responses)) {
        const response = responses[status]!;
        expect(response.description, `${key} ${status}: description`).not.toBe('Default Response');
        if (status === '204' || status === '302' || status === '303') {
          expect(response.content, `${key} ${status} has a body`).toBeUndefined();
          continue;
        }
        const media = Object.values(response.content ?? {});
        expect(media.length, `${key} ${status}: no content`).toBe(1);
        expect(media[0]!.schema, `${key} ${status}: no schema`).toBeDefined();
      }
      for (const status of ['4XX', '5XX']) {
        const schema = responses[status]?.content?.['application/json']?.schema as
          | { properties?: { error?: { required?: string[] } } }
          | undefined;
        expect(schema?.properties?.error?.required, `${key} ${status}: error body`).toEqual([
          'code',
          'message',
        ]);
      }
    }
  });

  it('describes answers without anyOf, which the serializer would validate value by value', () => {
    // fast-json-stringify compiles a validator for each anyOf branch on the first answer of a route,
    // blocking the event loop (over a second for a job on a loaded machine), and runs it per value.
    const unions: string[] = [];
    const walk = (schema: unknown, where: string): void => {
      if (typeof schema !== 'object' || schema === null) return;
      for (const keyword of ['anyOf', 'oneOf', 'allOf'])
        if (keyword in schema) unions.push(`${where}: ${keyword}`);
      for (const [key, value] of Object.entries(schema)) walk(value, `${where}/${key}`);
    };
    for (const { key, operation } of operations()) {
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        if (/^2\d\d$/.test(status)) walk(response.content?.['application/json']?.schema, `${key} ${status}`);
      }
    }
    expect(unions).toEqual([]);
  });

  it('generates TypeScript types that agree with the wire types of @kairos/client', async () => {
    const dir = tempDir('kairos-openapi-');
    writeFileSync(join(dir, 'api.ts'), astToString(await openapiTS(document as never)));
    writeFileSync(join(dir, 'usage.ts'), usage(CLIENT));
    const program = ts.createProgram([join(dir, 'api.ts'), join(dir, 'usage.ts')], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      allowImportingTsExtensions: true,
      verbatimModuleSyntax: true,
      skipLibCheck: true,
      lib: ['lib.es2023.d.ts', 'lib.dom.d.ts'],
      types: [],
    });
    const errors = ts.getPreEmitDiagnostics(program).map((d) => {
      const where = d.file
        ? `${d.file.fileName.split('/').pop()}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}`
        : '';
      return `${where} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
    expect(errors).toEqual([]);
  }, 120_000);
});

/**
 * A file that type-checks only when the generated types and the client's wire types agree:
 * `Same` where both sides are exact, `Fits` (the wire type fits the generated one) where the
 * document can only say "any JSON" (params, results, error details).
 */
function usage(client: string): string {
  return `
import type { paths } from './api.ts';
import type * as W from '${client}';

type Ok<P extends keyof paths, M extends keyof paths[P], S extends number> =
  paths[P][M] extends { responses: infer R }
    ? S extends keyof R ? R[S] extends { content: { 'application/json': infer B } } ? B : never : never
    : never;
type BodyOf<P extends keyof paths, M extends keyof paths[P]> =
  paths[P][M] extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;
type ErrorOf<P extends keyof paths, M extends keyof paths[P]> =
  paths[P][M] extends { responses: { '4XX': { content: { 'application/json': infer B } } } } ? B : never;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Fits<A, B> = [A] extends [B] ? true : false;

export const checks: true[] = [
  true as Same<Ok<'/v1/health', 'get', 200>, W.Health>,
  true as Same<Ok<'/v1/workers', 'get', 200>, { items: W.WorkerInfo[] }>,
  true as Same<Ok<'/v1/nodes', 'get', 200>, { items: W.NodeInfo[] }>,
  true as Same<Ok<'/v1/calendars/{name}', 'get', 200>, W.Calendar>,
  true as Same<Ok<'/v1/auth/me', 'get', 200>, W.Me>,
  true as Same<Ok<'/v1/auth/providers', 'get', 200>, W.AuthProviders>,
  true as Same<Ok<'/v1/users', 'get', 200>, { items: W.User[] }>,
  true as Same<Ok<'/v1/tokens', 'post', 201>, W.CreatedApiToken>,
  true as Same<Ok<'/v1/groups/{name}', 'put', 200>, W.GroupInfo>,
  true as Same<Ok<'/v1/jobs/{name}/skipped', 'get', 200>, W.Page<W.SkippedFires>>,
  true as Same<Ok<'/v1/preview', 'post', 200>, W.Preview>,
  true as Same<Ok<'/v1/jobs/{name}/backfill', 'post', 201>, W.BackfillResponse>,
  true as Same<Ok<'/v1/worker/register', 'post', 200>, W.RegisterResponse>,
  true as Same<Ok<'/v1/worker/{id}/report', 'post', 200>, W.ReportResponse>,
  true as Same<Ok<'/v1/stats/runs-per-minute', 'get', 200>, { items: W.MinuteStats[] }>,
  true as Fits<W.Job, Ok<'/v1/jobs/{name}', 'get', 200>>,
  true as Fits<W.Page<W.Job>, Ok<'/v1/jobs', 'get', 200>>,
  true as Fits<W.Run, Ok<'/v1/runs/{id}', 'get', 200>>,
  true as Fits<W.Page<W.Run>, Ok<'/v1/runs', 'get', 200>>,
  true as Fits<W.Run, Ok<'/v1/jobs/{name}/trigger', 'post', 201>>,
  true as Fits<W.PollResponse, Ok<'/v1/worker/{id}/poll', 'post', 200>>,
  true as Fits<W.Overview, Ok<'/v1/stats/overview', 'get', 200>>,
  true as Fits<W.RunLogPage, Ok<'/v1/runs/{id}/logs', 'get', 200>>,
  true as Fits<W.ErrorBody, ErrorOf<'/v1/jobs', 'post'>>,
  // Every request the client can type is one the node's request schema accepts.
  true as Fits<W.JobSpec, BodyOf<'/v1/jobs', 'post'>>,
  true as Fits<W.JobPatch, BodyOf<'/v1/jobs/{name}', 'patch'>>,
  true as Fits<W.PreviewRequest, BodyOf<'/v1/preview', 'post'>>,
  true as Fits<W.ReportRequest, BodyOf<'/v1/worker/{id}/report', 'post'>>,
  true as Fits<W.WorkerLogsRequest, BodyOf<'/v1/worker/{id}/logs', 'post'>>,
  true as Same<W.CalendarSpec, BodyOf<'/v1/calendars', 'post'>>,
  true as Same<W.RegisterRequest, BodyOf<'/v1/worker/register', 'post'>>,
  true as Same<Ok<'/v1/alert-rules/{name}', 'get', 200>, W.AlertRule>,
  true as Same<Ok<'/v1/alert-channels/{name}', 'get', 200>, W.AlertChannel>,
  true as Same<Ok<'/v1/alerts', 'get', 200>, { items: W.AlertOpen[] }>,
  true as Fits<W.AlertDelivery, Ok<'/v1/alert-channels/{name}/test', 'post', 200>>,
  true as Same<W.AlertRuleSpec, BodyOf<'/v1/alert-rules', 'post'>>,
  true as Same<W.AlertChannelSpec, BodyOf<'/v1/alert-channels', 'post'>>,
  true as Same<W.AlertSilenceSpec, BodyOf<'/v1/alert-silences', 'post'>>,
];
`;
}
