// The worker protocol on SQLite: registration, heartbeats, claims and dispatch with routing,
// resources and group limits, drain and resume (the Store contract's Worker protocol section and
// Workers at scale).

import type { AttemptRef } from '@kairos/client';
import type { Bucket } from '../../core/rate-limit.ts';
import type { Resources } from '../../core/resources.ts';
import type { RoutingState, WorkerLoad } from '../../core/routing.ts';
import { KairosError } from '../../errors.ts';
import {
  bucketScopes,
  type DispatchCandidate,
  lockedJobs,
  planDispatch,
  requestsResources,
} from '../dispatch-plan.ts';
import {
  addUsed,
  type BucketRow,
  type CandidateRow,
  type ClaimRow,
  candidateFromRow,
  claimedFromRow,
  dispatchWindow,
  type GroupLimitRow,
  groupLimitFromRow,
  groupLimitsFromRow,
  type NamespaceGroupLimitRow,
  type SnapshotRow,
  scheduleToStartError,
  snapshotFromRow,
  type UsedRow,
  usedByWorker,
} from '../dispatch-rows.ts';
import { DEFAULT_NAMESPACE } from '../namespaces.ts';
import { heartbeatAnswer, type WorkerRow, workerFromRow } from '../rows.ts';
import type {
  ClaimedRun,
  GroupLimit,
  GroupLimits,
  HeartbeatAnswer,
  WorkerRecord,
  WorkerRegistration,
} from '../store.ts';
import { endRun } from './attempts.ts';
import type { SqliteConnection } from './connection.ts';
import * as hot from './hot-statements.ts';

export function registerWorker(
  c: SqliteConnection,
  worker: WorkerRegistration,
  leaseMs: number,
  now: number,
): void {
  c.run('registerWorker', () =>
    c
      .sql(
        `INSERT INTO workers (id, name, group_name, handlers, capacity, labels, version, host, status, registered_at,
           last_heartbeat_at, lease_expires_at, registered_by, namespace, resources)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, group_name = excluded.group_name, handlers = excluded.handlers,
           capacity = excluded.capacity, labels = excluded.labels, version = excluded.version, host = excluded.host,
           resources = excluded.resources,
           status = 'active', last_heartbeat_at = excluded.last_heartbeat_at, lease_expires_at = excluded.lease_expires_at`,
      )
      .run(
        worker.id,
        worker.name,
        worker.group,
        JSON.stringify(worker.handlers),
        worker.capacity,
        JSON.stringify(worker.labels),
        worker.version,
        worker.host,
        now,
        now,
        now + leaseMs,
        worker.registeredBy ?? '',
        worker.namespace ?? DEFAULT_NAMESPACE,
        worker.resources ? JSON.stringify(worker.resources) : null,
      ),
  );
}

export function heartbeat(
  c: SqliteConnection,
  workerId: string,
  running: readonly AttemptRef[],
  leaseMs: number,
  now: number,
  polled: number | null = null,
  load: WorkerLoad | null = null,
): HeartbeatAnswer | null {
  return c.run('heartbeat', () =>
    c.db
      .transaction(() => {
        const alive = c
          .sql(
            // A lease never moves back (a heartbeat applied after a later one leaves the later lease).
            `UPDATE workers SET last_heartbeat_at = max(last_heartbeat_at, ?), lease_expires_at = max(lease_expires_at, ?),
               load = coalesce(?, load)
             WHERE id = ? AND status IN ('active', 'draining')`,
          )
          .run(now, now + leaseMs, load === null ? null : JSON.stringify(load), workerId).changes;
        if (!alive) return null;
        // No run is written: a running attempt lives as long as its worker's lease.
        const current = (
          c.sql(hot.RUNNING_OF_WORKER).all(workerId) as Array<{
            id: number;
            attempt: number;
            claim_seq: number | null;
          }>
        ).map((row) => [row.id, row.attempt, row.claim_seq] as const);
        return heartbeatAnswer(current, running, polled);
      })
      .immediate(),
  );
}

