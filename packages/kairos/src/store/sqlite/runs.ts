// Runs on SQLite: enqueue, trigger, read, list and cancel (the Store contract's Runs section).
//
// An attempt's row is written once, when the attempt ends; a running attempt is its run's row
// (attempt, worker, start). Reads of attempts take both.

import type { JsonObject } from '@kairos/client';
import { idempotencyConflict, sameRunRequest } from '../../core/manual-run.ts';
import { KairosError } from '../../errors.ts';
import type { AuditEntry } from '../access.ts';
import {
  type AttemptRow,
  attemptFromRow,
  json,
  RUN_COLUMNS,
  RUN_SUMMARY_COLUMNS,
  type RunRow,
  runFromRow,
  traceColumn,
} from '../rows.ts';
import type {
  AttemptRecord,
  ClaimedRun,
  EnqueueRequest,
  MaxQueuedRuns,
  PollHandOff,
  RunQuery,
  RunRecord,
  RunTimingRequest,
  TriggerRunRequest,
  WaitingPoll,
} from '../store.ts';
import { writeAudit } from './access.ts';
import { endRun } from './attempts.ts';
import { shardNewRuns } from './broadcasts.ts';
import type { SqliteConnection } from './connection.ts';
import { dispatchRuns } from './dispatch.ts';
import * as hot from './hot-statements.ts';
import * as quotas from './quotas.ts';

/**
 * The attempts of run @run in order: the ended ones' rows, then the running one from the run row,
 * and the one that succeeded from the run row too (an attempt that succeeds ends its run and gets no
 * row of its own; runs that succeeded before that have one).
 */
const ATTEMPTS_OF_RUN = `SELECT a.run_id, a.attempt, a.worker_id, a.status, a.started_at, a.finished_at, a.error,
    l.outcome AS late_outcome, l.reported_at AS late_reported_at, l.error AS late_error
  FROM attempts a LEFT JOIN late_reports l ON l.run_id = a.run_id AND l.attempt = a.attempt WHERE a.run_id = @run
  UNION ALL
  SELECT id, attempt, worker_id, 'running', started_at, NULL, NULL, NULL, NULL, NULL FROM runs
  WHERE id = @run AND status = 'running'
  UNION ALL
  SELECT r.id, r.attempt, r.worker_id, 'succeeded', r.started_at, r.finished_at, NULL, NULL, NULL, NULL FROM runs r
  WHERE r.id = @run AND r.status = 'succeeded' AND r.worker_id IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.run_id = r.id AND a.attempt = r.attempt)
  ORDER BY attempt`;

export function enqueueRuns(
  c: SqliteConnection,
  jobId: number,
  requests: readonly EnqueueRequest[],
  now: number,
  maxQueuedRuns?: MaxQueuedRuns,
): number[] {
  const { ids, group } = c.run('enqueueRuns', () =>
    c.db
      .transaction(() => {
        const job = c.sql('SELECT group_name, retry FROM jobs WHERE id = ?').get(jobId) as
          | { group_name: string; retry: string }
          | undefined;
        if (!job) throw new KairosError('JOB_NOT_FOUND', `job ${jobId} does not exist`);
        const out: number[] = [];
        let inserted = 0;
        for (const request of requests) {
          const run = insertManualRun(c, jobId, request, request.params, request.priority, now);
          out.push(run.id);
          if (run.inserted) inserted++;
        }
        shardNewRuns((text) => c.sql(text), [jobId], now);
        // After sharding: a broadcast run's shards are queued runs too.
        if (maxQueuedRuns != null)
          quotas.checkQueuedRunsAfter((text) => c.sql(text), jobId, maxQueuedRuns, inserted);
        return { ids: out, group: job.group_name };
      })
      .immediate(),
  );
  c.emit({ type: 'runs', group });
  return ids;
}

