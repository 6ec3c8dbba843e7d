import type { SkipReason } from '@kairos/client';
import type { Logger } from 'pino';
import type { CalendarRecord } from '../core/calendar.ts';
import { type FirePlan, fireBefore, planFires } from '../core/fire-plan.ts';
import type { DueJob, FireEntry, FireResult, Lease, Partitions, SkipWritten, Store } from '../store/store.ts';
import { LeaseLostError } from '../store/store.ts';
import { type Clock, yieldToEventLoop } from './clock.ts';
import { FireSpans } from './fire-spans.ts';

export interface TriggerLoopOptions {
  store: Store;
  clock: Clock;
  /**
   * The lease owner name: the node's instance, a random token of this process (see `node.ts`), so
   * that two processes never share a lease even when given the same node id.
   */
  owner: string;
  /** The node id people read (`KAIROS_NODE_ID`); default `owner`. */
  nodeId?: string;
  logger: Logger;
  partitions: number;
  partitionLeaseMs: number;
  misfireGraceMs: number;
  /**
   * Fire jobs whose overlap policy is `allow` up to this many ms before their fire time (default 0:
   * at the instant). Their runs are created at once but become available at the fire time, so a
   * worker can hold them and start them on the instant (see the dispatcher's `ahead`).
   */
  fireAheadMs?: number;
  /** Jobs fired in one store transaction, at most (see `batchBudgetMs`). */
  batchSize?: number;
  /**
   * How long one fire transaction may take, in ms of real time (default: 100 on SQLite, none on
   * PostgreSQL). Each batch is sized from the time per job of the one before, to take about this
   * long (16 jobs at least, `batchSize` at most, at most twice the last): on SQLite a transaction
   * holds the event loop, and with it health probes, heartbeats and claims, for as long as it runs.
   * On PostgreSQL it holds nothing, and small batches only add round trips and commits: an
   * overloaded node that cut its batches to 16 jobs fired ~350 jobs/s where it sustained 4,000.
   */
  batchBudgetMs?: number;
  /** Real time in ms, for the batch budget (default `performance.now`; tests pass their own). */
  stopwatch?: () => number;
  /**
   * Overload shedding (0: never, the default here; the node passes its `overloadAfter`). When the
   * loop has fired for longer than this without catching up and the oldest due fire of a batch is
   * later than this, the loop is overloaded until it catches up: meanwhile a recurring job with several due
   * fires runs only the latest and the older ones go to the ledger as `overloaded` (see
   * `planFires`). So each job's visit costs one run, every job keeps firing, and the time a job
   * waits for its turn stays the time of one pass over the due jobs.
   */
  overloadAfterMs?: number;
  /**
   * Fires (runs) written in one store transaction, however many jobs they come from (default
   * 2000). A batch of jobs catching up on missed fires is cut there: on SQLite a transaction holds
   * the event loop for as long as it runs.
   */
  maxFiresPerBatch?: number;
  /**
   * Take partition leases (default). Off only in tests that prove the store alone prevents
   * double fires when two loops both believe they own every partition.
   */
  useLeases?: boolean;
  /** What the node tells the cluster about itself at each lease renewal. */
  node?: { address: string; version: string; startedAt: number; clockSkewMs: () => number };
  /** Called when a fire was refused because this node no longer held its lease (fenced out). */
  onFenced?: () => void;
  /** Called with the ledger rows a batch wrote (fires that did not become runs), for metrics. */
  onSkipped?: (skipped: Array<{ job: string; reason: SkipReason; count: number | null }>) => void;
  /** Called after each batch of fires, for metrics. */
  onFired?: (fired: { runs: number; conflicts: number; lateness: number[] }) => void;
  /**
   * Called after each batch and when the loop caught up, for metrics: how late the oldest due fire
   * was (0 when caught up), whether the loop is overloaded, and the fires it shed in the batch.
   */
  onBacklog?: (state: { backlogMs: number; overloaded: boolean; shed: number }) => void;
}

