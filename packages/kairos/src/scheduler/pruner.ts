import type { Logger } from 'pino';
import {
  instancePrunable,
  MIN_RUN_AGE_MS,
  type PruneCandidate,
  prunable,
  type RetentionConfig,
  shortestAgeMs,
} from '../core/retention.ts';
import type { Lease, PruneCursor, Store } from '../store/store.ts';
import { BackgroundLoop } from './background-loop.ts';
import { type Clock, yieldToEventLoop } from './clock.ts';

/** What the pruner deletes, as the `kind` label of `kairos_pruned_rows_total`. */
export type PruneKind =
  | 'runs'
  | 'run_logs'
  | 'skipped_fires'
  | 'audit_log'
  | 'workers'
  | 'workflow_instances'
  | 'workflow_map_items';

const NO_COUNTS: Readonly<PruneCounts> = Object.freeze({
  runs: 0,
  run_logs: 0,
  skipped_fires: 0,
  audit_log: 0,
  workers: 0,
  workflow_instances: 0,
  workflow_map_items: 0,
});

export type PruneCounts = Record<PruneKind, number>;

/** Pages one step of giving space back moves at most (4 KiB each: 16 MiB). */
export const RECLAIM_PAGES = 4096;

/** The lease that makes one node of the cluster the pruner at a time. */
export const PRUNER_LEASE = 'retention';

/** What a node's pruner did lately, for `GET /v1/settings/retention` (times on the store's clock). */
export interface PrunerState {
  /** The last cycle this node tried: when it started, and whether it held the `retention` lease. */
  lastTry: { at: number; heldLease: boolean } | null;
  /** The last cycle this node ran to its end: when it ended, how long it took, what it deleted. */
  lastCycle: { endedAt: number; tookMs: number; pruned: PruneCounts } | null;
  /** When this node tries its next cycle; null when its pruner does not run. */
  nextCycleAt: number | null;
  /** Rows this node deleted since it started, by kind. */
  prunedSinceStart: PruneCounts;
}

export interface PrunerOptions {
  store: Store;
  clock: Clock;
  logger: Logger;
  /** This process's instance: the owner of the pruner's lease. */
  owner: string;
  retention: RetentionConfig;
  /** Rows deleted, after each batch. */
  onPruned?: (kind: PruneKind, rows: number) => void;
  /** A cycle ended (on the store's clock), and how long it took. */
  onCycle?: (at: number, tookMs: number) => void;
}

/**
 * Deletes what retention lets go (docs/retention.md), on one node of the cluster at a time: a cycle
 * every `intervalMs` on the node that holds the `retention` lease (taken like a trigger partition's,
 * renewed between batches; a node that dies leaves it to another within the lease). Every delete is a
 * bounded batch of `batch` rows in a short statement of its own, with a yield to the event loop
 * between batches, so the hot path never waits behind it.
 *
 * Finished runs go in two passes. The age pass walks every finished run ended before the shorter of
 * the two default ages, in end order from a cursor: runs it keeps (a job's longer retention, failed
 * runs kept longer, the newest run of a job) are read once per cycle, never again in it. The job
 * pass walks the runs of each job with a retention of its own by id, oldest first, and stops at the
 * first run created after the job's shorter age that its `keepLast` does not take. A step run of
 * a workflow instance that is still running or paused stays whatever its age (the store's delete
 * keeps it); ended instances go after the same ages as runs of their state, with their steps and
 * map items (see {@link Pruner.workflowInstances}).
 */
export class Pruner {
  private readonly loop = new BackgroundLoop(() => this.run());
  private lease: Lease | null = null;
  private renewedAt = Number.NEGATIVE_INFINITY;
  private lastTry: PrunerState['lastTry'] = null;
  private lastCycle: PrunerState['lastCycle'] = null;
  private nextCycleAt: number | null = null;
  private prunedSinceStart: PruneCounts = { ...NO_COUNTS };

  constructor(private readonly options: PrunerOptions) {}

  start(): void {
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
    if (this.lease) await this.options.store.releaseLeases([this.lease]).catch(() => undefined);
    this.lease = null;
  }

  /** What this node's pruner did lately (see {@link PrunerState}). */
  get state(): PrunerState {
    return {
      lastTry: this.lastTry,
      lastCycle: this.lastCycle,
      nextCycleAt: this.nextCycleAt,
      prunedSinceStart: { ...this.prunedSinceStart },
    };
  }

