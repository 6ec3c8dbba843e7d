// Runs on PostgreSQL (the Store contract's "Runs" section): manual runs (enqueue, trigger, with
// idempotency keys and queue quotas), reads of runs and their attempts, and cancelling a run.

import type { JsonObject } from '@kairos/client';
import type pg from 'pg';
import { idempotencyConflict, sameRunRequest } from '../../core/manual-run.ts';
import { KairosError, StoreUnavailableError } from '../../errors.ts';
import type { AuditEntry } from '../access.ts';
import {
  type AttemptRow,
  attemptFromRow,
  type JsonColumn,
  json,
  RUN_COLUMNS,
  RUN_SUMMARY_COLUMNS,
  type RunRow,
  runFromRow,
  traceColumn,
} from '../rows.ts';
import type {
  AttemptRecord,
  EnqueueRequest,
  MaxQueuedRuns,
  RunQuery,
  RunRecord,
  TriggerRunRequest,
} from '../store.ts';
import { appendAudit, auditValues } from './access.ts';
import { shardNewRuns } from './broadcasts.ts';
import { CHANNEL, type PostgresConnection, preparedQuery } from './connection.ts';
import { getJob } from './jobs.ts';
import * as quotas from './quotas.ts';
import { afterRunsEnded } from './schedules.ts';

/**
 * Manual runs, in input order, in one statement: the job's row, the runs, and the notification of
 * the job's group, sent at commit. No row: no such job. A key that holds a run inserts nothing (the
 * caller judged the keys first, in its transaction: enqueueKeyedRuns). A broadcast
 * job's runs are sharded in the same transaction, so with $6 false (one statement, its own
 * transaction) a broadcast job gets nothing and answers `broadcast`, and the caller runs it again
 * with $6 true in a transaction. $1 job id, $2 [{i, params, priority, key, expires, available_at, trace_context}],
 * $3 now, $4 channel, $5 origin, $6 whether broadcast jobs are served, $7 NOTIFY (false: no other
 * node listens), $8 the node's schema (null: none of its own), which listeners of other schemas skip.
 */
export const ENQUEUE = `
  WITH job AS (
    SELECT id, group_name, coalesce(dispatch->'routing'->>'strategy' = 'broadcast', false) AS broadcast
    FROM jobs WHERE id = $1),
  input AS (SELECT * FROM jsonb_to_recordset($2::jsonb)
    AS x(i int, params jsonb, priority int, key text, expires bigint, available_at bigint, trace_context text)),
  inserted AS (
    INSERT INTO runs (job_id, group_name, handler, cause, idempotency_key, idempotency_expires_at, params, priority,
      status, max_attempts, retry, timeout_ms, created_at, available_at, trace_context, namespace)
    SELECT j.id, j.group_name, j.handler, 'manual', x.key, x.expires, x.params, x.priority, 'queued',
      (j.retry->>'maxAttempts')::int, j.retry, j.timeout_ms, $3, x.available_at, x.trace_context, j.namespace
    FROM input x, jobs j
    WHERE j.id = $1 AND ($6 OR NOT (SELECT broadcast FROM job))
    ORDER BY x.i
    ON CONFLICT DO NOTHING
    RETURNING id, idempotency_key),
  notified AS (
    SELECT pg_notify($4, json_build_object('origin', $5::text, 'schema', $8::text,
      'events', json_build_array(json_build_object('type', 'runs', 'group', group_name)))::text)
    FROM job WHERE ($6 OR NOT broadcast) AND $7::boolean)
  SELECT group_name, broadcast, (SELECT count(*) FROM notified)::int AS notified,
    (SELECT coalesce(json_agg(json_build_array(id, idempotency_key)), '[]') FROM inserted) AS inserted
  FROM job`;

