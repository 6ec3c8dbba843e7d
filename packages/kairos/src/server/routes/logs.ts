import {
  IdParam,
  type JsonObject,
  LogQuery,
  LogStreamQuery,
  type RunLogLine,
  type RunLogPage,
  RunLogPageSchema,
  type RunProgress,
  type WorkerLogsRequest,
  WorkerLogsRequestSchema,
  type WorkerLogsResponse,
  WorkerLogsResponseSchema,
  WorkerParam,
} from '@kairos/client';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { parseRfc3339 } from '../../core/instant.ts';
import { RUN_LOG_LIMITS } from '../../core/log-limits.ts';
import { KairosError } from '../../errors.ts';
import type { RunLogBatch, RunLogRecord, RunProgressRecord, Store } from '../../store/store.ts';
import { answers } from '../answers.ts';
import type { NodeContext } from '../context.ts';

const FINAL = new Set(['succeeded', 'failed', 'timed_out', 'cancelled']);
/** A follower re-reads the store this often without an event (a NOTIFY lost between nodes). */
const STREAM_BACKSTOP_MS = 1000;
/** An idle stream sends a comment this often, so that proxies keep it open. */
const STREAM_PING_MS = 15_000;
/**
 * An open stream checks its caller's credential and role again this often: a deleted token, an
 * ended session or a role taken away ends it (`error` event), not only the run's end.
 */
const STREAM_REAUTH_MS = 5000;
/** What ends a stream when the caller is checked again: no credential, no role, no namespace. */
const ACCESS_ENDED = new Set(['UNAUTHORIZED', 'FORBIDDEN', 'NAMESPACE_NOT_FOUND', 'CSRF_FAILED']);
const STREAM_PAGE = 1000;
/** The stream's answer, for the OpenAPI document (the route writes it itself). */
const LogStream = {
  description: 'Server-Sent Events: `log` (a RunLogLine), `progress` (a RunProgress), a last `end`.',
  content: { 'text/event-stream': { schema: Type.String() } },
};

/**
 * Run logs: workers send lines and progress (`POST /v1/worker/:id/logs`); people read them page by
 * page (`GET /v1/runs/:id/logs?after=seq`) or follow them live with Server-Sent Events
 * (`GET /v1/runs/:id/logs/stream`: `log`, `progress` and a last `end` event; `Last-Event-ID` resumes).
 */