export function triggerRun(
  c: SqliteConnection,
  name: string,
  request: TriggerRunRequest,
  now: number,
  audit?: AuditEntry,
  maxQueuedRuns?: MaxQueuedRuns,
  handOff?: PollHandOff,
  reserveAfterMs = 0,
): RunRecord | null {
  // Assigned inside the transaction (not narrowed to null here).
  let poll = null as WaitingPoll | null;
  let handed: ClaimedRun[] = [];
  let out: { run: RunRecord; group: string | null } | null;
  try {
    out = c.run('triggerRun', () =>
      c.db
        .transaction(() => {
          const job = c.sql('SELECT id, group_name, params, priority FROM jobs WHERE name = ?').get(name) as
            | { id: number; group_name: string; params: string; priority: number }
            | undefined;
          if (!job) return null;
          const { id, inserted } = insertManualRun(
            c,
            job.id,
            request,
            request.params ?? json<JsonObject>(job.params),
            request.priority ?? job.priority,
            now,
          );
          if (inserted) shardNewRuns((text) => c.sql(text), [job.id], now);
          if (inserted && maxQueuedRuns != null)
            quotas.checkQueuedRunsAfter((text) => c.sql(text), job.id, maxQueuedRuns, 1);
          writeAudit(c, audit);
          if (inserted && (request.availableAt ?? now) <= now) poll = handOff?.take(job.group_name) ?? null;
          if (poll) handed = claimForPoll(c, poll, now, reserveAfterMs);
          const row = c
            .sql(`SELECT ${RUN_COLUMNS} FROM runs r JOIN jobs j ON j.id = r.job_id WHERE r.id = ?`)
            .get(id) as RunRow;
          return { run: runFromRow(row), group: inserted ? job.group_name : null };
        })
        .immediate(),
    );
  } catch (error) {
    // Nothing was written: the poll claims again itself.
    poll?.give([]);
    throw error;
  }
  // Committed: the poll has its runs before anything else can throw.
  poll?.give(handed);
  if (out?.group && !handedAll(out.run, handed, poll)) c.emit({ type: 'runs', group: out.group });
  return out?.run ?? null;
}

/**
 * Whether a trigger's hand-off left nothing for another poll: its one run (not a broadcast's first
 * shard, whose other shards wait for other workers) went to the poll, which took fewer than it
 * asked for (a poll that took as many may have left more behind). Else the trigger raises its
 * group's event, as without a hand-off.
 */
function handedAll(run: RunRecord, handed: readonly ClaimedRun[], poll: WaitingPoll | null): boolean {
  return (
    poll !== null && run.shard === null && handed.length < poll.max && handed.some((c) => c.runId === run.id)
  );
}

/**
 * A waiting poll's claim inside the trigger's transaction (a savepoint of it). Nothing when its
 * worker is gone, or when the claim fails and the trigger's transaction goes on (the savepoint
 * rolled back): the trigger is written all the same, and the poll, given nothing, claims itself.
 */
function claimForPoll(
  c: SqliteConnection,
  poll: WaitingPoll,
  now: number,
  reserveAfterMs: number,
): ClaimedRun[] {
  try {
    return dispatchRuns(c, poll.workerId, poll.max, now, poll.random, poll.seq, reserveAfterMs);
  } catch (error) {
    if (c.db.inTransaction) return [];
    throw error;
  }
}

/**
 * Inserts one manual run, inside the caller's transaction; or answers the run its idempotency key
 * holds (IDEMPOTENCY_CONFLICT when asked for with other params or priority), after taking an
 * expired key from its old run.
 */
function insertManualRun(
  c: SqliteConnection,
  jobId: number,
  request: RunTimingRequest,
  params: JsonObject,
  priority: number,
  now: number,
): { id: number; inserted: boolean } {
  const key = request.idempotencyKey ?? null;
  if (key !== null) {
    const held = c.sql(hot.RUN_BY_IDEMPOTENCY_KEY).get(jobId, key) as
      | { id: number; params: string; priority: number; idempotency_expires_at: number | null }
      | undefined;
    if (held && held.idempotency_expires_at !== null && held.idempotency_expires_at <= now) {
      c.sql(hot.RELEASE_IDEMPOTENCY_KEY).run(held.id);
    } else if (held) {
      if (
        !sameRunRequest({ params: json<JsonObject>(held.params), priority: held.priority }, params, priority)
      )
        throw idempotencyConflict(key, held.id);
      return { id: held.id, inserted: false };
    }
  }
  const row = c
    .sql(hot.INSERT_MANUAL_RUN)
    .get(
      key,
      key === null ? null : (request.idempotencyExpiresAt ?? null),
      JSON.stringify(params),
      priority,
      now,
      request.availableAt ?? now,
      traceColumn(request.traceContext),
      jobId,
    ) as { id: number };
  return { id: row.id, inserted: true };
}