/**
 * One manual trigger of the job named $1 in one statement and one commit: the job read by name, its
 * defaults applied ($2 params, $3 priority: null takes the job's), the run inserted or, when its
 * idempotency key $4 was used before, that run returned; other nodes told (NOTIFY, delivered at
 * commit); the audit entry ($8..$12, none when $8 is null) written in the same commit. Four round
 * trips before (read the job, insert, read the run back, audit in a commit of its own), on the path
 * of every API trigger. A broadcast job inserts nothing here (its runs are sharded in a transaction):
 * the row says `job_broadcast` and the run columns are null. No row: no such job.
 * $5 now, $6 channel, $7 origin, $13 NOTIFY (false: no other node listens, see PostgresConnection.peers),
 * $14 the node's schema (null: none of its own), which listeners of other schemas skip, $15 when the
 * run may start, $16 when its key expires. A key's run is answered with `key_same` (the same params
 * and priority) and `key_expired`; the audit entry is written only for a run inserted or answered as
 * the same request (the caller refuses the others, or takes the expired key and runs this again).
 * $17 the JSON of the run's trace context (null: not traced).
 */
export const TRIGGER_RUN = `
  WITH job AS (
    SELECT id, name, group_name, handler, params, priority, retry, timeout_ms, namespace, dispatch,
      coalesce(dispatch->'routing'->>'strategy' = 'broadcast', false) AS broadcast
    FROM jobs WHERE name = $1),
  inserted AS (
    INSERT INTO runs (job_id, group_name, handler, cause, idempotency_key, idempotency_expires_at, params, priority,
      status, max_attempts, retry, timeout_ms, created_at, available_at, trace_context, namespace)
    SELECT j.id, j.group_name, j.handler, 'manual', $4::text, $16::bigint, coalesce($2::jsonb, j.params),
      coalesce($3::int, j.priority), 'queued', (j.retry->>'maxAttempts')::int, j.retry, j.timeout_ms, $5::bigint,
      $15::bigint, $17::text, j.namespace
    FROM job j WHERE NOT j.broadcast
    ON CONFLICT DO NOTHING
    RETURNING *),
  existing AS (
    SELECT r.*, r.params = coalesce($2::jsonb, j.params) AND r.priority = coalesce($3::int, j.priority) AS same,
      r.idempotency_expires_at IS NOT NULL AND r.idempotency_expires_at <= $5::bigint AS expired
    FROM runs r, job j
    WHERE $4::text IS NOT NULL AND NOT j.broadcast AND r.job_id = j.id AND r.idempotency_key = $4::text),
  notified AS (
    SELECT pg_notify($6, json_build_object('origin', $7::text, 'schema', $14::text,
      'events', json_build_array(json_build_object('type', 'runs', 'group', group_name)))::text)
    FROM job WHERE NOT broadcast AND $13::boolean AND EXISTS (SELECT 1 FROM inserted)),
  audited AS (
    INSERT INTO audit_log (at, actor, action, target, details, namespace)
    SELECT $8::bigint, $9::text, $10::text, $11::text, $12::jsonb, namespace FROM job WHERE NOT broadcast AND $8::bigint IS NOT NULL
      AND (EXISTS (SELECT 1 FROM inserted) OR EXISTS (SELECT 1 FROM existing WHERE same AND NOT expired)))
  SELECT j.id AS job_id_of_name, j.broadcast AS job_broadcast, (SELECT count(*) FROM notified)::int AS notified,
    (SELECT count(*) FROM inserted)::int AS inserted, r.same AS key_same, r.expired AS key_expired,
    ${RUN_COLUMNS}
  FROM job j LEFT JOIN (SELECT *, true AS same, false AS expired FROM inserted UNION ALL SELECT * FROM existing) r
    ON true`;

/** Takes an expired idempotency key from its run, so that a new run may have it. $1 run id, $2 key, $3 now. */
export const RELEASE_IDEMPOTENCY_KEY = `
  UPDATE runs SET idempotency_key = NULL
  WHERE id = $1 AND idempotency_key = $2 AND idempotency_expires_at <= $3`;

/**
 * The runs that idempotency keys of a job hold, locked, with what a repeated request is compared
 * with. $1 job id, $2 keys.
 */
export const RUNS_BY_IDEMPOTENCY_KEYS = `
  SELECT id, idempotency_key, params, priority, idempotency_expires_at FROM runs
  WHERE job_id = $1 AND idempotency_key = ANY($2::text[]) FOR UPDATE`;