export function claimRuns(c: SqliteConnection, workerId: string, max: number, now: number): ClaimedRun[] {
  const claimed = c.run('claimRuns', () =>
    c.db
      .transaction(() => {
        const worker = c
          .sql(`SELECT namespace, group_name, handlers FROM workers WHERE id = ? AND status = 'active'`)
          .get(workerId) as { namespace: string; group_name: string; handlers: string } | undefined;
        if (!worker) return null;
        const ids = (
          c
            .sql(
              `SELECT id FROM runs INDEXED BY runs_claim
               WHERE status = 'queued' AND group_name = @group AND available_at <= @now AND namespace = @namespace
                 AND handler IN (SELECT value FROM json_each(@handlers))
               ORDER BY priority DESC, available_at, id LIMIT @max`,
            )
            .all({
              now,
              namespace: worker.namespace,
              group: worker.group_name,
              handlers: worker.handlers,
              max,
            }) as Array<{ id: number }>
        ).map((row) => row.id);
        return claimIds(c, workerId, ids, now, null);
      })
      .immediate(),
  );
  if (claimed === null)
    throw new KairosError('WORKER_NOT_FOUND', `worker ${workerId} is not registered or was declared lost`);
  return claimed;
}

export function unregisterWorker(c: SqliteConnection, workerId: string, now: number): void {
  c.run('unregisterWorker', () =>
    c.sql(`UPDATE workers SET status = 'stopped', lease_expires_at = ? WHERE id = ?`).run(now, workerId),
  );
}

export function listWorkers(c: SqliteConnection, namespace?: string): WorkerRecord[] {
  return c.run('listWorkers', () =>
    (
      c
        .sql(
          `SELECT w.*, (SELECT count(*) FROM runs r WHERE r.worker_id = w.id AND r.status = 'running') AS running
           FROM workers w WHERE (? IS NULL OR w.namespace = ?) ORDER BY w.group_name, w.name`,
        )
        .all(namespace ?? null, namespace ?? null) as WorkerRow[]
    ).map(workerFromRow),
  );
}

export function resourcesInUse(c: SqliteConnection, workerIds: readonly string[]): Map<string, Resources> {
  if (workerIds.length === 0) return new Map();
  return c.run('resourcesInUse', () =>
    usedByWorker(c.sql(hot.USED_BY_WORKERS).all(JSON.stringify(workerIds)) as UsedRow[]),
  );
}