  /** The lease lives for this long past its last renewal: a dead pruner's node hands over within it. */
  private get leaseMs(): number {
    return Math.max(30_000, this.options.retention.intervalMs * 2);
  }

  /**
   * One cycle: takes the lease, then prunes every kind in bounded batches. Answers what it deleted,
   * or null when another node holds the lease (or this one lost it mid-cycle).
   */
  async cycle(): Promise<PruneCounts | null> {
    const { store, clock, owner, retention, onCycle } = this.options;
    const startedAt = clock.now();
    [this.lease = null] = await store.acquireLeases([PRUNER_LEASE], owner, this.leaseMs, startedAt);
    this.lastTry = { at: startedAt, heldLease: this.lease !== null };
    if (!this.lease) return null;
    this.renewedAt = startedAt;
    const counts: PruneCounts = { ...NO_COUNTS };
    try {
      await this.runsByAge(counts);
      for (const { jobId, retention: own } of await store.jobsWithRetention()) {
        await this.runsOfJob(jobId, own.keepLast, counts);
        await this.nextBatch();
      }
      await this.workflowInstances(counts);
      const now = clock.now();
      await this.batches('run_logs', counts, (limit) => store.pruneRunLogs(now - retention.logsMs, limit));
      await this.batches('skipped_fires', counts, (limit) =>
        store.pruneSkippedFires(now - retention.skippedFiresMs, limit),
      );
      await this.batches('audit_log', counts, (limit) => store.pruneAuditLog(now - retention.auditMs, limit));
      await this.batches('workers', counts, (limit) => store.pruneWorkers(now - retention.workersMs, limit));
      await this.reclaim();
    } catch (error) {
      if (error instanceof LeaseGone) return null;
      throw error;
    }
    const endedAt = clock.now();
    this.lastCycle = { endedAt, tookMs: endedAt - startedAt, pruned: { ...counts } };
    onCycle?.(endedAt, endedAt - startedAt);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    if (total > 0)
      this.options.logger.info({ pruned: counts, tookMs: endedAt - startedAt }, 'retention pruned rows');
    return counts;
  }

  /** The age pass over finished runs (see the class comment). */
  private async runsByAge(counts: PruneCounts): Promise<void> {
    const { store, clock, retention } = this.options;
    const now = clock.now();
    const until = now - Math.max(MIN_RUN_AGE_MS, Math.min(retention.finishedMs, retention.failedMs));
    let cursor: PruneCursor | null = null;
    for (;;) {
      const runs = await store.runsToPrune(cursor, until, retention.batch);
      await this.deleteRuns(
        runs.filter((run) => prunable(run, retention, now)),
        counts,
      );
      const last = runs.at(-1);
      if (!last || runs.length < retention.batch) return;
      cursor = { finishedAt: last.finishedAt ?? until, id: last.id };
      await this.nextBatch();
    }
  }

  /** The pass over one job with a retention of its own (see the class comment). */
  private async runsOfJob(jobId: number, keepLast: number | null, counts: PruneCounts): Promise<void> {
    const { store, clock, retention } = this.options;
    const now = clock.now();
    let after = 0;
    for (;;) {
      const scan = await store.jobRunsToPrune(jobId, keepLast ?? 1, after, retention.batch);
      const doomed: PruneCandidate[] = [];
      let done = scan.runs.length < retention.batch;
      for (const run of scan.runs) {
        const beyondKeepLast = keepLast !== null && run.superseded;
        if (prunable(run, retention, now, beyondKeepLast)) doomed.push(run);
        // Runs are read by id, about creation order: none created after the job's shorter age is old
        // enough, so the walk ends at the first such run, unless `keepLast` may still take it.
        const young = run.createdAt >= now - shortestAgeMs(run.retention, retention);
        if (young && !beyondKeepLast) done = true;
      }
      await this.deleteRuns(doomed, counts);
      const last = scan.runs.at(-1);
      if (done || !last) return;
      after = last.id;
      await this.nextBatch();
    }
  }