/**
 * Runs newest first. $1 job id, $2 status, $3 worker id, $4 before id, $6 created since, $7 created
 * until, $8 namespace (each null for any), $5 limit. Unnamed statements are planned with their values, so a null
 * filter folds away and a time range can use runs_created.
 */
export const LIST_RUNS = `
  SELECT ${RUN_COLUMNS}
  FROM runs r JOIN jobs j ON j.id = r.job_id
  WHERE ($1::bigint IS NULL OR r.job_id = $1) AND ($2::text IS NULL OR r.status = $2)
    AND ($3::text IS NULL OR r.worker_id = $3) AND ($4::bigint IS NULL OR r.id < $4)
    AND ($6::bigint IS NULL OR r.created_at >= $6) AND ($7::bigint IS NULL OR r.created_at < $7)
    AND ($8::text IS NULL OR r.namespace = $8)
  ORDER BY r.id DESC LIMIT $5`;

/** LIST_RUNS without params and results (a list's summaries); the same parameters. */
export const LIST_RUN_SUMMARIES = LIST_RUNS.replace(RUN_COLUMNS, RUN_SUMMARY_COLUMNS);

/**
 * The attempts of run $1 in order: the ended ones' rows, then the running one from the run row (an
 * attempt's row is written once, when it ends), and the one that succeeded from the run row too (an
 * attempt that succeeds ends its run and gets no row of its own; runs that succeeded before that
 * have one).
 */
export const ATTEMPTS_OF_RUN = `
  SELECT a.run_id, a.attempt, a.worker_id, a.status, a.started_at, a.finished_at, a.error,
    l.outcome AS late_outcome, l.reported_at AS late_reported_at, l.error AS late_error
  FROM attempts a LEFT JOIN late_reports l ON l.run_id = a.run_id AND l.attempt = a.attempt WHERE a.run_id = $1
  UNION ALL
  SELECT id, attempt, worker_id, 'running', started_at, NULL::bigint, NULL::jsonb, NULL, NULL::bigint, NULL::jsonb
  FROM runs WHERE id = $1 AND status = 'running'
  UNION ALL
  SELECT r.id, r.attempt, r.worker_id, 'succeeded', r.started_at, r.finished_at, NULL::jsonb, NULL, NULL::bigint, NULL::jsonb
  FROM runs r WHERE r.id = $1 AND r.status = 'succeeded' AND r.worker_id IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.run_id = r.id AND a.attempt = r.attempt)
  ORDER BY attempt`;

/**
 * End a queued or running run (locked by the caller) as cancelled; a running one's attempt gets its
 * row, with the worker and start that the run row held (read before the end, in the statement's
 * snapshot); a fixed-delay job's scheduled run sets the job's next fire. $1 run id, $2 attempt, $3 now,
 * $4 error.
 */
export const CANCEL_RUN = `
  WITH running AS (
    SELECT worker_id, started_at FROM runs WHERE id = $1 AND attempt = $2 AND status = 'running'),
  attempt_ended AS (
    INSERT INTO attempts (run_id, attempt, worker_id, status, started_at, finished_at, error)
    SELECT $1, $2, worker_id, 'cancelled', started_at, $3::bigint, $4::jsonb FROM running),
  ended AS (
    UPDATE runs SET status = 'cancelled', finished_at = $3::bigint, error = $4::jsonb, deadline_at = NULL
    WHERE id = $1 RETURNING job_id, cause)
  UPDATE jobs j SET next_fire_at = $3::bigint + j.delay_ms FROM ended e
  WHERE j.id = e.job_id AND e.cause = 'schedule' AND j.delay_ms IS NOT NULL AND j.next_fire_at IS NULL AND NOT j.paused`;

/** A run an idempotency key holds (RUNS_BY_IDEMPOTENCY_KEYS). */
interface KeyHolderRow {
  id: number;
  idempotency_key: string;
  params: JsonColumn;
  priority: number;
  idempotency_expires_at: number | null;
}

/** The answer of TRIGGER_RUN: the run inserted or its key's run, and what the statement did. */
type TriggerRunRow = RunRow & {
  job_id_of_name: number;
  job_broadcast: boolean;
  inserted: number;
  key_same: boolean | null;
  key_expired: boolean | null;
};

