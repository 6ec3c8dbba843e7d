import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The node's Prometheus metrics, on a registry of its own (several nodes can share a process in tests). */
export class Metrics {
  readonly registry = new Registry();
  readonly runsCreated = new Counter({
    name: 'kairos_runs_created_total',
    help: 'Runs created, by cause',
    labelNames: ['cause'] as const,
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

  readonly skippedFires = new Counter({
    name: 'kairos_skipped_fires_total',
    help: 'Fires that did not become runs, by job and reason (a range too long to count adds 1)',
    labelNames: ['job', 'reason'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'kairos_process_' });
  }
}