export function dispatchRuns(
  c: SqliteConnection,
  workerId: string,
  max: number,
  now: number,
  random: number,
  claimSeq: number | null,
  reserveAfterMs: number,
): ClaimedRun[] {
  const out = c.run('dispatchRuns', () =>
    c.db
      .transaction(() => {
        const worker = c
          .sql('SELECT namespace, group_name, handlers, status FROM workers WHERE id = ?')
          .get(workerId) as
          | { namespace: string; group_name: string; handlers: string; status: string }
          | undefined;
        if (!worker || (worker.status !== 'active' && worker.status !== 'draining')) return null;
        if (worker.status === 'draining') return { claimed: [], wake: false };
        const group = worker.group_name;
        // The group's limits in the worker's namespace: they count and cap only that namespace's runs.
        const groupLimits = {
          namespace: worker.namespace,
          name: group,
          ...groupLimitsFromRow(
            c
              .sql(
                `SELECT max_concurrency, rate_limit, rate_per_ms FROM namespace_group_limits
                 WHERE namespace = ? AND group_name = ? AND (max_concurrency IS NOT NULL OR rate_limit IS NOT NULL)`,
              )
              .get(worker.namespace, group) as GroupLimitRow | undefined,
          ),
        };
        const limited = groupLimits.maxConcurrency !== null || groupLimits.rateLimit !== null;
        if (!limited) {
          // The common case first: when the first `max` ready runs all belong to plain jobs (no
          // routing, selector or limit), claim them without reading their policies, params or tasks.
          const picked = c.sql(hot.PICK_PLAIN).all({
            namespace: worker.namespace,
            group,
            now,
            handlers: worker.handlers,
            worker: workerId,
            max,
          }) as Array<{
            id: number;
            plain: number;
          }>;
          if (picked.length === 0) return { claimed: [], wake: false };
          if (picked.every((p) => p.plain === 1)) {
            return {
              claimed: claimIds(
                c,
                workerId,
                picked.map((p) => p.id),
                now,
                claimSeq,
              ),
              wake: false,
            };
          }
        }
        const read = (window: number) =>
          (
            c
              .sql(
                `SELECT r.id, r.job_id, j.name AS job_name, r.handler, r.params, r.target_worker_id, j.dispatch,
                 coalesce(r.task, j.task) AS task, r.resources, r.available_at, r.priority
               FROM runs r INDEXED BY runs_claim JOIN jobs j ON j.id = r.job_id
               WHERE ${hot.READY_FOR_WORKER}
               ORDER BY r.priority DESC, r.available_at, r.id LIMIT @window`,
              )
              .all({
                namespace: worker.namespace,
                group,
                now,
                handlers: worker.handlers,
                worker: workerId,
                window,
              }) as CandidateRow[]
          ).map(candidateFromRow);
        // Routing, selectors or limits in play: read a window wider than `max` (runs that routing or
        // limits pass over must not hide the ones behind them) and plan with the fleet's state.
        const candidates = read(dispatchWindow(max));
        if (candidates.length === 0) return { claimed: [], wake: false };
        const jobs = JSON.stringify(lockedJobs(candidates));
        const live = (
          c
            .sql(
              `SELECT w.id, w.name, w.handlers, w.labels, w.capacity, w.resources, w.load,
                 (SELECT count(*) FROM runs r WHERE r.worker_id = w.id AND r.status = 'running')
                 + (SELECT count(*) FROM runs r WHERE r.target_worker_id = w.id AND r.status = 'queued') AS running
               FROM workers w WHERE w.group_name = ? AND w.namespace = ? AND w.status = 'active'
                 AND w.lease_expires_at > ?`,
            )
            .all(group, worker.namespace, now) as SnapshotRow[]
        ).map(snapshotFromRow);
        // Requests held by the live workers: read only when a candidate requests resources (the
        // one writer makes it exact; runs without a request never pay for it).
        if (requestsResources(candidates))
          addUsed(live, c.sql(hot.USED_BY_WORKERS).all(JSON.stringify(live.map((w) => w.id))) as UsedRow[]);
        const loadOfJob = new Map<string, number>();
        for (const row of c
          .sql(
            `SELECT worker_id AS w, job_id, count(*) AS n FROM runs
             WHERE status = 'running' AND job_id IN (SELECT value FROM json_each(@jobs)) GROUP BY 1, 2
             UNION ALL
             SELECT target_worker_id, job_id, count(*) FROM runs
             WHERE status = 'queued' AND target_worker_id IS NOT NULL AND job_id IN (SELECT value FROM json_each(@jobs))
             GROUP BY 1, 2`,
          )
          .all({ jobs }) as Array<{ w: string; job_id: number; n: number }>) {
          const key = `${row.w}:${row.job_id}`;
          loadOfJob.set(key, (loadOfJob.get(key) ?? 0) + row.n);
        }
        const runningOfJob = new Map<number, number>();
        for (const row of c
          .sql(
            `SELECT job_id, count(*) AS n FROM runs
             WHERE status = 'running' AND job_id IN (SELECT value FROM json_each(?)) GROUP BY job_id`,
          )
          .all(jobs) as Array<{ job_id: number; n: number }>)
          runningOfJob.set(row.job_id, row.n);
        const states = new Map<number, RoutingState>();
        for (const row of c
          .sql('SELECT job_id, state FROM job_routing WHERE job_id IN (SELECT value FROM json_each(?))')
          .all(jobs) as Array<{ job_id: number; state: string }>)
          states.set(row.job_id, JSON.parse(row.state));
        const buckets = new Map<string, Bucket>();
        for (const row of c
          .sql(
            'SELECT scope, tokens, updated_at FROM rate_buckets WHERE scope IN (SELECT value FROM json_each(?))',
          )
          .all(JSON.stringify(bucketScopes(candidates, groupLimits))) as BucketRow[])
          buckets.set(row.scope, { tokens: row.tokens, updatedAt: row.updated_at });
        const groupRunning =
          groupLimits.maxConcurrency === null
            ? 0
            : (
                c
                  .sql(
                    `SELECT count(*) AS n FROM runs WHERE status = 'running' AND namespace = ? AND group_name = ?`,
                  )
                  .get(worker.namespace, group) as { n: number }
              ).n;
        const plan = planDispatch({
          workerId,
          max,
          candidates,
          live,
          loadOfJob,
          runningOfJob,
          groupRunning,
          group: groupLimits,
          buckets,
          now,
          states,
          random,
          reserveAfterMs: reserveAfterMs,
        });
        const assign = c.sql('UPDATE runs SET target_worker_id = ? WHERE id = ?');
        for (const a of plan.assign) assign.run(a.workerId, a.runId);
        const saveState = c.sql(
          `INSERT INTO job_routing (job_id, state) VALUES (?, ?)
             ON CONFLICT (job_id) DO UPDATE SET state = excluded.state`,
        );
        for (const [jobId, state] of plan.states) saveState.run(jobId, JSON.stringify(state));
        const saveBucket = c.sql(
          `INSERT INTO rate_buckets (scope, tokens, updated_at) VALUES (?, ?, ?)
             ON CONFLICT (scope) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at`,
        );
        for (const [scope, b] of plan.buckets) saveBucket.run(scope, b.tokens, b.updatedAt);
        const claimed = claimIds(c, workerId, plan.claim, now, claimSeq, candidates);
        return { claimed, wake: plan.assign.some((a) => a.workerId !== null && a.workerId !== workerId) };
      })
      .immediate(),
  );
  if (out === null)
    throw new KairosError('WORKER_NOT_FOUND', `worker ${workerId} is not registered or was declared lost`);
  // Runs were assigned to other workers: wake their polls.
  if (out.wake) {
    const group = (
      c.sql('SELECT group_name FROM workers WHERE id = ?').get(workerId) as {
        group_name: string;
      }
    ).group_name;
    c.emit({ type: 'runs', group });
  }
  return out.claimed;
}