/**
 * Turns due fires into runs for the trigger partitions this node owns.
 *
 * The store's `jobs_due` index is the priority queue of next fire times: each tick asks it for
 * due jobs (O(log n) per job), plans their fires in the pure core, and writes runs with a
 * compare-and-set of each job's next fire time, fenced by the partition leases. Between ticks the
 * loop sleeps until the earliest next fire, or until a job changes (store event), or until its
 * leases need renewing, whichever comes first.
 *
 * Fire ahead (`fireAheadMs`): a job of overlap policy `allow` is fired up to `fireAheadMs` before
 * its fire time, its runs available from the fire time on; the other policies decide on the runs
 * active at the fire instant, so they are fired at the instant. The loop therefore wakes
 * `fireAheadMs` before the next fire, or at the instant of a non-`allow` job inside the window.
 */
export class TriggerLoop {
  private leases: Lease[] = [];
  private leasesRenewedAt = Number.NEGATIVE_INFINITY;
  /** When this node last warned that another live node has its id (null: none has). */
  private namesakesWarnedAt: number | null = null;
  private running = false;
  private wake = new AbortController();
  private loop: Promise<void> | undefined;
  /** Set by stop(): the tick in progress ends at its next batch. */
  private stopping = false;
  private unsubscribe: (() => void) | undefined;
  private readonly batchSize: number;
  /** The size of the next batch: `batchSize`, less while batches take longer than their budget. */
  private batchNow: number;
  private readonly batchBudgetMs: number;
  private readonly stopwatch: () => number;
  private readonly maxFiresPerBatch: number;
  /** When the current tick began, or the overload it is in (see `overloadAfterMs`). */
  private busySince: number;
  private overloaded = false;
  private readonly aheadMs: number;
  private readonly allPartitions: number[];

  constructor(private readonly options: TriggerLoopOptions) {
    this.batchSize = options.batchSize ?? 500;
    this.batchNow = this.batchSize;
    this.batchBudgetMs =
      options.batchBudgetMs ?? (options.store.dialect === 'sqlite' ? 100 : Number.POSITIVE_INFINITY);
    this.stopwatch = options.stopwatch ?? (() => performance.now());
    this.busySince = options.clock.now();
    this.maxFiresPerBatch = options.maxFiresPerBatch ?? 2000;
    this.aheadMs = options.fireAheadMs ?? 0;
    this.allPartitions = Array.from({ length: options.partitions }, (_, i) => i);
  }

  /** Whether the loop is shedding fires for overload now (see `overloadAfterMs`). */
  get isOverloaded(): boolean {
    return this.overloaded;
  }

  /** The partitions this loop may fire now. */
  get owned(): number[] {
    if (this.options.useLeases === false) return this.allPartitions;
    return this.leases.map((lease) => Number(lease.name.split('/')[1])).sort((a, b) => a - b);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopping = false;
    this.unsubscribe = this.options.store.subscribe((event) => {
      // A node released its partitions: take our share now, not at the next renewal.
      if (event.type === 'leases') this.leasesRenewedAt = Number.NEGATIVE_INFINITY;
      if (event.type === 'jobs' || event.type === 'leases') this.wake.abort();
    });
    this.loop = this.run();
  }