export function getRun(c: SqliteConnection, id: number): RunRecord | null {
  return c.run('getRun', () => {
    const row = c
      .sql(`SELECT ${RUN_COLUMNS} FROM runs r JOIN jobs j ON j.id = r.job_id WHERE r.id = ?`)
      .get(id) as RunRow | undefined;
    return row ? runFromRow(row) : null;
  });
}

export function getAttempts(c: SqliteConnection, runId: number): AttemptRecord[] {
  return c.run('getAttempts', () =>
    (c.sql(ATTEMPTS_OF_RUN).all({ run: runId }) as AttemptRow[]).map(attemptFromRow),
  );
}

export function listRuns(c: SqliteConnection, filter: RunQuery): RunRecord[] {
  return c.run('listRuns', () => {
    // SQLite plans a statement once, whatever is bound: `@x IS NULL OR …` would hide the time
    // range from runs_created, so the range predicates are written only when given.
    const range =
      (filter.createdSince === undefined ? '' : ' AND r.created_at >= @since') +
      (filter.createdUntil === undefined ? '' : ' AND r.created_at < @until');
    const rows = c
      .sql(
        `SELECT ${filter.summary ? RUN_SUMMARY_COLUMNS : RUN_COLUMNS} FROM runs r JOIN jobs j ON j.id = r.job_id
         WHERE (@job IS NULL OR r.job_id = @job) AND (@status IS NULL OR r.status = @status)
           AND (@worker IS NULL OR r.worker_id = @worker) AND (@before IS NULL OR r.id < @before)${range}
           AND (@namespace IS NULL OR r.namespace = @namespace)
         ORDER BY r.id DESC LIMIT @limit`,
      )
      .all({
        namespace: filter.namespace ?? null,
        job: filter.jobId ?? null,
        status: filter.status ?? null,
        worker: filter.workerId ?? null,
        before: filter.before ?? null,
        ...(filter.createdSince === undefined ? {} : { since: filter.createdSince }),
        ...(filter.createdUntil === undefined ? {} : { until: filter.createdUntil }),
        limit: filter.limit,
      }) as RunRow[];
    return rows.map(runFromRow);
  });
}

export function cancelRun(c: SqliteConnection, id: number, now: number): RunRecord | null {
  return c.run('cancelRun', () =>
    c.db
      .transaction(() => {
        const run = c.sql('SELECT status, attempt, worker_id, started_at FROM runs WHERE id = ?').get(id) as
          | { status: string; attempt: number; worker_id: string; started_at: number }
          | undefined;
        if (!run) return null;
        if (run.status !== 'queued' && run.status !== 'running') {
          throw new KairosError('RUN_FINISHED', `run ${id} already ended (${run.status})`);
        }
        const error = JSON.stringify({ name: 'Cancelled', message: 'cancelled through the API' });
        if (run.status === 'running') {
          c.sql(hot.END_ATTEMPTS).run(
            now,
            JSON.stringify([[id, run.attempt, run.worker_id, 'cancelled', run.started_at, error]]),
          );
        }
        endRun(c, id, 'cancelled', now, null, error);
        return getRunSync(c, id);
      })
      .immediate(),
  );
}

function getRunSync(c: SqliteConnection, id: number): RunRecord {
  return runFromRow(
    c
      .sql(`SELECT ${RUN_COLUMNS} FROM runs r JOIN jobs j ON j.id = r.job_id WHERE r.id = ?`)
      .get(id) as RunRow,
  );
}