/**
 * Claims the queued runs `ids` for a worker in two statements (not two per run: a poll of 200 runs
 * is one claim), answered in the order of `ids`. Job names and tasks come from `candidates` when
 * the caller has read them, else from one read of the claimed runs' jobs; a run's own task (a
 * workflow task step's, `runs.task`) comes with the claim and goes before its job's.
 */
export function claimIds(
  c: SqliteConnection,
  workerId: string,
  ids: readonly number[],
  now: number,
  claimSeq: number | null,
  candidates?: readonly DispatchCandidate[],
): ClaimedRun[] {
  const rows = c.sql(hot.CLAIM_IDS).all({
    worker: workerId,
    now,
    seq: claimSeq,
    ids: JSON.stringify(ids),
  }) as Array<ClaimRow & { job_id: number; available_at: number; started_at: number }>;
  if (rows.length === 0) return [];
  const jobs = new Map<number, Pick<DispatchCandidate, 'jobName' | 'task'>>();
  if (candidates) {
    for (const c of candidates) jobs.set(c.jobId, c);
  } else {
    const jobIds = JSON.stringify([...new Set(rows.map((row) => row.job_id))]);
    for (const job of c
      .sql('SELECT id, name, task FROM jobs WHERE id IN (SELECT value FROM json_each(?))')
      .all(jobIds) as Array<{ id: number; name: string; task: string | null }>) {
      jobs.set(job.id, { jobName: job.name, task: job.task === null ? null : JSON.parse(job.task) });
    }
  }
  const byId = new Map(rows.map((row) => [row.id, row]));
  return ids.flatMap((id): ClaimedRun[] => {
    const row = byId.get(id);
    if (!row) return [];
    const claimed = claimedFromRow(row, jobs.get(row.job_id)!);
    return [row.available_at > now ? { ...claimed, startAt: row.available_at } : claimed];
  });
}

export function drainWorker(c: SqliteConnection, workerId: string, _now: number): WorkerRecord | null {
  // Runs assigned to it are routed again by the next claim of another worker.
  return setWorkerStatus(c, 'drainWorker', workerId, 'draining', 'drain');
}

export function resumeWorker(c: SqliteConnection, workerId: string, _now: number): WorkerRecord | null {
  // Its long polls, and those of its group, claim again.
  return setWorkerStatus(c, 'resumeWorker', workerId, 'active', 'resume');
}

