// Schedules on PostgreSQL: the fire steps for jobs with policies (overlap, jitter, run cap, ledger),
// one commented statement per constant, and the helpers that run them inside the fire transaction.

import type { TraceContext } from '@kairos/client';
import type pg from 'pg';
import type { CalendarDefinition, CalendarRecord } from '../../core/calendar.ts';
import type { SkippedRange } from '../../core/fire-plan.ts';
import type { JobDefinition, JobRecord } from '../../core/job.ts';
import { BUFFERED_AT, decideOverlap, HELD_WHILE_PAUSED_AT } from '../../core/overlap.ts';
import { KairosError } from '../../errors.ts';
import { DEFAULT_NAMESPACE, nameTakenElsewhere } from '../namespaces.ts';
import { type JobRow, jobFromRow, traceColumn } from '../rows.ts';
import { type CalendarRow, calendarFromRow, type SkippedRow, skippedFromRow } from '../rows-schedules.ts';
import type {
  FireEntry,
  JobExpectation,
  JobQuotaCheck,
  MaxQueuedRuns,
  SkippedRecord,
  SkipWritten,
} from '../store.ts';
import { endedBroadcasts } from './broadcasts.ts';
import type { PostgresConnection } from './connection.ts';
import { lockDependencyEdit, RESUME_JOB, updateValues } from './jobs.ts';
import * as quotas from './quotas.ts';
import { advanceWorkflows } from './workflows.ts';

/** Whether an entry needs the per-job policy steps; entries without them stay in the one-statement batch. */
export function needsPolicySteps(entry: FireEntry): boolean {
  return entry.overlap !== undefined || entry.countRuns === true || entry.workflow === true;
}

/** Compare-and-set one job's next fire time. $1 job id, $2 expected, $3 next. */
export const ADVANCE_JOB = `
  UPDATE jobs SET next_fire_at = $3 WHERE id = $1 AND next_fire_at = $2 AND NOT paused RETURNING group_name`;

/**
 * The job's active runs, oldest first. Not locked: a run that ends meanwhile takes the job's row
 * lock (held here by the compare-and-set) before it promotes a buffered run, so it waits for this
 * fire and then sees what it buffered; locking runs here too would order locks the other way
 * round and deadlock with it. $1 job id.
 */
export const ACTIVE_RUNS = `
  SELECT id, status, available_at FROM runs WHERE job_id = $1 AND status IN ('queued', 'running')
  ORDER BY fire_time, id`;

/** Make one buffered run claimable. $1 run id, $2 now. */
export const PROMOTE_RUN = `UPDATE runs SET available_at = $2 WHERE id = $1 RETURNING group_name`;

/**
 * For each job with nothing in flight, make its oldest buffered run claimable. `status IN (…)`
 * matches the runs_active index; a buffered run is always queued. $1 job ids, $2 now, $3 BUFFERED_AT.
 */
export const PROMOTE_BUFFERED = `
  UPDATE runs r SET available_at = $2 FROM (
    SELECT DISTINCT ON (b.job_id) b.id FROM runs b
    WHERE b.job_id = ANY($1::bigint[]) AND b.status IN ('queued', 'running') AND b.available_at = $3
      AND NOT EXISTS (SELECT 1 FROM runs a WHERE a.job_id = b.job_id AND a.status IN ('queued', 'running')
        AND a.available_at <> $3)
    ORDER BY b.job_id, b.fire_time, b.id) n
  WHERE r.id = n.id
  RETURNING r.group_name`;

/** The jobs (alias c, CTE after_jobs) that run `after` the job of ended run e, when its end matches their condition. */
const AFTER_MATCH = `
  FROM ended e JOIN after_jobs c ON c.parent_id = e.job_id
    WHERE e.status <> 'queued' AND e.broadcast_run_id IS NULL
      AND (c.on_end = 'always' OR (c.on_end = 'success' AND e.status = 'succeeded')
        OR (c.on_end = 'failure' AND e.status IN ('failed', 'timed_out')))`;

