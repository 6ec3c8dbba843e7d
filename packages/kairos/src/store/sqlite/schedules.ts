import type { TraceContext } from '@kairos/client';
import type Database from 'better-sqlite3';
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
import { ENDED_BROADCASTS } from './broadcasts.ts';
import type { SqliteConnection } from './connection.ts';
import { checkDependencyCycle } from './dependencies.ts';
import { END_ATTEMPTS, type EndedAttempt } from './hot-statements.ts';
import { UPDATE_JOB, updateValues } from './jobs.ts';
import * as quotas from './quotas.ts';
import { advanceWorkflows } from './workflows.ts';

type Sql = (text: string) => Database.Statement<unknown[], unknown>;

/** A queued or running run of a job, as the overlap policy reads it (worker and start: of its attempt). */
interface ActiveRun {
  id: number;
  status: string;
  attempt: number;
  worker_id: string | null;
  started_at: number | null;
  available_at: number;
}

const CANCELLED_BY_OVERLAP = JSON.stringify({
  name: 'Cancelled',
  message: 'cancelled by the overlap policy (cancel-previous) of a newer fire',
});

/** Whether an entry needs the schedule-policy steps of the fire transaction. */
export function hasPolicies(entry: FireEntry): boolean {
  return (
    entry.overlap !== undefined ||
    entry.countRuns === true ||
    (entry.skipped?.some((range) => range.after !== undefined) ?? false)
  );
}

/**
 * Applies the overlap policy inside the fire transaction (the job's row is already written by the
 * compare-and-set, so no other fire of the job interleaves). Answers, per fire to insert, its index
 * and whether it is buffered, and the fires dropped as `overlap`.
 */
export function applyOverlap(
  sql: Sql,
  entry: FireEntry,
  now: number,
): { keep: Array<{ i: number; buffered: boolean }>; skipped: SkippedRange | null; groups: string[] } {
  if (!entry.overlap || entry.fires.length === 0) {
    return { keep: entry.fires.map((_, i) => ({ i, buffered: false })), skipped: null, groups: [] };
  }
  const active = sql(
    `SELECT id, status, attempt, worker_id, started_at, available_at FROM runs
     WHERE job_id = ? AND status IN ('queued', 'running') ORDER BY fire_time, id`,
  ).all(entry.jobId) as ActiveRun[];
  const buffered = active.filter((run) => run.available_at === BUFFERED_AT);
  const decision = decideOverlap(entry.overlap, entry.fires.length, {
    inFlight: active.length - buffered.length,
    buffered: buffered.length,
  });
  const groups: string[] = [];
  if (decision.promoteOldest) groups.push(...promote(sql, buffered[0]!.id, now));
  if (decision.cancelActive) {
    for (const run of active) {
      if (run.status === 'running') {
        // The running attempt's row is written now, as it ends (the run row held it while it ran).
        const attempt: EndedAttempt = [
          run.id,
          run.attempt,
          run.worker_id!,
          'cancelled',
          run.started_at!,
          CANCELLED_BY_OVERLAP,
        ];
        sql(END_ATTEMPTS).run(now, JSON.stringify([attempt]));
      }
      sql(
        `UPDATE runs SET status = 'cancelled', finished_at = ?, error = ?, deadline_at = NULL
         WHERE id = ?`,
      ).run(now, CANCELLED_BY_OVERLAP, run.id);
      groups.push(...triggerDependents(sql, [run.id], now));
      groups.push(...advanceWorkflows(sql, [run.id], now));
    }
  }
  const keep = decision.fires.flatMap((what, i) =>
    what === 'skip' ? [] : [{ i, buffered: what === 'buffer' }],
  );
  const dropped = entry.fires.filter((_, i) => decision.fires[i] === 'skip');
  return { keep, groups, skipped: overlapRange(entry, dropped) };
}

/**
 * What ended runs set off, in the transaction that ended them: for each of their jobs with nothing
 * left in flight, the oldest buffered run becomes claimable; the jobs that run `after` theirs get
 * their runs; the workflow instances of step runs advance (store/workflows.ts). One statement each
 * for the whole batch; per job only where a buffered run exists. Answers the groups that got runs.
 */