  /**
   * The pass over ended workflow instances: a walk of their end times from a cursor, up to the
   * shorter of the two default ages, as the age pass over runs. An instance goes with its step rows
   * and its map steps' items; the items go first, `batch` rows per statement, then the instances in
   * groups whose step rows add up to about `batch` (one instance at least: 1,000 steps at most), each
   * group one short transaction. An instance a repair brought back meanwhile is left whole but for
   * the items already deleted (only its page shows them: a succeeded map step keeps its result).
   */
  private async workflowInstances(counts: PruneCounts): Promise<void> {
    const { store, clock, retention } = this.options;
    const now = clock.now();
    const until = now - Math.max(MIN_RUN_AGE_MS, Math.min(retention.finishedMs, retention.failedMs));
    let cursor: PruneCursor | null = null;
    for (;;) {
      const instances = await store.workflowInstancesToPrune(cursor, until, retention.batch);
      const doomed = instances.filter((instance) => instancePrunable(instance, retention, now));
      if (doomed.length > 0) {
        const ids = doomed.map((instance) => instance.id);
        for (;;) {
          const items = await store.pruneWorkflowMapItems(ids, retention.batch);
          this.count('workflow_map_items', items, counts);
          if (items < retention.batch) break;
          await this.nextBatch();
        }
        let group: number[] = [];
        let rows = 0;
        for (const instance of doomed) {
          if (group.length > 0 && rows + instance.steps > retention.batch) {
            this.count('workflow_instances', await store.deleteEndedWorkflowInstances(group), counts);
            await this.nextBatch();
            group = [];
            rows = 0;
          }
          group.push(instance.id);
          rows += instance.steps + 1;
        }
        this.count('workflow_instances', await store.deleteEndedWorkflowInstances(group), counts);
      }
      const last = instances.at(-1);
      if (!last || instances.length < retention.batch) return;
      cursor = { finishedAt: last.finishedAt ?? until, id: last.id };
      await this.nextBatch();
    }
  }

  /**
   * Gives free space back to the file system in steps of {@link RECLAIM_PAGES} (SQLite; see
   * Store.reclaimSpace), once a quarter of the database is free, then all of it: in a steady state
   * deletes and inserts balance, and the file is not shrunk and grown again at every cycle.
   */
  private async reclaim(): Promise<void> {
    let pages = 0;
    for (;;) {
      const given = await this.options.store.reclaimSpace(RECLAIM_PAGES, pages === 0 ? 0.25 : 0);
      pages += given;
      if (given < RECLAIM_PAGES) break;
      await this.nextBatch();
    }
    if (pages > 0) this.options.logger.info({ pages }, 'retention gave free pages back to the file system');
  }

  private async deleteRuns(runs: readonly PruneCandidate[], counts: PruneCounts): Promise<void> {
    if (runs.length === 0) return;
    const deleted = await this.options.store.deleteFinishedRuns(runs.map((run) => run.id));
    this.count('runs', deleted, counts);
  }

  /** Runs `prune` in batches until one deletes fewer than a batch. */
  private async batches(
    kind: PruneKind,
    counts: PruneCounts,
    prune: (limit: number) => Promise<number>,
  ): Promise<void> {
    const { batch } = this.options.retention;
    for (;;) {
      const deleted = await prune(batch);
      this.count(kind, deleted, counts);
      if (deleted < batch) return;
      await this.nextBatch();
    }
  }

  private count(kind: PruneKind, rows: number, counts: PruneCounts): void {
    if (rows === 0) return;
    counts[kind] += rows;
    this.prunedSinceStart[kind] += rows;
    this.options.onPruned?.(kind, rows);
  }

  /**
   * Between two batches (and two jobs): let the event loop run, stop when asked, and renew the lease
   * once a third of it has passed, or give up when another node has it.
   */
  private async nextBatch(): Promise<void> {
    await yieldToEventLoop();
    if (this.loop.stopped) throw new LeaseGone();
    const { store, clock } = this.options;
    if (!this.lease) throw new LeaseGone();
    const now = clock.now();
    if (now < this.renewedAt + this.leaseMs / 3) return;
    [this.lease = null] = await store.renewLeases([this.lease], this.leaseMs, now);
    if (!this.lease) throw new LeaseGone();
    this.renewedAt = now;
  }

  private async run(): Promise<void> {
    const { clock, logger, retention } = this.options;
    while (this.loop.running) {
      try {
        await this.cycle();
      } catch (error) {
        logger.warn({ err: error }, 'retention cycle failed; retrying at the next');
      }
      this.nextCycleAt = clock.now() + retention.intervalMs;
      await clock.sleep(retention.intervalMs, this.loop.signal);
    }
    this.nextCycleAt = null;
  }
}

/** The pruner stopped or lost its lease mid-cycle: the cycle ends where it is (deletes are idempotent). */
class LeaseGone extends Error {}