/** Drains or resumes a worker that is active or draining; its group's waiters hear of it. */
function setWorkerStatus(
  c: SqliteConnection,
  operation: string,
  workerId: string,
  status: 'active' | 'draining',
  verb: string,
): WorkerRecord | null {
  const found = c.run(operation, () =>
    c.db
      .transaction(() => {
        const worker = c.sql('SELECT status, group_name FROM workers WHERE id = ?').get(workerId) as
          | { status: string; group_name: string }
          | undefined;
        if (!worker) return null;
        if (worker.status !== 'active' && worker.status !== 'draining') {
          throw new KairosError(
            'WORKER_NOT_ACTIVE',
            `worker ${workerId} is ${worker.status}: nothing to ${verb}`,
          );
        }
        c.sql('UPDATE workers SET status = ? WHERE id = ?').run(status, workerId);
        return worker.group_name;
      })
      .immediate(),
  );
  if (found === null) return null;
  c.emit({ type: 'runs', group: found });
  return listWorkers(c).find((w) => w.id === workerId) ?? null;
}

export function expireQueuedRuns(c: SqliteConnection, now: number, limit: number): number[] {
  return c.run('expireQueuedRuns', () =>
    c.db
      .transaction(() => {
        const rows = c.sql(hot.EXPIRED_QUEUED).all({ now, limit }) as Array<{ id: number; ms: number }>;
        for (const row of rows) {
          const error = JSON.stringify(scheduleToStartError(row.ms));
          c.sql(`UPDATE runs SET target_worker_id = NULL WHERE id = ?`).run(row.id);
          endRun(c, row.id, 'failed', now, null, error);
        }
        return rows.map((row) => row.id);
      })
      .immediate(),
  );
}

export function setGroupLimit(
  c: SqliteConnection,
  group: string,
  limits: GroupLimits,
  now: number,
  namespace: string = DEFAULT_NAMESPACE,
): void {
  const values = {
    namespace,
    group,
    maxConcurrency: limits.maxConcurrency,
    rateLimit: limits.rateLimit?.limit ?? null,
    ratePerMs: limits.rateLimit?.perMs ?? null,
    now,
  };
  c.run('setGroupLimit', () =>
    c.db
      .transaction(() => {
        c.sql(
          `INSERT INTO namespace_group_limits (namespace, group_name, max_concurrency, rate_limit, rate_per_ms, updated_at)
             VALUES (@namespace, @group, @maxConcurrency, @rateLimit, @ratePerMs, @now)
             ON CONFLICT (namespace, group_name) DO UPDATE SET max_concurrency = excluded.max_concurrency,
               rate_limit = excluded.rate_limit, rate_per_ms = excluded.rate_per_ms, updated_at = excluded.updated_at`,
        ).run(values);
        // Nodes of the previous release read `default`'s limits here, by group name alone (the
        // migration group_limits_per_namespace); no other namespace's.
        if (namespace === DEFAULT_NAMESPACE)
          c.sql(
            `INSERT INTO group_limits (group_name, max_concurrency, rate_limit, rate_per_ms, updated_at)
               VALUES (@group, @maxConcurrency, @rateLimit, @ratePerMs, @now)
               ON CONFLICT (group_name) DO UPDATE SET max_concurrency = excluded.max_concurrency,
                 rate_limit = excluded.rate_limit, rate_per_ms = excluded.rate_per_ms, updated_at = excluded.updated_at`,
          ).run(values);
      })
      .immediate(),
  );
  c.emit({ type: 'runs', group });
}

export function listGroupLimits(c: SqliteConnection, namespace?: string): GroupLimit[] {
  return c.run('listGroupLimits', () =>
    (
      c
        .sql(
          `SELECT namespace, group_name, max_concurrency, rate_limit, rate_per_ms, updated_at FROM namespace_group_limits
           WHERE @namespace IS NULL OR namespace = @namespace ORDER BY namespace, group_name`,
        )
        .all({ namespace: namespace ?? null }) as NamespaceGroupLimitRow[]
    ).map(groupLimitFromRow),
  );
}

export function routingState(c: SqliteConnection, jobId: number): RoutingState | null {
  return c.run('routingState', () => {
    const row = c.sql('SELECT state FROM job_routing WHERE job_id = ?').get(jobId) as
      | { state: string }
      | undefined;
    return row ? (JSON.parse(row.state) as RoutingState) : null;
  });
}