export function logRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const { store, clock } = ctx;
  const read = { onRequest: ctx.requireRole('viewer') };
  const worker = { onRequest: ctx.requireRole('worker') };
  // Open streams end when the node closes, so that close() does not wait for followers.
  const closing = new AbortController();
  app.addHook('onClose', async () => closing.abort());

  app.post<{ Params: Static<typeof WorkerParam>; Body: WorkerLogsRequest }>(
    '/v1/worker/:id/logs',
    {
      ...worker,
      schema: {
        operationId: 'sendLogs',
        tags: ['worker protocol'],
        params: WorkerParam,
        body: WorkerLogsRequestSchema,
        response: answers({ 200: WorkerLogsResponseSchema }),
      },
    },
    async (request) => {
      const batch = toBatch(request.body);
      const accepted = await store.appendRunLogs(
        request.params.id,
        batch,
        RUN_LOG_LIMITS.maxLinesPerRun,
        clock.now(),
      );
      const response: WorkerLogsResponse = { accepted };
      return response;
    },
  );

  app.get<{ Params: Static<typeof IdParam>; Querystring: Static<typeof LogQuery> }>(
    '/v1/runs/:id/logs',
    {
      ...read,
      schema: {
        operationId: 'runLogs',
        tags: ['runs'],
        params: IdParam,
        querystring: LogQuery,
        response: answers({ 200: RunLogPageSchema }),
      },
    },
    async (request) => {
      const id = request.params.id;
      const run = await store.getRun(id);
      if (!run) throw new KairosError('RUN_NOT_FOUND', `no run ${id}`);
      const limit = request.query.limit ?? 1000;
      const lines = await store.runLogs(id, request.query.after ?? 0, limit);
      const page: RunLogPage = {
        items: lines.map(lineView),
        next: lines.length === limit ? lines[lines.length - 1]!.seq : null,
        progress: progressView(await store.runProgress(id)),
        finished: FINAL.has(run.status),
      };
      return page;
    },
  );

  app.get<{ Params: Static<typeof IdParam>; Querystring: Static<typeof LogStreamQuery> }>(
    '/v1/runs/:id/logs/stream',
    {
      ...read,
      schema: {
        operationId: 'followRunLogs',
        tags: ['runs'],
        params: IdParam,
        querystring: LogStreamQuery,
        response: { ...answers({}), 200: LogStream },
      },
    },
    async (request, reply) => {
      const id = request.params.id;
      if (!(await store.getRun(id))) throw new KairosError('RUN_NOT_FOUND', `no run ${id}`);
      const resume = Number(request.headers['last-event-id']);
      const after = request.query.after ?? (Number.isInteger(resume) && resume > 0 ? resume : 0);
      const gone = new AbortController();
      const onClose = () => gone.abort();
      request.raw.socket.once('close', onClose);
      closing.signal.addEventListener('abort', onClose, { once: true });
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      // The answer's head now, not with the first event: a follower of a quiet run learns at once
      // that the stream is open.
      res.flushHeaders();
      // The caller as checked when the stream opened; checked again while it stays open.
      const stillAllowed = async (): Promise<boolean> => {
        request.principal = null;
        try {
          await ctx.requireRole('viewer')(request);
          return true;
        } catch (error) {
          if (error instanceof KairosError && ACCESS_ENDED.has(error.code)) return false;
          // A store outage or a quota refusal says nothing of the caller's access: follow on.
          return true;
        }
      };
      try {
        await follow(
          store,
          id,
          after,
          gone.signal,
          stillAllowed,
          (event, data, seq) => {
            res.write(
              `${seq === undefined ? '' : `id: ${seq}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`,
            );
          },
          () => res.write(': ping\n\n'),
        );
      } catch (error) {
        request.log.warn({ err: error, runId: id }, 'log stream ended by an error');
        if (!res.writableEnded)
          res.write(`event: error\ndata: ${JSON.stringify({ message: 'stream failed' })}\n\n`);
      } finally {
        request.raw.socket.off('close', onClose);
        closing.signal.removeEventListener('abort', onClose);
        res.end();
      }
    },
  );
}

/**
 * Sends a run's lines after `after` as they are stored, and its progress when it changes, until
 * the run has ended and every line was sent (`end`), `signal` aborts, or the caller may no longer
 * read it (`error`, checked every STREAM_REAUTH_MS).
 */
async function follow(
  store: Store,
  runId: number,
  after: number,
  signal: AbortSignal,
  stillAllowed: () => Promise<boolean>,
  send: (event: 'log' | 'progress' | 'end' | 'error', data: unknown, seq?: number) => void,
  ping: () => void,
): Promise<void> {
  let wake: (() => void) | undefined;
  const unsubscribe = store.subscribe((event) => {
    if (event.type === 'logs' && event.runId === runId) wake?.();
  });
  const onAbort = () => wake?.();
  signal.addEventListener('abort', onAbort, { once: true });
  let cursor = after;
  let progressAt = -1;
  let idleSince = Date.now();
  let checkedAt = Date.now();
  try {
    while (!signal.aborted) {
      if (Date.now() - checkedAt >= STREAM_REAUTH_MS) {
        if (!(await stillAllowed())) {
          send('error', { code: 'UNAUTHORIZED', message: 'access to this run ended: the stream is closed' });
          return;
        }
        checkedAt = Date.now();
      }
      // Read the status first: lines stored before it ended are all read below.
      const run = await store.getRun(runId);
      const ended = !run || FINAL.has(run.status);
      for (;;) {
        const lines = await store.runLogs(runId, cursor, STREAM_PAGE);
        for (const line of lines) send('log', lineView(line), line.seq);
        if (lines.length > 0) {
          cursor = lines[lines.length - 1]!.seq;
          idleSince = Date.now();
        }
        if (lines.length < STREAM_PAGE || signal.aborted) break;
      }
      const progress = await store.runProgress(runId);
      if (progress && progress.updatedAt !== progressAt) {
        progressAt = progress.updatedAt;
        send('progress', progressView(progress));
      }
      if (ended) {
        send('end', { status: run?.status ?? 'deleted', lastSeq: cursor });
        return;
      }
      if (Date.now() - idleSince >= STREAM_PING_MS) {
        ping();
        idleSince = Date.now();
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, STREAM_BACKSTOP_MS);
        function done() {
          clearTimeout(timer);
          wake = undefined;
          resolve();
        }
        wake = done;
        if (signal.aborted) done();
      });
    }
  } finally {
    unsubscribe();
    signal.removeEventListener('abort', onAbort);
  }
}

function toBatch(body: WorkerLogsRequest): RunLogBatch {
  return {
    logs: body.logs.map((entry) => {
      const time = parseRfc3339(entry.time);
      if (time === null) {
        throw new KairosError(
          'VALIDATION_FAILED',
          `logs: time ${JSON.stringify(entry.time)} is not an RFC 3339 instant with an offset`,
          {
            field: 'logs.time',
          },
        );
      }
      return {
        runId: entry.runId,
        attempt: entry.attempt,
        level: entry.level,
        message: entry.message,
        fields: limitFields(entry.fields),
        time,
      };
    }),
    progress: (body.progress ?? []).map((p) => ({
      runId: p.runId,
      attempt: p.attempt,
      value: p.value,
      message: p.message ?? null,
    })),
  };
}

/** Fields over the limit are replaced by a note rather than failing the batch (and its neighbours). */
function limitFields(fields: JsonObject | undefined): JsonObject | null {
  if (fields === undefined) return null;
  const bytes = Buffer.byteLength(JSON.stringify(fields));
  return bytes <= RUN_LOG_LIMITS.maxFieldsBytes
    ? fields
    : { truncated: true, bytes, limit: RUN_LOG_LIMITS.maxFieldsBytes };
}

function lineView(line: RunLogRecord): RunLogLine {
  const view: RunLogLine = {
    seq: line.seq,
    attempt: line.attempt,
    time: new Date(line.time).toISOString(),
    level: line.level,
    message: line.message,
  };
  if (line.fields) view.fields = line.fields;
  return view;
}

function progressView(progress: RunProgressRecord | null): RunProgress | null {
  if (!progress) return null;
  return {
    attempt: progress.attempt,
    value: progress.value,
    message: progress.message,
    updatedAt: new Date(progress.updatedAt).toISOString(),
  };
}