/**
 * The runs of the jobs that run `after` the runs of CTE `ended` (id, job_id, status, result,
 * broadcast_run_id), as CTEs `dependents` (and the ledger's) to append to a statement's WITH list:
 * one run per dependent job whose condition the end matches, with the parent under params.parent
 * (`after:<run id>` as idempotency key keeps it once). A shard of a broadcast (broadcast_run_id set)
 * sets off nothing alone: the broadcast does, once, when its last shard ends (ENDED_BROADCASTS).
 * A paused dependent gets no run but a ledger row, reason `paused`: the first such end since the job
 * was paused (its updated_at) starts the row at the parent's end time, later ones extend it and
 * count. The dependent jobs are looked up once per job of the ended runs (after_jobs), not once per
 * run: a batch of 200 ended runs of one job read jobs 1,000 times to find that none depends on it.
 * The jobs_after index finds no dependent at once for most jobs. $2 now.
 */
export const DEPENDENTS_OF_ENDED = `
  after_jobs AS MATERIALIZED (
    SELECT p.id AS parent_id, p.name AS parent_name, c.id, c.group_name, c.handler, c.params, c.priority,
      c.retry, c.timeout_ms, c.namespace, c.paused, c.updated_at, c.trigger->>'on' AS on_end
    FROM jobs p JOIN jobs c ON c.trigger->>'kind' = 'after' AND c.trigger->>'job' = p.name AND c.namespace = p.namespace
    WHERE p.id IN (SELECT job_id FROM ended WHERE status <> 'queued' AND broadcast_run_id IS NULL)),
  dependents AS (
    INSERT INTO runs (job_id, group_name, handler, cause, idempotency_key, params, priority, status, max_attempts,
      retry, timeout_ms, created_at, available_at, trace_context, namespace)
    SELECT c.id, c.group_name, c.handler, 'dependency', 'after:' || e.id,
      c.params || jsonb_build_object('parent',
        jsonb_build_object('job', c.parent_name, 'runId', e.id, 'status', e.status, 'result', e.result)),
      c.priority, 'queued', (c.retry->>'maxAttempts')::int, c.retry, c.timeout_ms, $2::bigint, $2::bigint,
      (SELECT t.trace_context FROM runs t WHERE t.id = e.id), c.namespace
    ${AFTER_MATCH.trim()} AND NOT c.paused
    ON CONFLICT DO NOTHING
    RETURNING group_name),
  paused_dependents AS (
    SELECT c.id AS job_id, c.updated_at, count(*) AS n
    ${AFTER_MATCH.trim()} AND c.paused
    GROUP BY c.id, c.updated_at),
  paused_extended AS (
    UPDATE skipped_fires s SET last_fire = greatest(s.last_fire, $2::bigint), count = s.count + d.n,
      recorded_at = $2::bigint
    FROM paused_dependents d
    WHERE s.id = (SELECT max(x.id) FROM skipped_fires x
      WHERE x.job_id = d.job_id AND x.reason = 'paused' AND x.recorded_at >= d.updated_at)),
  paused_recorded AS (
    INSERT INTO skipped_fires (job_id, reason, first_fire, last_fire, count, recorded_at)
    SELECT d.job_id, 'paused', $2::bigint, $2::bigint, d.n, $2::bigint FROM paused_dependents d
    WHERE NOT EXISTS (SELECT 1 FROM skipped_fires x
      WHERE x.job_id = d.job_id AND x.reason = 'paused' AND x.recorded_at >= d.updated_at)
    ON CONFLICT DO NOTHING)`;

/**
 * What runs that this transaction ended set off, first step: the runs of their dependents, the
 * jobs whose buffered runs may need a promotion (see {@link promoteBuffered}), and whether one is
 * a shard of a broadcast (see {@link endedBroadcasts}). $1 ended run ids, $2 now.
 */
export const TRIGGER_DEPENDENTS = `
  WITH ended AS (
    SELECT r.id, r.job_id, r.status, r.result, r.broadcast_run_id, p.buffers OR r.promotes AS buffering
    FROM runs r JOIN jobs p ON p.id = r.job_id WHERE r.id = ANY($1::bigint[])),
  ${DEPENDENTS_OF_ENDED.trim()}
  SELECT coalesce((SELECT json_agg(DISTINCT job_id) FROM ended WHERE buffering), '[]') AS buffering,
    coalesce((SELECT array_agg(group_name) FROM dependents), '{}') AS groups,
    coalesce((SELECT bool_or(broadcast_run_id IS NOT NULL) FROM ended), false) AS broadcasts`;