export function afterRunsEnded(
  sql: Sql,
  ended: ReadonlyArray<{ runId: number; jobId: number; workflowInstanceId?: number | null }>,
  now: number,
): string[] {
  if (ended.length === 0) return [];
  const groups: string[] = [];
  const buffering = sql(
    // status IN (…) as in the runs_active index; a buffered run is always queued. Without INDEXED BY
    // the planner may take runs_ahead and walk every queued run of the store.
    `SELECT DISTINCT job_id FROM runs INDEXED BY runs_active
     WHERE job_id IN (SELECT value FROM json_each(?)) AND status IN ('queued', 'running') AND available_at = ?`,
  ).all(JSON.stringify([...new Set(ended.map((e) => e.jobId))]), BUFFERED_AT) as Array<{ job_id: number }>;
  for (const { job_id: jobId } of buffering) {
    const next = sql(
      `SELECT id FROM runs WHERE job_id = ? AND status IN ('queued', 'running') AND available_at = ?
         AND NOT EXISTS (SELECT 1 FROM runs WHERE job_id = ? AND status IN ('queued', 'running') AND available_at <> ?)
       ORDER BY fire_time, id LIMIT 1`,
    ).get(jobId, BUFFERED_AT, jobId, BUFFERED_AT) as { id: number } | undefined;
    if (next) groups.push(...promote(sql, next.id, now));
  }
  // Most jobs have no dependents: one look at the jobs_after index decides whether to join at all.
  const parents = sql(
    `SELECT p.id FROM jobs p
     WHERE p.id IN (SELECT value FROM json_each(?))
       AND EXISTS (SELECT 1 FROM jobs c WHERE json_extract(c.trigger, '$.kind') = 'after'
         AND json_extract(c.trigger, '$.job') = p.name)`,
  ).all(JSON.stringify([...new Set(ended.map((e) => e.jobId))])) as Array<{ id: number }>;
  if (parents.length > 0) {
    const withDependents = new Set(parents.map((p) => p.id));
    const runs = ended.filter((e) => withDependents.has(e.jobId)).map((e) => e.runId);
    groups.push(...triggerDependents(sql, runs, now));
  }
  const steps = ended.filter((e) => e.workflowInstanceId != null).map((e) => e.runId);
  groups.push(...advanceWorkflows(sql, steps, now));
  return groups;
}

function promote(sql: Sql, runId: number, now: number): string[] {
  const row = sql('UPDATE runs SET available_at = ? WHERE id = ? RETURNING group_name').get(now, runId) as
    | { group_name: string }
    | undefined;
  return row ? [row.group_name] : [];
}

/** The ended runs @runs that set off their dependents alone: not shards of a broadcast. */
const ENDED_RUNS = `
  SELECT id, job_id, status, result, trace_context FROM runs
  WHERE id IN (SELECT value FROM json_each(@runs)) AND broadcast_run_id IS NULL`;

/** The jobs (c) that run `after` the job (p) of an ended run (e), when its end matches their condition. */
const AFTER_MATCH = `
  FROM ended e JOIN jobs p ON p.id = e.job_id
  JOIN jobs c ON json_extract(c.trigger, '$.kind') = 'after' AND json_extract(c.trigger, '$.job') = p.name
    AND c.namespace = p.namespace
  WHERE (json_extract(c.trigger, '$.on') = 'always'
    OR (json_extract(c.trigger, '$.on') = 'success' AND e.status = 'succeeded')
    OR (json_extract(c.trigger, '$.on') = 'failure' AND e.status IN ('failed', 'timed_out')))`;

/**
 * Runs of the jobs whose trigger is `after` the ended run's job, when its end matches their
 * condition. Each gets the parent's job, run id, status and result under `params.parent`; the
 * idempotency key `after:<run id>` makes a second call for the same end create nothing. A shard of
 * a broadcast sets off nothing alone: the broadcast does, once, when its last shard ends, as one
 * run (ENDED_BROADCASTS). A paused dependent gets no run but a ledger row (see {@link recordPaused}).
 */