/** The answer of ENQUEUE: the job's group, and [id, idempotency key] pairs as JSON. */
interface EnqueuedRow {
  group_name: string;
  broadcast: boolean;
  inserted: string;
}

export async function enqueueRuns(
  c: PostgresConnection,
  jobId: number,
  requests: readonly EnqueueRequest[],
  now: number,
  maxQueuedRuns?: MaxQueuedRuns,
): Promise<number[]> {
  const limit = maxQueuedRuns ?? null;
  const input = requests.map((r, i) => ({
    i,
    params: r.params,
    priority: r.priority,
    key: r.idempotencyKey ?? null,
    expires: r.idempotencyKey === undefined ? null : (r.idempotencyExpiresAt ?? null),
    available_at: r.availableAt ?? now,
    trace_context: traceColumn(r.traceContext),
  }));
  const keys = [...new Set(input.flatMap((r) => (r.key === null ? [] : [r.key])))];
  if (keys.length > 0 || limit !== null) return enqueueKeyedRuns(c, jobId, requests, input, keys, now, limit);
  const enqueue = async (db: pg.Pool | pg.PoolClient, broadcast: boolean) => {
    const rows = await preparedQuery<EnqueuedRow>(db, 'enqueueRuns', ENQUEUE, [
      jobId,
      JSON.stringify(input),
      now,
      CHANNEL,
      c.origin,
      broadcast,
      c.peers,
      c.options.schema ?? null,
    ]);
    if (rows.length === 0) throw new KairosError('JOB_NOT_FOUND', `job ${jobId} does not exist`);
    return rows[0]!;
  };
  // One statement, its own transaction; a broadcast job's runs are sharded in a transaction.
  let row = await c.retrying('enqueueRuns', () => enqueue(c.pool, false));
  if (row.broadcast) {
    row = await c.transaction('enqueueRuns', async (client) => {
      const row = await enqueue(client, true);
      await shardNewRuns(client, [jobId], now);
      return row;
    });
  }
  // Sequence numbers follow the insert order, which follows the input order (no keys here).
  const inserted = (JSON.parse(row.inserted) as Array<[number, string | null]>).sort((a, b) => a[0] - b[0]);
  // Other nodes learn through the statement's NOTIFY.
  c.emit([{ type: 'runs', group: row.group_name }]);
  return inserted.map(([id]) => id);
}

/**
 * enqueueRuns with idempotency keys, in one transaction so that a conflict writes nothing: the
 * runs the keys hold are locked and judged first (expired keys taken from their runs, other params
 * refused), then the runs inserted. A key whose run a concurrent request commits meanwhile is
 * judged against that run; with other params, the whole batch is refused. With `maxQueuedRuns`
 * (with keys or without), the job's namespace is locked first and the runs inserted are counted
 * with its queued runs before the commit (docs/tenancy.md#quotas).
 */