/** The runs of the jobs `after` broadcasts that ended ($1 [EndedBroadcast]), as DEPENDENTS_OF_ENDED. $2 now. */
export const BROADCAST_DEPENDENTS = `
  WITH ended AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb)
      AS x(id bigint, job_id bigint, status text, result jsonb, broadcast_run_id bigint)),
  ${DEPENDENTS_OF_ENDED.trim()}
  SELECT coalesce((SELECT array_agg(group_name) FROM dependents), '{}') AS groups`;

/**
 * The jobs `after` the broadcasts among `runIds` (just ended in this transaction) whose last shard
 * ended, each run once (see {@link endedBroadcasts}). Answers the groups that got runs.
 */
export async function broadcastDependents(
  client: pg.PoolClient,
  runIds: readonly number[],
  now: number,
): Promise<string[]> {
  const ended = await endedBroadcasts(client, runIds);
  if (ended.length === 0) return [];
  const input = ended.map((e) => ({ ...e, result: JSON.parse(e.result) as unknown }));
  const { rows } = await client.query<{ groups: string[] }>(BROADCAST_DEPENDENTS, [
    JSON.stringify(input),
    now,
  ]);
  return rows[0]!.groups;
}

/**
 * Lock jobs whose ended runs may promote a buffered run ($1, sorted ids), so that a fire or
 * backfill of such a job that is buffering a run commits first and PROMOTE_BUFFERED, the next
 * statement, sees its buffered run. FOR UPDATE: two runs of one job that end at once must queue, or
 * each would see the other still in flight and neither would promote.
 */
export const LOCK_BUFFERING_JOBS = `SELECT id FROM jobs WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE`;

/** Lock one job and read whether it buffers runs already. $1 job id. */
export const LOCK_JOB = `SELECT buffers FROM jobs WHERE id = $1 FOR UPDATE`;

/**
 * A job begins to buffer runs: its runs in flight are marked, so that an end that this
 * transaction made wait (on the run's row) sees the mark in the row it updates and promotes; later
 * ends read the job's flag. $1 job id.
 */
export const START_BUFFERING = `
  WITH marked AS (UPDATE runs SET promotes = true WHERE job_id = $1 AND status IN ('queued', 'running'))
  UPDATE jobs SET buffers = true WHERE id = $1`;

/**
 * Cancel runs for the cancel-previous overlap policy; a running one's attempt gets its row. The runs
 * are locked first, so that what is read of each (running or not, its attempt, worker and start) is
 * its latest version: a report that ended it meanwhile inserted that attempt's row already, and the
 * snapshot alone would insert it twice. $1 run ids, $2 now, $3 error.
 */
export const CANCEL_ACTIVE_RUNS = `
  WITH active AS (
    SELECT id, status, attempt, worker_id, started_at FROM runs
    WHERE id = ANY($1::bigint[]) AND status IN ('queued', 'running') ORDER BY id FOR UPDATE),
  attempt_ended AS (
    INSERT INTO attempts (run_id, attempt, worker_id, status, started_at, finished_at, error)
    SELECT id, attempt, worker_id, 'cancelled', started_at, $2::bigint, $3::jsonb FROM active WHERE status = 'running')
  UPDATE runs r SET status = 'cancelled', finished_at = $2::bigint, error = $3::jsonb, deadline_at = NULL
  FROM active a WHERE r.id = a.id`;

/**
 * Insert scheduled runs with their own available time (jitter). $1 job id,
 * $2 [{fire_time, available_at, trace_context?}], $3 now.
 */