  /** Stops firing and hands the partitions over at once (the leases are released, not left to expire). */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.stopping = true;
    this.unsubscribe?.();
    this.wake.abort();
    await this.loop;
    const { store, owner, useLeases } = this.options;
    if (useLeases !== false) {
      const leases = this.leases;
      this.leases = [];
      await store.removeNode(owner).catch(() => undefined);
      if (leases.length > 0) await store.releaseLeases(leases).catch(() => undefined);
    }
  }

  private async run(): Promise<void> {
    const { clock, logger } = this.options;
    while (this.running) {
      let sleepMs: number;
      try {
        const wakeAt = await this.tick();
        const untilNext = wakeAt === null ? Number.POSITIVE_INFINITY : wakeAt - clock.now();
        sleepMs = Math.max(0, Math.min(untilNext, this.renewEveryMs()));
      } catch (error) {
        logger.warn({ err: error }, 'trigger loop tick failed; retrying');
        sleepMs = Math.min(1000, this.renewEveryMs());
      }
      if (!this.running) break;
      if (this.wake.signal.aborted) {
        // Something changed while we were ticking: look again at once rather than lose the wake-up.
        this.wake = new AbortController();
        continue;
      }
      await clock.sleep(sleepMs, this.wake.signal);
    }
  }

  private renewEveryMs(): number {
    return Math.max(50, Math.floor(this.options.partitionLeaseMs / 3));
  }

  /**
   * One pass: renew or take leases when due, fire everything due now (and the `allow` jobs due
   * within `fireAheadMs`), and answer when the loop should look again: `fireAheadMs` before the
   * next fire among the owned partitions, or the instant of a job held back for its policy (null
   * when there is none).
   */
  async tick(): Promise<number | null> {
    const { store, clock } = this.options;
    let partitions: Partitions;
    /** The earliest fire time of a job inside the window that waits for its instant. */
    let heldBack: number | null = null;
    // A tick ends when nothing more is due: the time it has run is how long the loop is behind.
    if (!this.overloaded) this.busySince = clock.now();
    for (;;) {
      // A stop comes between batches: a loop far behind (overloaded) would otherwise stop only when
      // caught up. What is still due belongs to the partitions' next holder.
      if (this.stopping) return null;
      // Between batches too: a storm that takes longer than a lease must not lose its partitions midway.
      await this.maintainLeases();
      const owned = this.owned;
      if (owned.length === 0) {
        this.caughtUp();
        return null;
      }
      partitions = { count: this.options.partitions, owned };
      const now = clock.now();
      const started = this.stopwatch();
      const batchSize = this.batchNow;
      const due = await store.dueJobs(partitions, now + this.aheadMs, batchSize);
      if (due.length === 0) break;
      this.judgeOverload(due, now);
      const overloaded = this.overloaded;
      const entries: FireEntry[] = [];
      const lateness: number[] = [];
      const spans = new FireSpans();
      const calendars = await this.calendarsOf(due);
      /** Fires planned in this batch; the jobs past the cap wait for the next batch. */
      let fires = 0;
      let cut = false;
      for (const job of due) {
        // A workflow's fire starts an instance at its instant: its steps' runs are not made ahead.
        const aheadMs = job.schedule.overlap === 'allow' && !job.workflowId ? this.aheadMs : 0;
        if (job.nextFireAt! > now + aheadMs) {
          heldBack = Math.min(heldBack ?? job.nextFireAt!, job.nextFireAt!);
          continue;
        }
        const plan = planFires(
          { ...job, calendars: job.schedule.calendars.map((c) => calendars.get(c)!).filter(Boolean) },
          job.nextFireAt!,
          now,
          {
            misfireGraceMs: this.options.misfireGraceMs,
            maxFires: 100,
            aheadMs,
            overloaded,
          },
        );
        if (fires > 0 && fires + plan.fires.length > this.maxFiresPerBatch) {
          cut = true;
          break;
        }
        fires += plan.fires.length;
        // A fire made ahead of its time is not late.
        for (const fire of plan.fires) lateness.push(Math.max(0, now - fire));
        const entry = fireEntryOf(job, plan);
        spans.add(job, entry, now);
        entries.push(entry);
      }
      // Only jobs held back for their instant in this batch: the ones behind them come later still.
      if (entries.length === 0) break;
      try {
        let result: FireResult;
        try {
          result = await store.fire(entries, this.options.useLeases === false ? null : this.leases, now);
        } catch (error) {
          spans.end(error);
          throw error;
        }
        spans.end();
        this.options.onFired?.({ runs: result.runs, conflicts: result.conflicts, lateness });
        if (result.skipped && result.skipped.length > 0) this.reportSkipped(due, result.skipped);
        let shed = 0;
        for (const s of result.skipped ?? []) if (s.reason === 'overloaded') shed += s.count ?? 1;
        this.options.onBacklog?.({ backlogMs: Math.max(0, now - due[0]!.nextFireAt!), overloaded, shed });
      } catch (error) {
        if (!(error instanceof LeaseLostError)) throw error;
        this.options.onFenced?.();
        this.options.logger.warn({ err: error }, 'partition lease lost; fenced out, re-acquiring');
        this.leases = [];
        this.leasesRenewedAt = Number.NEGATIVE_INFINITY;
        // Whatever it was behind on belongs to the partitions' next holder now.
        this.overloaded = false;
        return null;
      }
      this.fitBatch(this.stopwatch() - started, due.length);
      if (due.length < batchSize && !cut) break;
      // Let requests in between transactions: better-sqlite3 answers synchronously, so without this a
      // storm of fires (10,000 every-second jobs) held the event loop for minutes.
      await yieldToEventLoop();
    }
    // Nothing more is due now (held-back jobs wait for their instant): caught up.
    this.caughtUp();
    if (heldBack !== null) return heldBack;
    const next = await store.nextFireAt(partitions);
    return next === null ? null : next - this.aheadMs;
  }

  /**
   * Enters overload when the current tick has fired for longer than `overloadAfterMs` without
   * catching up and the oldest due fire of this batch is later than that; it stays overloaded
   * until a tick catches up. Both, because a backlog worked off within that time (a node back
   * after a restart or a freeze, a few jobs catching up a minute) is run in full within the misfire
   * grace: only a backlog the loop cannot work off is shed.
   */
  private judgeOverload(due: readonly DueJob[], now: number): void {
    const after = this.options.overloadAfterMs ?? 0;
    if (after <= 0 || this.overloaded) return;
    const backlog = now - due[0]!.nextFireAt!;
    if (backlog > after && now - this.busySince > after) {
      this.overloaded = true;
      this.options.logger.warn(
        { backlogMs: backlog, busyMs: now - this.busySince },
        'trigger loop overloaded: each job runs only its latest due fire, older ones are recorded as overloaded',
      );
    }
  }

  private caughtUp(): void {
    if (this.overloaded) {
      this.overloaded = false;
      this.options.logger.warn('trigger loop caught up: overload over');
    }
    this.options.onBacklog?.({ backlogMs: 0, overloaded: false, shed: 0 });
  }

  /**
   * Sizes the next batch from the time per job of this one (`jobs` took `tookMs`), to take about the
   * budget (see `batchBudgetMs`). The cost of a batch that does not grow with its jobs (round trips,
   * the commit) makes small batches dear per job, so the size grows back at most twice over per
   * batch until a batch takes its budget, where halving and doubling in steps could stay at the
   * smallest size while each batch took more than a quarter of the budget.
   */
  private fitBatch(tookMs: number, jobs: number): void {
    if (!Number.isFinite(this.batchBudgetMs) || jobs === 0) return;
    const fits = Math.floor((this.batchBudgetMs * jobs) / Math.max(tookMs, 0.001));
    this.batchNow = Math.min(this.batchSize, Math.max(MIN_BATCH, Math.min(2 * this.batchNow, fits)));
  }

  /** The calendars the due jobs name, one store read per batch (none when no job has any). */
  private async calendarsOf(due: readonly DueJob[]): Promise<Map<string, CalendarRecord>> {
    const names = [...new Set(due.flatMap((job) => job.schedule.calendars))];
    const found = names.length === 0 ? [] : await this.options.store.getCalendars(names);
    return new Map(found.map((calendar) => [calendar.name, calendar]));
  }

  /**
   * Another live process carries this node's id: a configuration mistake (two nodes started with
   * the same KAIROS_NODE_ID). Their leases stay apart (each has its own instance), but people and
   * logs can no longer tell them apart, so it is logged as an error when it is first seen, every
   * minute while it lasts, and when it ends.
   */
  private warnOfNamesakes(nodeId: string, namesakes: number, now: number): void {
    const { logger, owner } = this.options;
    if (namesakes === 0) {
      if (this.namesakesWarnedAt !== null)
        logger.info({ nodeId }, 'no other live node has this node id any more');
      this.namesakesWarnedAt = null;
      return;
    }
    if (this.namesakesWarnedAt !== null && now - this.namesakesWarnedAt < NAMESAKE_WARN_EVERY_MS) return;
    this.namesakesWarnedAt = now;
    logger.error(
      { nodeId, instance: owner, namesakes },
      `${namesakes} other live node(s) have the node id ${JSON.stringify(nodeId)}: give each node its own KAIROS_NODE_ID`,
    );
  }

  private reportSkipped(due: readonly DueJob[], skipped: readonly SkipWritten[]): void {
    const names = new Map(due.map((job) => [job.id, job.name]));
    const named = skipped.map((s) => ({
      job: names.get(s.jobId) ?? String(s.jobId),
      reason: s.reason,
      count: s.count,
    }));
    // Overload sheds are logged once when the overload begins and ends, not once per job.
    for (const skip of named)
      if (skip.reason !== 'overloaded') this.options.logger.info(skip, 'fires skipped');
    this.options.onSkipped?.(named);
  }

  /**
   * Every renewal interval: report this node, renew the leases it holds, and move towards its fair
   * share of the partitions, ceil(partitions / live nodes): release the surplus (a node joined) or
   * take free and expired ones (a node left or died). A single partition is plain leader election.
   */
  private async maintainLeases(): Promise<void> {
    if (this.options.useLeases === false) return;
    const { store, clock, owner, partitionLeaseMs, node } = this.options;
    const now = clock.now();
    if (now - this.leasesRenewedAt < this.renewEveryMs()) return;
    this.leasesRenewedAt = now;
    const nodeId = this.options.nodeId ?? owner;
    const { alive: live, namesakes } = await store.heartbeatNode(
      {
        instance: owner,
        id: nodeId,
        address: node?.address ?? '',
        version: node?.version ?? '',
        startedAt: node?.startedAt ?? now,
        partitions: this.owned,
        clockSkewMs: node?.clockSkewMs() ?? 0,
      },
      partitionLeaseMs,
      now,
    );
    this.warnOfNamesakes(nodeId, namesakes, now);
    const share = Math.ceil(this.options.partitions / Math.max(1, live));
    let held = this.leases.length > 0 ? await store.renewLeases(this.leases, partitionLeaseMs, now) : [];
    if (held.length < this.leases.length) {
      this.options.logger.warn(
        { lost: this.leases.length - held.length },
        'partition leases lost to another node',
      );
    }
    if (held.length < share) {
      const mine = new Set(held.map((lease) => lease.name));
      // Start at an offset of our own so that nodes joining together reach for different partitions.
      const offset = hashOf(owner) % this.options.partitions;
      const wanted = this.allPartitions
        .map((_, i) => `trigger/${(i + offset) % this.options.partitions}`)
        .filter((name) => !mine.has(name));
      held = [...held, ...(await store.acquireLeases(wanted, owner, partitionLeaseMs, now))];
    }
    if (held.length > share) {
      const surplus = held.slice(share);
      held = held.slice(0, share);
      await store.releaseLeases(surplus);
    }
    this.leases = held;
  }
}