async function enqueueKeyedRuns(
  c: PostgresConnection,
  jobId: number,
  requests: readonly EnqueueRequest[],
  input: ReadonlyArray<{ key: string | null }>,
  keys: string[],
  now: number,
  maxQueuedRuns: number | null,
): Promise<number[]> {
  const byKey = new Map<string, { id: number; params: JsonObject; priority: number }>();
  const { group, ids } = await c.transaction('enqueueRuns', async (client) => {
    byKey.clear();
    const namespace = maxQueuedRuns === null ? null : await quotas.lockNamespaceOfJob(client, jobId);
    const held =
      keys.length === 0
        ? []
        : (await client.query<KeyHolderRow>(RUNS_BY_IDEMPOTENCY_KEYS, [jobId, keys])).rows;
    for (const run of held) {
      if (run.idempotency_expires_at !== null && Number(run.idempotency_expires_at) <= now) {
        await client.query(RELEASE_IDEMPOTENCY_KEY, [run.id, run.idempotency_key, now]);
      } else {
        byKey.set(run.idempotency_key, { ...run, params: json<JsonObject>(run.params) });
      }
    }
    const fresh = requests
      .map((request, i) => ({ request, i }))
      .filter(({ request }) => request.idempotencyKey === undefined || !byKey.has(request.idempotencyKey));
    const { rows } = await client.query<EnqueuedRow>(ENQUEUE, [
      jobId,
      JSON.stringify(fresh.map(({ i }) => input[i])),
      now,
      CHANNEL,
      c.origin,
      true,
      c.peers,
      c.options.schema ?? null,
    ]);
    const row = rows[0];
    if (!row) throw new KairosError('JOB_NOT_FOUND', `job ${jobId} does not exist`);
    if (row.broadcast) await shardNewRuns(client, [jobId], now);
    const inserted = (JSON.parse(row.inserted) as Array<[number, string | null]>).sort((a, b) => a[0] - b[0]);
    if (maxQueuedRuns !== null && namespace !== null)
      await quotas.checkQueuedRunsAfter(client, namespace, maxQueuedRuns, inserted.length);
    const unkeyed = inserted.filter(([, key]) => key === null).map(([id]) => id);
    for (const [id, key] of inserted) {
      if (key === null) continue;
      const first = fresh.find(({ request }) => request.idempotencyKey === key)!.request;
      byKey.set(key, { id, params: first.params, priority: first.priority });
    }
    const missing = keys.filter((key) => !byKey.has(key));
    if (missing.length > 0) {
      // Keys that a concurrent request committed after this transaction read them.
      const late = await client.query<KeyHolderRow>(RUNS_BY_IDEMPOTENCY_KEYS, [jobId, missing]);
      for (const run of late.rows)
        byKey.set(run.idempotency_key, { ...run, params: json<JsonObject>(run.params) });
    }
    const ids = requests.map((request) => {
      if (request.idempotencyKey === undefined) return unkeyed.shift()!;
      const run = byKey.get(request.idempotencyKey)!;
      if (!sameRunRequest(run, request.params, request.priority))
        throw idempotencyConflict(request.idempotencyKey, run.id);
      return run.id;
    });
    return { group: row.group_name, ids };
  });
  // Other nodes learn through the statement's NOTIFY.
  c.emit([{ type: 'runs', group }]);
  return ids;
}

export async function triggerRun(
  c: PostgresConnection,
  name: string,
  request: TriggerRunRequest,
  now: number,
  audit?: AuditEntry,
  maxQueuedRuns?: MaxQueuedRuns,
): Promise<RunRecord | null> {
  // No hand-off to a waiting poll here (Store.triggerRun): a transaction around the trigger and the
  // claim takes four round trips where the two statements take two, and cost more than the commit
  // it saves (docs/benchmarks.md, Levers).
  const limit = maxQueuedRuns ?? null;
  const answer =
    limit === null
      ? await triggerRunRounds(
          c,
          (text, values) => c.query<TriggerRunRow>('triggerRun', text, values),
          name,
          request,
          now,
          audit,
        )
      : // With a quota: the namespace locked first, the run counted before the commit
        // (docs/tenancy.md#quotas); a refusal rolls back the run, its NOTIFY and its audit entry.
        await c.transaction('triggerRun', async (client) => {
          const namespace = await quotas.lockNamespaceOfJob(client, name);
          if (namespace === null) return null;
          const answer = await triggerRunRounds(
            c,
            (text, values) => preparedQuery<TriggerRunRow>(client, 'triggerRun', text, values),
            name,
            request,
            now,
            audit,
          );
          if (answer !== 'broadcast' && answer?.inserted)
            await quotas.checkQueuedRunsAfter(client, namespace, limit, 1);
          return answer;
        });
  if (answer === null) return null;
  if (answer === 'broadcast') {
    // A broadcast job's run is sharded in a transaction of its own (enqueueRuns).
    const job = await getJob(c, name);
    if (!job) return null;
    const [id] = await enqueueRuns(
      c,
      job.id,
      [{ ...request, params: request.params ?? job.params, priority: request.priority ?? job.priority }],
      now,
      limit,
    );
    if (audit) await appendAudit(c, audit);
    return getRun(c, id!);
  }
  // Other nodes learn through the statement's NOTIFY.
  if (answer.inserted) c.emit([{ type: 'runs', group: answer.group }]);
  return answer.run;
}