export const INSERT_SCHEDULED_RUNS = `
  INSERT INTO runs (job_id, group_name, handler, cause, fire_time, params, priority, status, max_attempts, retry,
    timeout_ms, created_at, available_at, trace_context, namespace)
  SELECT j.id, j.group_name, j.handler, 'schedule', f.fire_time, j.params, j.priority, 'queued',
    (j.retry->>'maxAttempts')::int, j.retry, j.timeout_ms, $3, f.available_at, f.trace_context, j.namespace
  FROM jsonb_to_recordset($2::jsonb) AS f(fire_time bigint, available_at bigint, trace_context text), jobs j
  WHERE j.id = $1
  ORDER BY f.fire_time
  ON CONFLICT DO NOTHING`;

/** Count runs the schedule created. $1 job id, $2 runs. */
export const COUNT_RUNS = `UPDATE jobs SET runs_fired = runs_fired + $2 WHERE id = $1`;

/**
 * Ledger rows of a fire batch, written only for jobs whose compare-and-set won in this transaction
 * (their next fire is now the planned one); a range already recorded is kept once.
 * $1 [{job_id, next, reason, first_fire, last_fire, count}], $2 now.
 */
export const RECORD_SKIPPED = `
  INSERT INTO skipped_fires (job_id, reason, first_fire, last_fire, count, recorded_at)
  SELECT x.job_id, x.reason, x.first_fire, x.last_fire, x.count, $2
  FROM jsonb_to_recordset($1::jsonb)
    AS x(job_id bigint, next bigint, reason text, first_fire bigint, last_fire bigint, count bigint)
  JOIN jobs j ON j.id = x.job_id AND j.next_fire_at IS NOT DISTINCT FROM x.next
  ON CONFLICT DO NOTHING
  RETURNING job_id, reason, count`;

/** The ledger of a job, newest first. $1 job id, $2 before id or null, $3 limit. */
export const LIST_SKIPPED = `
  SELECT s.*, j.name AS job_name FROM skipped_fires s JOIN jobs j ON j.id = s.job_id
  WHERE s.job_id = $1 AND ($2::bigint IS NULL OR s.id < $2) ORDER BY s.id DESC LIMIT $3`;

const CANCELLED_BY_OVERLAP = JSON.stringify({
  name: 'Cancelled',
  message: 'cancelled by the overlap policy (cancel-previous) of a newer fire',
});

/** Ledger input rows for {@link writeSkipped}. */
export function skippedInput(entry: FireEntry, ranges: readonly SkippedRange[]): SkippedInput[] {
  return ranges.map((r) => ({
    job_id: entry.jobId,
    next: entry.next,
    reason: r.reason,
    first_fire: r.first,
    last_fire: r.last,
    count: r.count,
    after: r.after ?? null,
  }));
}

export interface SkippedInput {
  job_id: number;
  next: number | null;
  reason: string;
  first_fire: number;
  last_fire: number;
  count: number | null;
  after: number | null;
}

/**
 * Extend ledger rows: a range whose `after` is where the job's latest row of the same reason ends
 * continues that row (only for jobs whose compare-and-set won, as RECORD_SKIPPED).
 * $1 [{i, job_id, next, reason, last_fire, count, after}], $2 now.
 */
export const EXTEND_SKIPPED = `
  WITH x AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb)
      AS x(i int, job_id bigint, next bigint, reason text, last_fire bigint, count bigint, after bigint)),
  target AS (
    SELECT DISTINCT ON (x.i) x.i, s.id, x.last_fire, x.count
    FROM x JOIN jobs j ON j.id = x.job_id AND j.next_fire_at IS NOT DISTINCT FROM x.next
    JOIN skipped_fires s ON s.job_id = x.job_id AND s.reason = x.reason AND s.last_fire = x.after
    ORDER BY x.i, s.id DESC)
  UPDATE skipped_fires s SET last_fire = t.last_fire, count = s.count + t.count, recorded_at = $2
  FROM target t WHERE s.id = t.id
  RETURNING t.i, s.job_id, s.reason, t.count`;