function triggerDependents(sql: Sql, runIds: readonly number[], now: number): string[] {
  const groups: string[] = [];
  for (const ended of [ENDED_RUNS, ENDED_BROADCASTS]) {
    const params = { runs: JSON.stringify(runIds), now };
    const rows = sql(
      `WITH ended AS (${ended})
       INSERT INTO runs (job_id, group_name, handler, cause, idempotency_key, params, priority, status, max_attempts,
         retry, timeout_ms, created_at, available_at, trace_context, namespace)
       SELECT c.id, c.group_name, c.handler, 'dependency', 'after:' || e.id,
         json_set(c.params, '$.parent', json_object('job', p.name, 'runId', e.id, 'status', e.status,
           'result', json(coalesce(e.result, 'null')))),
         c.priority, 'queued', json_extract(c.retry, '$.maxAttempts'), c.retry, c.timeout_ms, @now, @now,
         e.trace_context, c.namespace
       ${AFTER_MATCH} AND c.paused = 0
       ON CONFLICT DO NOTHING
       RETURNING group_name`,
    ).all(params) as Array<{ group_name: string }>;
    groups.push(...rows.map((row) => row.group_name));
    const paused = sql(
      `WITH ended AS (${ended})
       SELECT c.id AS job_id, c.updated_at, count(*) AS n ${AFTER_MATCH} AND c.paused = 1 GROUP BY c.id`,
    ).all(params) as Array<{ job_id: number; updated_at: number; n: number }>;
    for (const job of paused) recordPaused(sql, job, now);
  }
  return groups;
}

/**
 * A parent's end that would have queued `n` runs of a paused job: its ledger row, reason `paused`.
 * The first such end since the job was paused (its updated_at) starts a row at the parent's end
 * time; later ones extend it and count.
 */
function recordPaused(sql: Sql, job: { job_id: number; updated_at: number; n: number }, now: number): void {
  const extended = sql(
    `UPDATE skipped_fires SET last_fire = max(last_fire, @now), count = count + @n, recorded_at = @now
     WHERE id = (SELECT max(id) FROM skipped_fires WHERE job_id = @job AND reason = 'paused' AND recorded_at >= @since)`,
  ).run({ now, n: job.n, job: job.job_id, since: job.updated_at });
  if (extended.changes > 0) return;
  sql(
    `INSERT INTO skipped_fires (job_id, reason, first_fire, last_fire, count, recorded_at)
     VALUES (?, 'paused', ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  ).run(job.job_id, now, now, job.n, now);
}

/** The fires an overlap policy dropped as one ledger range, continuing the row of the fire before. */
export function overlapRange(
  entry: FireEntry,
  dropped: readonly number[],
  reason: SkippedRange['reason'] = 'overlap',
): SkippedRange | null {
  if (dropped.length === 0) return null;
  const index = entry.fires.indexOf(dropped[0]!);
  return {
    reason,
    first: dropped[0]!,
    last: dropped[dropped.length - 1]!,
    count: dropped.length,
    after: index > 0 ? entry.fires[index - 1] : entry.previousFire,
  };
}

/**
 * Writes ledger rows. A range whose `after` is where the job's latest row of the same reason ends
 * extends that row; otherwise it is a new row, and a range already recorded (same job, reason,
 * first fire) is kept once.
 */
export function recordSkipped(
  sql: Sql,
  jobId: number,
  ranges: readonly SkippedRange[],
  now: number,
): SkipWritten[] {
  const extend = sql(
    `UPDATE skipped_fires SET last_fire = ?, count = count + ?, recorded_at = ?
     WHERE id = (SELECT id FROM skipped_fires WHERE job_id = ? AND reason = ? AND last_fire = ? ORDER BY id DESC LIMIT 1)`,
  );
  const insert = sql(
    `INSERT INTO skipped_fires (job_id, reason, first_fire, last_fire, count, recorded_at)
     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
  );
  const written: SkipWritten[] = [];
  for (const range of ranges) {
    const extended =
      range.after !== undefined &&
      extend.run(range.last, range.count, now, jobId, range.reason, range.after).changes > 0;
    if (extended || insert.run(jobId, range.reason, range.first, range.last, range.count, now).changes > 0) {
      written.push({ jobId, reason: range.reason, count: range.count });
    }
  }
  return written;
}