/** The smallest batch a slow store shrinks the batches to. */
const MIN_BATCH = 16;

/** How often a node repeats that another live node has its id, while it lasts. */
const NAMESAKE_WARN_EVERY_MS = 60_000;

/** The store write of a plan: policy fields only where the job has them (plain entries stay batched). */
function fireEntryOf(job: DueJob, plan: FirePlan): FireEntry {
  const entry: FireEntry = { jobId: job.id, expected: job.nextFireAt!, next: plan.next, fires: plan.fires };
  if (job.schedule.jitterMs > 0) entry.availableAt = plan.availableAt;
  if (plan.skipped.length > 0) entry.skipped = plan.skipped;
  if (job.schedule.overlap !== 'allow') {
    entry.overlap = job.schedule.overlap;
    if (job.schedule.overlap !== 'buffer-all' && plan.fires.length > 0) {
      entry.previousFire = fireBefore(job.trigger, plan.fires[0]!);
    }
  }
  if (job.schedule.maxRuns !== null) entry.countRuns = true;
  if (job.workflowId) entry.workflow = true;
  return entry;
}

function hashOf(text: string): number {
  let h = 0;
  for (let i = 0; i < text.length; i++) h = (Math.imul(31, h) + text.charCodeAt(i)) >>> 0;
  return h;
}