/** Writes ledger rows in two statements: extensions of existing rows, then new rows. */
export async function writeSkipped(
  client: pg.PoolClient,
  input: readonly SkippedInput[],
  now: number,
): Promise<SkipWritten[]> {
  if (input.length === 0) return [];
  const numbered = input.map((row, i) => ({ ...row, i }));
  const extending = numbered.filter((row) => row.after !== null);
  const extended =
    extending.length === 0
      ? []
      : (
          await client.query<{ i: number; job_id: number; reason: string; count: number | null }>(
            EXTEND_SKIPPED,
            [JSON.stringify(extending), now],
          )
        ).rows;
  const done = new Set(extended.map((row) => row.i));
  const rest = numbered.filter((row) => !done.has(row.i));
  const inserted =
    rest.length === 0
      ? []
      : (
          await client.query<{ job_id: number; reason: string; count: number | null }>(RECORD_SKIPPED, [
            JSON.stringify(rest),
            now,
          ])
        ).rows;
  return [...extended, ...inserted].map(writtenFromRow);
}

/**
 * Fires one entry with policy steps, inside the caller's transaction. The compare-and-set takes the
 * job's row lock, so no other fire of this job interleaves with the overlap decision.
 */
export async function fireWithPolicies(
  client: pg.PoolClient,
  entry: FireEntry,
  now: number,
): Promise<{ advanced: boolean; runs: number; groups: string[]; skipped: SkipWritten[] }> {
  const advanced = await client.query<{ group_name: string }>(ADVANCE_JOB, [
    entry.jobId,
    entry.expected,
    entry.next,
  ]);
  if (advanced.rows.length === 0) return { advanced: false, runs: 0, groups: [], skipped: [] };
  const groups: string[] = [];
  let decision: Array<'run' | 'buffer' | 'skip'> = entry.fires.map(() => 'run');
  if (entry.overlap && entry.fires.length > 0) {
    const active = (
      await client.query<{ id: number; status: string; available_at: number }>(ACTIVE_RUNS, [entry.jobId])
    ).rows;
    const buffered = active.filter((run) => run.available_at === BUFFERED_AT);
    const overlap = decideOverlap(entry.overlap, entry.fires.length, {
      inFlight: active.length - buffered.length,
      buffered: buffered.length,
    });
    decision = overlap.fires;
    if (overlap.promoteOldest) {
      const promoted = await client.query<{ group_name: string }>(PROMOTE_RUN, [buffered[0]!.id, now]);
      groups.push(...promoted.rows.map((r) => r.group_name));
    }
    if (overlap.cancelActive) {
      const ids = active.map((r) => r.id);
      await client.query(CANCEL_ACTIVE_RUNS, [ids, now, CANCELLED_BY_OVERLAP]);
      groups.push(...(await afterRunsEnded(client, ids, now)));
    }
  }
  const ranges = [...(entry.skipped ?? [])];
  const dropped = entry.fires.filter((_, i) => decision[i] === 'skip');
  if (dropped.length > 0) {
    const index = entry.fires.indexOf(dropped[0]!);
    ranges.push({
      reason: 'overlap',
      first: dropped[0]!,
      last: dropped[dropped.length - 1]!,
      count: dropped.length,
      after: index > 0 ? entry.fires[index - 1] : entry.previousFire,
    });
  }
  let runs = 0;
  const fires = entry.fires.flatMap((fireTime, i) =>
    decision[i] === 'skip'
      ? []
      : [
          {
            fire_time: fireTime,
            available_at: decision[i] === 'buffer' ? BUFFERED_AT : (entry.availableAt?.[i] ?? fireTime),
            trace_context: traceColumn(entry.traceContexts?.[i]),
          },
        ],
  );
  if (fires.length > 0) {
    runs =
      (await client.query(INSERT_SCHEDULED_RUNS, [entry.jobId, JSON.stringify(fires), now])).rowCount ?? 0;
  }
  if (entry.countRuns && runs > 0) await client.query(COUNT_RUNS, [entry.jobId, runs]);
  const skipped = await writeSkipped(client, skippedInput(entry, ranges), now);
  if (runs > 0) groups.push(advanced.rows[0]!.group_name);
  return { advanced: true, runs, groups, skipped };
}