export function countRuns(sql: Sql, jobId: number, runs: number): void {
  if (runs > 0) sql('UPDATE jobs SET runs_fired = runs_fired + ? WHERE id = ?').run(runs, jobId);
}

/** Backfill runs, inside the caller's transaction (see Store.backfillRuns). */
export function backfill(
  sql: Sql,
  jobId: number,
  fireTimes: readonly number[],
  overlap: 'allow' | 'buffer-all',
  now: number,
  traceContext: TraceContext | null = null,
): { created: Array<{ runId: number; fireTime: number }>; existing: number[]; group: string | null } {
  const active = sql(
    `SELECT count(*) AS n FROM runs WHERE job_id = ? AND status IN ('queued', 'running')`,
  ).get(jobId) as { n: number };
  const insert = sql(
    `INSERT INTO runs (job_id, group_name, handler, cause, fire_time, params, priority, status, max_attempts, retry,
       timeout_ms, created_at, available_at, trace_context, namespace)
     SELECT id, group_name, handler, 'backfill', ?, params, priority, 'queued', json_extract(retry, '$.maxAttempts'),
       retry, timeout_ms, ?, ?, ?, namespace
     FROM jobs WHERE id = ?
     ON CONFLICT DO NOTHING RETURNING id, group_name`,
  );
  const trace = traceColumn(traceContext);
  let busy = overlap === 'buffer-all' && active.n > 0;
  const created: Array<{ runId: number; fireTime: number }> = [];
  const existing: number[] = [];
  let group: string | null = null;
  for (const fireTime of fireTimes) {
    const row = insert.get(fireTime, now, busy ? BUFFERED_AT : now, trace, jobId) as
      | { id: number; group_name: string }
      | undefined;
    if (!row) {
      existing.push(fireTime);
      continue;
    }
    if (!busy) group = row.group_name;
    created.push({ runId: row.id, fireTime });
    busy = overlap === 'buffer-all';
  }
  return { created, existing, group };
}

export function listSkipped(
  c: SqliteConnection,
  jobId: number,
  query: { before?: number | undefined; limit: number },
): SkippedRecord[] {
  return c.run('listSkipped', () =>
    (
      c
        .sql(
          `SELECT s.*, j.name AS job_name FROM skipped_fires s JOIN jobs j ON j.id = s.job_id
           WHERE s.job_id = @job AND (@before IS NULL OR s.id < @before) ORDER BY s.id DESC LIMIT @limit`,
        )
        .all({ job: jobId, before: query.before ?? null, limit: query.limit }) as SkippedRow[]
    ).map(skippedFromRow),
  );
}

export function resumeJob(
  c: SqliteConnection,
  id: number,
  job: JobDefinition,
  nextFireAt: number | null,
  skipped: SkippedRange | null,
  now: number,
  expected?: JobExpectation,
  quota?: JobQuotaCheck,
): JobRecord | null {
  const resumed = c.run('resumeJob', () =>
    c.db
      .transaction(() => {
        const row = c
          .sql(`${UPDATE_JOB} AND paused = 1 RETURNING *`)
          .get(...updateValues(id, job, nextFireAt, now, expected)) as JobRow | undefined;
        if (row && quota) quotas.checkJobQuota((text) => c.sql(text), row.namespace, id, quota);
        if (row) checkDependencyCycle((text) => c.sql(text), row.namespace, job);
        if (row && skipped) recordSkipped((text) => c.sql(text), id, [skipped], now);
        // The workflow step runs held while the job was paused become available with the resume.
        const released = row
          ? (c
              .sql(
                `UPDATE runs SET available_at = ? WHERE job_id = ? AND status = 'queued' AND available_at = ?
                 RETURNING group_name`,
              )
              .all(now, id, HELD_WHILE_PAUSED_AT) as Array<{ group_name: string }>)
          : [];
        return row ? { row, groups: released.map((r) => r.group_name) } : undefined;
      })
      .immediate(),
  );
  const row = resumed?.row;
  if (row) c.emit({ type: 'jobs' });
  for (const group of new Set(resumed?.groups ?? [])) c.emit({ type: 'runs', group });
  return row ? jobFromRow(row) : null;
}

