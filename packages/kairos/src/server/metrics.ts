import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { type PlacementWorker, unplaceable } from '../core/queue-wait.ts';
import { type OverviewCounts, type QueuedRunCount, queuedByRequest } from '../store/access.ts';

/** The most (group, job, handler) rows of queued runs one scrape reads: a bound on series and work. */
export const QUEUE_SERIES_LIMIT = 1000;

/** What the queue series read at a scrape: the queued runs, and the instant they were counted at. */
export interface QueueSnapshot {
  now: number;
  counts: QueuedRunCount[];
  /** The workers, when some count requests resources (for kairos_runs_unplaceable); else may be empty. */
  workers?: PlacementWorker[];
}

/**
 * The node's Prometheus metrics, on a registry of its own (several nodes can share a process in tests).
 * Names follow Prometheus conventions: ours start with `kairos_`, counters end in `_total`, times
 * are in seconds; the standard `process_*` and `nodejs_*` metrics of prom-client carry no prefix, so
 * the usual Node.js dashboards match them. `docs/grafana-dashboard.json` queries them.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly runsCreated = new Counter({
    name: 'kairos_runs_created_total',
    help: 'Runs created, by cause',
    labelNames: ['cause'] as const,
    registers: [this.registry],
  });
  readonly quotaRefusals = new Counter({
    name: 'kairos_quota_refusals_total',
    help: 'Requests a namespace quota refused (QUOTA_EXCEEDED), by namespace and quota',
    labelNames: ['namespace', 'quota'] as const,
    registers: [this.registry],
  });
  readonly attemptsEnded = new Counter({
    name: 'kairos_attempts_ended_total',
    help: 'Attempts ended, by how (reported by workers, found by the reaper, or given back at a heartbeat)',
    labelNames: ['source', 'ok'] as const,
    registers: [this.registry],
  });
  readonly staleReports = new Counter({
    name: 'kairos_stale_reports_total',
    help: 'Worker reports rejected because their attempt was no longer current',
    registers: [this.registry],
  });
  readonly fireConflicts = new Counter({
    name: 'kairos_fire_conflicts_total',
    help: 'Fires that lost their compare-and-set to another writer',
    registers: [this.registry],
  });
  readonly fencedFires = new Counter({
    name: 'kairos_fenced_fires_total',
    help: 'Fire batches refused because this node had lost its partition lease',
    registers: [this.registry],
  });
  readonly fireLateness = new Histogram({
    name: 'kairos_fire_lateness_seconds',
    help: 'Delay between a fire time and the creation of its run',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60],
    registers: [this.registry],
  });
  readonly triggerBacklog = new Gauge({
    name: 'kairos_trigger_backlog_seconds',
    help: 'How late the oldest due fire of the last trigger-loop batch was (0 when the loop caught up)',
    registers: [this.registry],
  });
  readonly triggerOverloaded = new Gauge({
    name: 'kairos_trigger_overloaded',
    help: '1 while the trigger loop sheds fires for overload (each job runs only its latest due fire), else 0',
    registers: [this.registry],
  });
  readonly overloadShed = new Counter({
    name: 'kairos_overload_shed_fires_total',
    help: 'Fires shed for overload (ledger reason overloaded); not by job: an overload touches every job',
    registers: [this.registry],
  });
  readonly claimed = new Counter({
    name: 'kairos_runs_claimed_total',
    help: 'Attempts handed to workers',
    registers: [this.registry],
  });
  readonly partitionsOwned = new Gauge({
    name: 'kairos_partitions_owned',
    help: 'Trigger partitions this node owns',
    registers: [this.registry],
  });

  readonly clockSkew = new Gauge({
    name: 'kairos_clock_skew_seconds',
    help: "This node's wall clock minus the store's clock (cluster mode judges time by the store)",
    registers: [this.registry],
  });

  readonly alertDeliveries = new Counter({
    name: 'kairos_alert_deliveries_total',
    help: 'Alert sending attempts by channel and outcome (sent, retry, failed)',
    labelNames: ['channel', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly skippedFires = new Counter({
    name: 'kairos_skipped_fires_total',
    help: 'Fires that did not become runs, by job and reason (a range too long to count adds 1)',
    labelNames: ['job', 'reason'] as const,
    registers: [this.registry],
  });

  readonly runsEnded = new Counter({
    name: 'kairos_runs_ended_total',
    help: 'Runs ended by this node (worker reports, reaper, cancel), by final status',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });

  readonly attemptsRetried = new Counter({
    name: 'kairos_attempts_retried_total',
    help: 'Attempts that ended with their run queued again for a retry',
    registers: [this.registry],
  });

  readonly prunedRows = new Counter({
    name: 'kairos_pruned_rows_total',
    help: 'Rows deleted by retention on this node, by kind (runs go with their attempts, logs and late reports)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly pruneLast = new Gauge({
    name: 'kairos_prune_last_timestamp_seconds',
    help: 'When this node last ended a retention cycle (Unix time; 0: never, e.g. another node prunes)',
    registers: [this.registry],
  });

  readonly pruneDuration = new Gauge({
    name: 'kairos_prune_last_duration_seconds',
    help: 'How long the last retention cycle of this node took',
    registers: [this.registry],
  });

  /**
   * @param counts the cluster-wide counts of the store (queued and running runs, workers and nodes
   *   online), read once per scrape; every node answers the same, so dashboards take `max`.
   * @param queued the queued runs by group, job and handler (Store.queuedRunCounts), read once per
   *   scrape for the three queue series.
   */
  constructor(counts?: () => Promise<OverviewCounts>, queued?: () => Promise<QueueSnapshot>) {
    collectDefaultMetrics({ register: this.registry });
    if (counts) this.countGauges(counts);
    if (queued) this.queueGauges(queued);
  }

  private countGauges(counts: () => Promise<OverviewCounts>): void {
    const read = oncePerScrape(counts);
    // One store read per scrape, shared by the four gauges (collected one after another).
    const gauge = (name: string, help: string, pick: (c: OverviewCounts) => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        async collect() {
          const c = await read();
          if (c) this.set(pick(c));
        },
      });
    gauge('kairos_runs_queued', 'Runs waiting for a worker, cluster-wide', (c) => c.queued);
    gauge('kairos_runs_running', 'Runs running on workers, cluster-wide', (c) => c.running);
    gauge('kairos_workers_online', 'Workers with a live lease, cluster-wide', (c) => c.workersOnline);
    gauge('kairos_nodes_online', 'Scheduler nodes with a live heartbeat, cluster-wide', (c) => c.nodesOnline);
  }

  /**
   * The queue series operators alert on, from one store read per scrape. Each scrape sets them
   * afresh: a group or job with nothing queued has no series (Prometheus reads it as gone).
   */
  private queueGauges(queued: () => Promise<QueueSnapshot>): void {
    const read = oncePerScrape(queued);
    const gauge = <L extends string>(
      name: string,
      help: string,
      labelNames: readonly L[],
      fill: (gauge: Gauge<L>, snapshot: QueueSnapshot) => void,
    ) =>
      new Gauge<L>({
        name,
        help,
        labelNames,
        registers: [this.registry],
        async collect() {
          const snapshot = await read();
          if (!snapshot) return;
          this.reset();
          fill(this, snapshot);
        },
      });
    gauge(
      'kairos_runs_queued_by_job',
      'Runs waiting for a worker, by namespace, group and job, cluster-wide',
      ['namespace', 'group', 'job'],
      (g, { counts }) => {
        for (const row of counts)
          g.inc({ namespace: row.namespace, group: row.group, job: row.jobName }, row.queued);
      },
    );
    gauge(
      'kairos_runs_queued_oldest_age_seconds',
      'Age of the oldest queued run whose time has come, by namespace and group (seconds since it became available)',
      ['namespace', 'group'],
      (g, { now, counts }) => {
        // Keyed by the JSON pair [namespace, group]: a group of one namespace is not another's.
        const oldest = new Map<string, number>();
        for (const row of counts) {
          if (row.oldestAvailableAt === null) continue;
          const key = JSON.stringify([row.namespace, row.group]);
          oldest.set(key, Math.min(oldest.get(key) ?? row.oldestAvailableAt, row.oldestAvailableAt));
        }
        for (const [key, at] of oldest) {
          const [namespace, group] = JSON.parse(key) as [string, string];
          g.set({ namespace, group }, Math.max(0, (now - at) / 1000));
        }
      },
    );
    gauge(
      'kairos_runs_queued_without_worker',
      'Queued runs no live worker of their namespace can take, by namespace, group and reason (no live worker in the group, or none declares the handler)',
      ['namespace', 'group', 'reason'],
      (g, { counts }) => {
        for (const row of counts) {
          if (row.handlerServed) continue;
          const reason = row.groupServed ? 'no_worker_for_handler' : 'no_worker_in_group';
          g.inc({ namespace: row.namespace, group: row.group, reason }, row.queued);
        }
      },
    );
    gauge(
      'kairos_runs_unplaceable',
      "Queued runs that request more resources (their own, a workflow step's, else their job's) than any live worker of their group that declares the handler has in all (free or not), by namespace and group: they wait until a bigger worker joins",
      ['namespace', 'group'],
      (g, { now, counts, workers = [] }) => {
        for (const row of counts) {
          for (const { resources, queued } of queuedByRequest(row)) {
            if (resources === null) continue;
            const run = { namespace: row.namespace, group: row.group, handler: row.handler, resources };
            if (unplaceable(run, workers, now)?.reason === 'no_worker_with_resources')
              g.inc({ namespace: row.namespace, group: row.group }, queued);
          }
        }
      },
    );
  }
}

/**
 * Shares one read among the gauges of a scrape (prom-client collects them one after another): the
 * first asks, the others within a second get the same answer; a failed read answers null.
 */
function oncePerScrape<T>(read: () => Promise<T>): () => Promise<T | null> {
  let reading: Promise<T | null> | undefined;
  return () => {
    reading ??= read()
      .catch(() => null)
      .finally(() => setTimeout(() => (reading = undefined), 1000).unref());
    return reading;
  };
}