/**
 * What the end of runs sets off, inside the transaction that ended them: the jobs that run `after`
 * them get their runs, buffering jobs with nothing left in flight promote their oldest buffered
 * run, and the workflow instances of step runs advance. Answers the groups that got runs.
 */
export async function afterRunsEnded(
  client: pg.PoolClient,
  runIds: readonly number[],
  now: number,
): Promise<string[]> {
  if (runIds.length === 0) return [];
  const { rows } = await client.query<{ buffering: string; groups: string[]; broadcasts: boolean }>(
    TRIGGER_DEPENDENTS,
    [runIds, now],
  );
  const broadcast = rows[0]!.broadcasts ? await broadcastDependents(client, runIds, now) : [];
  // Instances before jobs, as in finishAttempts: advancing locks instances, promoting locks jobs.
  const advanced = await advanceWorkflows(client, runIds, now);
  return [
    ...rows[0]!.groups,
    ...broadcast,
    ...advanced,
    ...(await promoteBuffered(client, JSON.parse(rows[0]!.buffering), now)),
  ];
}

/**
 * Second step of a run end, for the jobs that buffer runs only: lock them, then, for each with
 * nothing left in flight, make its oldest buffered run claimable. Two statements: the second sees
 * what a fire or backfill that held the lock committed. Answers the groups that got runs.
 *
 * Why other jobs need neither step: a job's buffered runs come from its buffer-* policy or a serial
 * backfill, and both set `jobs.buffers` first (createJob, {@link startBuffering}) under the job's
 * row lock, marking the runs then in flight (`runs.promotes`). An end whose statement began before
 * that commit either updated its run first (the marking waits for it, then does not count the run
 * as in flight) or waits on the run's row and reads the mark in the row it updates. A run inserted
 * meanwhile waits for that commit (its foreign key check shares the job's row lock), so its end
 * reads the job's flag.
 */
export async function promoteBuffered(
  client: pg.PoolClient,
  jobIds: readonly number[],
  now: number,
): Promise<string[]> {
  if (jobIds.length === 0) return [];
  const jobs = [...new Set(jobIds)].sort((a, b) => a - b);
  await client.query(LOCK_BUFFERING_JOBS, [jobs]);
  const promoted = await client.query<{ group_name: string }>(PROMOTE_BUFFERED, [jobs, now, BUFFERED_AT]);
  return promoted.rows.map((r) => r.group_name);
}

/** Whether a job's overlap policy buffers runs behind the previous one. */
export function buffersRuns(job: JobDefinition): boolean {
  return job.schedule.overlap === 'buffer-one' || job.schedule.overlap === 'buffer-all';
}

/**
 * Before a job may get buffered runs (a buffer-* policy set, a serial backfill), inside the
 * caller's transaction: lock the job and, the first time, mark it and its runs in flight (see
 * {@link promoteBuffered}). Separate statements: the marking sees the runs committed while the
 * lock was awaited.
 */
export async function startBuffering(client: pg.PoolClient, jobId: number): Promise<boolean> {
  const job = await client.query<{ buffers: boolean }>(LOCK_JOB, [jobId]);
  if (job.rows.length === 0) return false;
  if (!job.rows[0]!.buffers) await client.query(START_BUFFERING, [jobId]);
  return true;
}

export function writtenFromRow(row: { job_id: number; reason: string; count: number | null }): SkipWritten {
  return { jobId: row.job_id, reason: row.reason as SkipWritten['reason'], count: row.count };
}

/** Insert backfill runs. $1 job id, $2 [{fire_time, available_at}], $3 now, $4 their trace context. */
export const INSERT_BACKFILL_RUNS = `
  INSERT INTO runs (job_id, group_name, handler, cause, fire_time, params, priority, status, max_attempts, retry,
    timeout_ms, created_at, available_at, trace_context, namespace)
  SELECT j.id, j.group_name, j.handler, 'backfill', f.fire_time, j.params, j.priority, 'queued',
    (j.retry->>'maxAttempts')::int, j.retry, j.timeout_ms, $3, f.available_at, $4::text, j.namespace
  FROM jsonb_to_recordset($2::jsonb) AS f(fire_time bigint, available_at bigint), jobs j
  WHERE j.id = $1
  ORDER BY f.fire_time
  ON CONFLICT DO NOTHING
  RETURNING id, fire_time, group_name`;

