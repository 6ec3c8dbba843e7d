// The child process of an isolated run (see isolated.ts): imports the handler's module, runs it
// once with a context whose log, progress and signal travel over IPC, sends how it ended, exits.
import { type Assignment, contextOfTrace } from '@kairos/client';
import { context } from '@opentelemetry/api';
import { createRunContext, type Handler } from './context.ts';
import { CancelledError, TimeoutError } from './errors.ts';
import type { ChildMessage, ParentMessage } from './isolated.ts';
import type { WorkerLogger } from './logger.ts';

const quiet: WorkerLogger = { debug() {}, info() {}, warn() {}, error() {} };
const controller = new AbortController();

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

process.on('message', (message: ParentMessage) => {
  if (message.type === 'abort') {
    const reason =
      message.name === 'TimeoutError'
        ? new TimeoutError(message.message, message.timeoutMs ?? 0)
        : new CancelledError(message.message);
    controller.abort(reason);
  } else if (message.type === 'run') {
    void run(message.module, message.exportName, message.assignment, message.startedAt);
  }
});
// The worker went away: nothing can be reported any more.
process.on('disconnect', () => process.exit(1));

async function run(
  module: string,
  exportName: string,
  assignment: Assignment,
  startedAt: number,
): Promise<void> {
  try {
    const loaded = (await import(module)) as Record<string, unknown>;
    const handler = (exportName === 'default' ? (loaded.default ?? loaded) : loaded[exportName]) as Handler;
    if (typeof handler !== 'function') {
      throw new TypeError(`module ${module} has no function export ${JSON.stringify(exportName)}`);
    }
    // The parent's attempt span, as W3C context: `ctx.trace`, and the parent of spans the module makes
    // when it registers a tracing SDK of its own in this process.
    const { traceparent, tracestate } = assignment;
    const trace = traceparent ? { traceparent, ...(tracestate ? { tracestate } : {}) } : null;
    const ctx = createRunContext(
      assignment,
      controller,
      startedAt,
      quiet,
      {
        log: (entry) =>
          void send({ type: 'log', level: entry.level, message: entry.message, fields: entry.fields }),
        progress: (p) => void send({ type: 'progress', value: p.value, message: p.message }),
      },
      trace,
    );
    const value = await context.with(contextOfTrace(trace), handler, undefined, ctx);
    await send({ type: 'result', ok: true, value: JSON.parse(JSON.stringify(value ?? null)) });
  } catch (error) {
    const e = error as { name?: unknown; message?: unknown; stack?: unknown; retryAfterMs?: unknown };
    await send({
      type: 'result',
      ok: false,
      error: {
        name: typeof e?.name === 'string' ? e.name : 'Error',
        message: typeof e?.message === 'string' ? e.message : String(error),
        stack: typeof e?.stack === 'string' ? e.stack : undefined,
        retryAfterMs: typeof e?.retryAfterMs === 'number' ? e.retryAfterMs : undefined,
      },
    });
  }
  process.exit(0);
}