export function backfillRuns(
  c: SqliteConnection,
  jobId: number,
  fireTimes: readonly number[],
  overlap: 'allow' | 'buffer-all',
  now: number,
  traceContext: TraceContext | null = null,
  maxQueuedRuns?: MaxQueuedRuns,
): { created: Array<{ runId: number; fireTime: number }>; existing: number[] } {
  const { created, existing, group } = c.run('backfillRuns', () =>
    c.db
      .transaction(() => {
        if (!c.sql('SELECT 1 FROM jobs WHERE id = ?').get(jobId)) {
          throw new KairosError('JOB_NOT_FOUND', `job ${jobId} does not exist`);
        }
        const out = backfill((text) => c.sql(text), jobId, fireTimes, overlap, now, traceContext);
        if (maxQueuedRuns != null)
          quotas.checkQueuedRunsAfter((text) => c.sql(text), jobId, maxQueuedRuns, out.created.length);
        return out;
      })
      .immediate(),
  );
  if (group) c.emit({ type: 'runs', group });
  return { created, existing };
}

export function putCalendar(
  c: SqliteConnection,
  calendar: CalendarDefinition,
  now: number,
  namespace = DEFAULT_NAMESPACE,
): { calendar: CalendarRecord; created: boolean } {
  return c.run('putCalendar', () =>
    c.db
      .transaction(() => {
        const existed = c.sql('SELECT 1 FROM calendars WHERE name = ?').get(calendar.name) !== undefined;
        // A calendar of that name in another namespace is left alone: the upsert updates nothing.
        const row = c
          .sql(
            `INSERT INTO calendars (name, definition, created_at, updated_at, namespace) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at
               WHERE calendars.namespace = excluded.namespace
             RETURNING *`,
          )
          .get(calendar.name, JSON.stringify(calendar), now, now, namespace) as CalendarRow | undefined;
        if (!row) throw nameTakenElsewhere('calendar', calendar.name);
        return { calendar: calendarFromRow(row), created: !existed };
      })
      .immediate(),
  );
}

export function getCalendars(c: SqliteConnection, names: readonly string[]): CalendarRecord[] {
  if (names.length === 0) return [];
  return c.run('getCalendars', () =>
    (
      c
        .sql('SELECT * FROM calendars WHERE name IN (SELECT value FROM json_each(?)) ORDER BY name')
        .all(JSON.stringify(names)) as CalendarRow[]
    ).map(calendarFromRow),
  );
}

export function listCalendars(c: SqliteConnection, namespace?: string): CalendarRecord[] {
  return c.run('listCalendars', () =>
    (
      c
        .sql('SELECT * FROM calendars WHERE (? IS NULL OR namespace = ?) ORDER BY name')
        .all(namespace ?? null, namespace ?? null) as CalendarRow[]
    ).map(calendarFromRow),
  );
}

export function deleteCalendar(c: SqliteConnection, name: string): boolean {
  return c.run('deleteCalendar', () =>
    c.db
      .transaction(() => {
        const user = c
          .sql(
            `SELECT name FROM jobs WHERE EXISTS (SELECT 1 FROM json_each(jobs.schedule, '$.calendars') WHERE value = ?)
             ORDER BY name LIMIT 1`,
          )
          .get(name) as { name: string } | undefined;
        if (user) {
          throw new KairosError(
            'CALENDAR_IN_USE',
            `calendar ${JSON.stringify(name)} is used by job ${JSON.stringify(user.name)}`,
            {
              job: user.name,
            },
          );
        }
        return c.sql('DELETE FROM calendars WHERE name = ?').run(name).changes > 0;
      })
      .immediate(),
  );
}