/** Backfill runs, inside the caller's transaction (see Store.backfillRuns). */
export async function backfill(
  client: pg.PoolClient,
  jobId: number,
  fireTimes: readonly number[],
  overlap: 'allow' | 'buffer-all',
  now: number,
  traceContext: TraceContext | null = null,
): Promise<{
  created: Array<{ runId: number; fireTime: number }>;
  existing: number[];
  group: string | null;
}> {
  // The job's row lock first: a run of the job that ends meanwhile waits for it, then sees what we buffer.
  const serial = overlap === 'buffer-all';
  const found = serial
    ? await startBuffering(client, jobId)
    : (await client.query(LOCK_JOB, [jobId])).rows.length > 0;
  if (!found) throw new KairosError('JOB_NOT_FOUND', `job ${jobId} does not exist`);
  const active = await client.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM runs WHERE job_id = $1 AND status IN ('queued', 'running')`,
    [jobId],
  );
  const input = fireTimes.map((fireTime) => ({
    fire_time: fireTime,
    available_at: serial ? BUFFERED_AT : now,
  }));
  const inserted = await client.query<{ id: number; fire_time: number; group_name: string }>(
    INSERT_BACKFILL_RUNS,
    [jobId, JSON.stringify(input), now, traceColumn(traceContext)],
  );
  const created = inserted.rows
    .map((r) => ({ runId: r.id, fireTime: r.fire_time }))
    .sort((a, b) => a.fireTime - b.fireTime);
  const made = new Set(created.map((c) => c.fireTime));
  let group = serial ? null : (inserted.rows[0]?.group_name ?? null);
  if (serial && active.rows[0]!.n === 0 && created.length > 0) {
    // Nothing of the job in flight: the oldest backfill run goes now, the rest wait their turn.
    const promoted = await client.query<{ group_name: string }>(PROMOTE_RUN, [created[0]!.runId, now]);
    group = promoted.rows[0]?.group_name ?? null;
  }
  return { created, existing: fireTimes.filter((t) => !made.has(t)), group };
}

/**
 * Create or replace a calendar of namespace $4, answering whether it was new; no row when another
 * namespace has a calendar of that name (left alone). $1 name, $2 definition, $3 now.
 */
export const PUT_CALENDAR = `
  INSERT INTO calendars (name, definition, created_at, updated_at, namespace) VALUES ($1, $2::jsonb, $3, $3, $4)
  ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at
    WHERE calendars.namespace = excluded.namespace
  RETURNING *, (xmax = 0) AS created`;

/** A job that names the calendar, if any. $1 calendar name. */
export const CALENDAR_USER = `SELECT name FROM jobs WHERE schedule->'calendars' ? $1 ORDER BY name LIMIT 1`;

// The Store contract's "Schedules" section ---------------------------------------------------

/**
 * Make job $1's queued runs held while it was paused (workflow step runs, at $3) available at $2,
 * in the resume's transaction. Answers their groups.
 */
export const RELEASE_HELD_RUNS = `
  UPDATE runs SET available_at = $2 WHERE job_id = $1 AND status = 'queued' AND available_at = $3
  RETURNING group_name`;

export async function listSkipped(
  c: PostgresConnection,
  jobId: number,
  query: { before?: number | undefined; limit: number },
): Promise<SkippedRecord[]> {
  const rows = await c.query<SkippedRow>('listSkipped', LIST_SKIPPED, [
    jobId,
    query.before ?? null,
    query.limit,
  ]);
  return rows.map(skippedFromRow);
}

export async function resumeJob(
  c: PostgresConnection,
  id: number,
  job: JobDefinition,
  nextFireAt: number | null,
  skipped: SkippedRange | null,
  now: number,
  expected?: JobExpectation,
  quota?: JobQuotaCheck,
): Promise<JobRecord | null> {
  const resumed = await c.transaction('resumeJob', async (client) => {
    if (job.trigger.kind === 'after') await lockDependencyEdit(client, id, job);
    const namespace = quota ? await quotas.lockNamespaceOfJob(client, id) : null;
    if (buffersRuns(job)) await startBuffering(client, id);
    const { rows } = await client.query<JobRow>(RESUME_JOB, updateValues(id, job, nextFireAt, now, expected));
    if (rows[0] && quota && namespace !== null) await quotas.checkJobQuota(client, namespace, id, quota);
    if (rows[0] && skipped) {
      await writeSkipped(
        client,
        skippedInput({ jobId: id, expected: 0, next: nextFireAt, fires: [] }, [skipped]),
        now,
      );
    }
    if (!rows[0]) return null;
    // The workflow step runs held while the job was paused become available with the resume.
    const released = await client.query<{ group_name: string }>(RELEASE_HELD_RUNS, [
      id,
      now,
      HELD_WHILE_PAUSED_AT,
    ]);
    return { row: rows[0], groups: [...new Set(released.rows.map((r) => r.group_name))] };
  });
  if (!resumed) return null;
  await c.notify([{ type: 'jobs' }, ...resumed.groups.map((group) => ({ type: 'runs' as const, group }))]);
  const row = resumed.row;
  return row ? jobFromRow(row) : null;
}

export async function backfillRuns(
  c: PostgresConnection,
  jobId: number,
  fireTimes: readonly number[],
  overlap: 'allow' | 'buffer-all',
  now: number,
  traceContext: TraceContext | null = null,
  maxQueuedRuns?: MaxQueuedRuns,
): Promise<{ created: Array<{ runId: number; fireTime: number }>; existing: number[] }> {
  const { created, existing, group } = await c.transaction('backfillRuns', async (client) => {
    const limit = maxQueuedRuns ?? null;
    const namespace = limit === null ? null : await quotas.lockNamespaceOfJob(client, jobId);
    const out = await backfill(client, jobId, fireTimes, overlap, now, traceContext);
    if (limit !== null && namespace !== null)
      await quotas.checkQueuedRunsAfter(client, namespace, limit, out.created.length);
    return out;
  });
  if (group) await c.notify([{ type: 'runs', group }]);
  return { created, existing };
}

export async function putCalendar(
  c: PostgresConnection,
  calendar: CalendarDefinition,
  now: number,
  namespace = DEFAULT_NAMESPACE,
): Promise<{ calendar: CalendarRecord; created: boolean }> {
  const [row] = await c.query<CalendarRow & { created: boolean }>('putCalendar', PUT_CALENDAR, [
    calendar.name,
    JSON.stringify(calendar),
    now,
    namespace,
  ]);
  if (!row) throw nameTakenElsewhere('calendar', calendar.name);
  return { calendar: calendarFromRow(row), created: row.created };
}

export async function getCalendars(
  c: PostgresConnection,
  names: readonly string[],
): Promise<CalendarRecord[]> {
  if (names.length === 0) return [];
  const rows = await c.query<CalendarRow>(
    'getCalendars',
    'SELECT * FROM calendars WHERE name = ANY($1::text[]) ORDER BY name',
    [names],
  );
  return rows.map(calendarFromRow);
}

export async function listCalendars(c: PostgresConnection, namespace?: string): Promise<CalendarRecord[]> {
  return (
    await c.query<CalendarRow>(
      'listCalendars',
      'SELECT * FROM calendars WHERE ($1::text IS NULL OR namespace = $1) ORDER BY name',
      [namespace ?? null],
    )
  ).map(calendarFromRow);
}

export async function deleteCalendar(c: PostgresConnection, name: string): Promise<boolean> {
  return c.transaction('deleteCalendar', async (client) => {
    const user = await client.query<{ name: string }>(CALENDAR_USER, [name]);
    if (user.rows[0]) {
      throw new KairosError(
        'CALENDAR_IN_USE',
        `calendar ${JSON.stringify(name)} is used by job ${JSON.stringify(user.rows[0].name)}`,
        { job: user.rows[0].name },
      );
    }
    return ((await client.query('DELETE FROM calendars WHERE name = $1', [name])).rowCount ?? 0) > 0;
  });
}
