import type { HttpTaskSpec, Json } from '@kairos/client';
import type { Handler, RunContext } from './context.ts';
import { NonRetryableError } from './errors.ts';

/** How a worker runs `http` tasks (`WorkerOptions.tasks.http`). */
export interface HttpConfig {
  /** URL prefixes this worker may call, e.g. `https://api.example.com/`; anything else is refused. */
  allow: readonly string[];
}

/** Bytes of the response body kept as the run's result. */
const BODY_LIMIT = 16 * 1024;

/** The handler of `kairos:http`: calls the job's URL if this worker's allow-list lets it. */
export function httpHandler(config: HttpConfig): Handler {
  const allow = config.allow.map((prefix) => new URL(prefix).href);
  return async (ctx) => {
    const task = ctx.task;
    if (task?.kind !== 'http') throw new NonRetryableError('the run has no http task');
    const url = new URL(task.url).href;
    if (!allow.some((prefix) => underPrefix(url, prefix))) {
      throw new NonRetryableError(`this worker may not call ${url} (not in its allow-list)`);
    }
    return call(task, url, ctx);
  };
}

/**
 * Whether `url` is `prefix` or below it: `https://a.example/v1` allows `https://a.example/v1/x` and
 * `https://a.example/v1?q`, not `https://a.example/v1evil` (nor `https://a.example.evil/`).
 */
export function underPrefix(url: string, prefix: string): boolean {
  if (!url.startsWith(prefix)) return false;
  if (url.length === prefix.length || prefix.endsWith('/')) return true;
  return '/?#'.includes(url[prefix.length]!);
}

async function call(task: HttpTaskSpec, url: string, ctx: RunContext): Promise<Json> {
  const method = task.method ?? 'GET';
  const started = Date.now();
  const timeoutMs = typeof task.timeout === 'number' ? task.timeout : 30_000;
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]);
  // Redirects are not followed: a redirect could leave the allow-list.
  const response = await fetch(url, {
    method,
    headers: { ...traceHeaders(ctx), ...task.headers },
    body: task.body,
    signal,
    redirect: 'manual',
  });
  const text = await response.text();
  ctx.log.info(`${method} ${url} -> ${response.status} in ${Date.now() - started}ms`);
  const body = parseBody(text, response.headers.get('content-type'));
  const expected = task.expectStatus ?? [];
  const ok = expected.length > 0 ? expected.includes(response.status) : response.ok;
  if (!ok) {
    const error = new Error(`${method} ${url} answered ${response.status}: ${text.slice(0, 500)}`);
    error.name = 'UnexpectedStatus';
    throw error;
  }
  return { status: response.status, body };
}

function parseBody(text: string, type: string | null): Json {
  if (type?.includes('json') && text.length <= BODY_LIMIT) {
    try {
      return JSON.parse(text) as Json;
    } catch {
      // Not JSON after all: kept as text.
    }
  }
  return text.length <= BODY_LIMIT ? text : `${text.slice(0, BODY_LIMIT)}…`;
}

/** The attempt span's W3C context as `traceparent`/`tracestate` headers: the called service continues the trace. */
function traceHeaders(ctx: RunContext): Record<string, string> {
  if (!ctx.trace) return {};
  return {
    traceparent: ctx.trace.traceparent,
    ...(ctx.trace.tracestate ? { tracestate: ctx.trace.tracestate } : {}),
  };
}