/**
 * TRIGGER_RUN, run again after taking an expired idempotency key from its run: the run inserted
 * or the one its key holds; `broadcast` for a broadcast job (nothing written); null: no such job.
 */
async function triggerRunRounds(
  c: PostgresConnection,
  query: (text: string, values: unknown[]) => Promise<TriggerRunRow[]>,
  name: string,
  request: TriggerRunRequest,
  now: number,
  audit: AuditEntry | undefined,
): Promise<{ run: RunRecord; inserted: boolean; group: string } | 'broadcast' | null> {
  const key = request.idempotencyKey ?? null;
  for (let round = 1; ; round++) {
    const [row] = await query(TRIGGER_RUN, [
      name,
      request.params === null ? null : JSON.stringify(request.params),
      request.priority,
      key,
      now,
      CHANNEL,
      c.origin,
      // The entry's namespace is the job's (TRIGGER_RUN reads it): the first five values only.
      ...(audit ? auditValues(audit).slice(0, 5) : [null, null, null, null, null]),
      c.peers,
      c.options.schema ?? null,
      request.availableAt ?? now,
      key === null ? null : (request.idempotencyExpiresAt ?? null),
      traceColumn(request.traceContext),
    ]);
    if (!row) return null;
    if (row.job_broadcast) return 'broadcast';
    if (row.inserted > 0) return { run: runFromRow(row), inserted: true, group: row.group_name };
    // Nothing inserted: the key holds a run, committed before this statement began or (no row to
    // show, id null) since; an expired key is taken from its run, and the statement runs again.
    if (row.id !== null && !row.key_expired) {
      if (!row.key_same) throw idempotencyConflict(key!, row.id);
      return { run: runFromRow(row), inserted: false, group: row.group_name };
    }
    if (row.id !== null) await query(RELEASE_IDEMPOTENCY_KEY, [row.id, key, now]);
    if (round >= 3) throw new StoreUnavailableError('triggerRun', new Error('idempotency key contended'));
  }
}

export async function getRun(c: PostgresConnection, id: number): Promise<RunRecord | null> {
  const [row] = await c.query<RunRow>(
    'getRun',
    `SELECT ${RUN_COLUMNS} FROM runs r JOIN jobs j ON j.id = r.job_id WHERE r.id = $1`,
    [id],
  );
  return row ? runFromRow(row) : null;
}

export async function getAttempts(c: PostgresConnection, runId: number): Promise<AttemptRecord[]> {
  const rows = await c.query<AttemptRow>('getAttempts', ATTEMPTS_OF_RUN, [runId]);
  return rows.map(attemptFromRow);
}

export async function listRuns(c: PostgresConnection, filter: RunQuery): Promise<RunRecord[]> {
  const rows = await c.query<RunRow>('listRuns', filter.summary ? LIST_RUN_SUMMARIES : LIST_RUNS, [
    filter.jobId ?? null,
    filter.status ?? null,
    filter.workerId ?? null,
    filter.before ?? null,
    filter.limit,
    filter.createdSince ?? null,
    filter.createdUntil ?? null,
    filter.namespace ?? null,
  ]);
  return rows.map(runFromRow);
}

export async function cancelRun(c: PostgresConnection, id: number, now: number): Promise<RunRecord | null> {
  const found = await c.transaction('cancelRun', async (client) => {
    const { rows } = await client.query<{ status: string; attempt: number; job_id: number }>(
      'SELECT status, attempt, job_id FROM runs WHERE id = $1 FOR UPDATE',
      [id],
    );
    const run = rows[0];
    if (!run) return null;
    if (run.status !== 'queued' && run.status !== 'running') {
      throw new KairosError('RUN_FINISHED', `run ${id} already ended (${run.status})`);
    }
    const error = JSON.stringify({ name: 'Cancelled', message: 'cancelled through the API' });
    await client.query(CANCEL_RUN, [id, run.attempt, now, error]);
    return afterRunsEnded(client, [id], now);
  });
  if (found) await c.notify(found.map((group) => ({ type: 'runs', group })));
  return found ? getRun(c, id) : null;
}
