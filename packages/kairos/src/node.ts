import { randomBytes } from 'node:crypto';
import { createKairosLogger } from '@kairos/worker';
import type { Logger } from 'pino';
import type { KairosConfig } from './config.ts';
import { KairosError } from './errors.ts';
import { createAlertSender } from './scheduler/alert-channels.ts';
import { AlertService } from './scheduler/alert-service.ts';
import { AttemptEnder } from './scheduler/attempts.ts';
import { type Clock, systemClock } from './scheduler/clock.ts';
import { Dispatcher } from './scheduler/dispatcher.ts';
import { JobService } from './scheduler/job-service.ts';
import { Pruner } from './scheduler/pruner.ts';
import { Reaper } from './scheduler/reaper.ts';
import { SecretKeyring } from './scheduler/secret-keyring.ts';
import { StoreClock } from './scheduler/store-clock.ts';
import { TriggerLoop } from './scheduler/trigger-loop.ts';
import { buildServer, VERSION } from './server/app.ts';
import { TokenAuth } from './server/auth.ts';
import { bootstrapAdmin } from './server/bootstrap-admin.ts';
import { Metrics, QUEUE_SERIES_LIMIT } from './server/metrics.ts';
import type { RouteAccess } from './server/route-table.ts';
import { openStore } from './store/open.ts';
import type { Store } from './store/store.ts';

/** How often a node re-reads the database clock. */
const CLOCK_SYNC_MS = 10_000;

/** The longest wait between two tries to reach the database at start. */
const START_RETRY_MAX_MS = 5000;

/**
 * Runs `step` of the start until the database answers: a node started while PostgreSQL is down or
 * restarting (a supervisor restarting it, a rolling restart, a whole machine booting) waits for it and
 * joins the cluster as soon as it is back, instead of exiting, which left a cluster whose nodes were
 * all restarted during an outage with no node at all. Only an unreachable database is waited for
 * (connection refused, reset or timed out, the server starting up or shutting down, too many
 * connections); any other error, e.g. a refused schema or a protocol the server rejects, ends the
 * start at once.
 */
async function untilReachable<T>(step: () => Promise<T>, logger: Logger): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      if (!isUnreachable(error)) throw error;
      const waitMs = Math.min(START_RETRY_MAX_MS, 250 * 2 ** attempt);
      logger.warn(
        { err: (error as Error).cause ?? error, attempt, retryInMs: waitMs },
        `${(error as Error).message}: waiting for the database`,
      );
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }
}

/** Causes of STORE_UNAVAILABLE that a database coming back ends (see {@link untilReachable}). */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);

function isUnreachable(error: unknown): boolean {
  if (!(error instanceof KairosError) || error.code !== 'STORE_UNAVAILABLE') return false;
  const cause = (error as Error).cause as { code?: string; message?: string } | undefined;
  if (cause?.code) return UNREACHABLE_CODES.has(cause.code);
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect/i.test(
    cause?.message ?? '',
  );
}

/** How long a stopping node lets open requests finish before it cuts their connections. */
const SERVER_CLOSE_GRACE_MS = 2000;

/** A running scheduler node: API, trigger loop, dispatcher and reaper over one store. */
export interface KairosNode {
  readonly url: string;
  /** A random token of this process, unique to it: the owner of its partition leases. */
  readonly instance: string;
  readonly config: KairosConfig;
  readonly store: Store;
  stop(): Promise<void>;
  /** Every HTTP route with the role it needs (the role-matrix test walks it). */
  readonly routes: readonly RouteAccess[];
}

export interface NodeDependencies {
  clock?: Clock;
  logger?: Logger;
  store?: Store;
}

/** Starts a node: migrates the store, starts the loops, then listens. */
export async function startNode(config: KairosConfig, deps: NodeDependencies = {}): Promise<KairosNode> {
  const logger = deps.logger ?? createLogger(config.logLevel);
  const store =
    deps.store ??
    openStore(config.database, {
      partitionLeaseMs: config.partitionLeaseMs,
      resourceReserveAfterMs: config.resourceReserveAfterMs,
    });
  try {
    await untilReachable(() => store.migrate(), logger);
  } catch (error) {
    // A refused schema (SCHEMA_UNSUPPORTED) ends the process at once: no pool left open keeps it up.
    if (!deps.store) await store.close().catch(() => undefined);
    throw error;
  }
  // In cluster mode every node judges time by the database's clock (SQLite's is this machine's).
  const storeClock = store.dialect === 'postgres' && !deps.clock ? new StoreClock(store) : undefined;
  if (storeClock) await untilReachable(() => storeClock.sync(), logger);
  const clock = deps.clock ?? storeClock ?? systemClock;
  const startedAt = clock.now();
  if (config.adminUser && config.adminPassword) {
    await bootstrapAdmin(store, clock, logger, { name: config.adminUser, password: config.adminPassword });
  }

  const metrics = new Metrics(
    () => store.overviewCounts(clock.now(), clock.now()),
    async () => {
      const now = clock.now();
      const counts = await store.queuedRunCounts(now, QUEUE_SERIES_LIMIT);
      // Workers are read only when some queued run requests resources (kairos_runs_unplaceable).
      const workers = counts.some((c) => c.resources || c.ownRequests?.length)
        ? await store.listWorkers()
        : [];
      return { now, counts, workers };
    },
  );
  if (storeClock) metrics.clockSkew.set(storeClock.skewMs / 1000);
  const dispatcher = new Dispatcher({
    store,
    clock,
    pollWaitMs: config.pollWaitMs,
    fireAheadMs: config.fireAheadMs,
  });
  const ender = new AttemptEnder(
    store,
    Math.random,
    (group, at) => dispatcher.wakeAt(group, at),
    (ended) => {
      for (const { run } of ended) {
        if (run.status === 'queued') metrics.attemptsRetried.inc();
        else metrics.runsEnded.inc({ status: run.status });
      }
    },
  );
  const keyring = new SecretKeyring(config.secretKeys);
  const jobs = new JobService(
    store,
    clock,
    (job, skipped) => metrics.skippedFires.inc({ job, reason: skipped.reason }, skipped.count ?? 1),
    keyring,
    dispatcher,
  );
  const reaper = new Reaper({
    store,
    clock,
    ender,
    logger: logger.child({ component: 'reaper' }),
    intervalMs: config.reaperIntervalMs,
    workerLeaseMs: config.workerLeaseMs,
  });

  // This process's own name in the cluster: the owner of its leases. The node id is for people and
  // may be given to two processes by mistake; the instance never is.
  const instance = `${config.nodeId}:${randomBytes(6).toString('hex')}`;
  const pruner = new Pruner({
    store,
    clock,
    logger: logger.child({ component: 'pruner' }),
    owner: instance,
    retention: config.retention,
    onPruned: (kind, rows) => metrics.prunedRows.inc({ kind }, rows),
    onCycle: (at, tookMs) => {
      metrics.pruneLast.set(at / 1000);
      metrics.pruneDuration.set(tookMs / 1000);
    },
  });

  const alertSender = createAlertSender();
  const app = await buildServer({
    alertSender,
    config,
    store,
    clock,
    logger,
    jobs,
    keyring,
    ender,
    dispatcher,
    metrics,
    pruner,
    auth: new TokenAuth(config, store, clock),
  });
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  const triggerLoop = new TriggerLoop({
    store,
    clock,
    owner: instance,
    nodeId: config.nodeId,
    logger: logger.child({ component: 'trigger-loop' }),
    partitions: config.partitions,
    partitionLeaseMs: config.partitionLeaseMs,
    misfireGraceMs: config.misfireGraceMs,
    fireAheadMs: config.fireAheadMs,
    overloadAfterMs: config.overloadAfterMs,
    node: { address: url, version: VERSION, startedAt, clockSkewMs: () => storeClock?.skewMs ?? 0 },
    onFenced: () => metrics.fencedFires.inc(),
    onSkipped: (skipped) => {
      // Overload sheds are counted without a series per job (kairos_overload_shed_fires_total).
      for (const s of skipped)
        if (s.reason !== 'overloaded')
          metrics.skippedFires.inc({ job: s.job, reason: s.reason }, s.count ?? 1);
    },
    onBacklog: ({ backlogMs, overloaded, shed }) => {
      metrics.triggerBacklog.set(backlogMs / 1000);
      metrics.triggerOverloaded.set(overloaded ? 1 : 0);
      if (shed > 0) metrics.overloadShed.inc(shed);
    },
    onFired: ({ runs, conflicts, lateness }) => {
      metrics.runsCreated.inc({ cause: 'schedule' }, runs);
      if (conflicts > 0) metrics.fireConflicts.inc(conflicts);
      for (const ms of lateness) metrics.fireLateness.observe(ms / 1000);
      metrics.partitionsOwned.set(triggerLoop.owned.length);
    },
  });
  const alerts = new AlertService({
    store,
    clock,
    owner: instance,
    logger: logger.child({ component: 'alerts' }),
    sender: alertSender,
    historyMs: config.alertHistoryMs,
    onDelivery: (delivery) =>
      metrics.alertDeliveries.inc({
        channel: delivery.channel,
        outcome: delivery.status === 'pending' ? 'retry' : delivery.status,
      }),
  });
  triggerLoop.start();
  reaper.start();
  alerts.start();
  if (config.retention.intervalMs > 0) pruner.start();
  const clockSync =
    storeClock &&
    setInterval(() => {
      storeClock.sync().then(
        () => metrics.clockSkew.set(storeClock.skewMs / 1000),
        (error: unknown) => logger.warn({ err: error }, 'could not read the database clock'),
      );
    }, CLOCK_SYNC_MS);
  clockSync?.unref();
  logger.info({ url, store: store.dialect, nodeId: config.nodeId, instance }, 'kairos node started');

  let stopping: Promise<void> | undefined;
  return {
    url,
    instance,
    config: Object.freeze({ ...config, port }),
    store,
    routes: app.routeTable,
    stop() {
      stopping ??= (async () => {
        if (clockSync) clearInterval(clockSync);
        await triggerLoop.stop();
        await reaper.stop();
        await alerts.stop();
        await pruner.stop();
        dispatcher.close();
        // Requests still open after a grace (a client that went silent mid-request) are cut, so that
        // a stop never waits for a keep-alive or a half-sent request to time out.
        const closing = app.close();
        const force = setTimeout(() => app.server.closeAllConnections(), SERVER_CLOSE_GRACE_MS);
        await closing;
        clearTimeout(force);
        if (!deps.store) await store.close();
        logger.info('kairos node stopped');
      })();
      return stopping;
    },
  };
}

/**
 * The node's logger: the Kairos log format shared with workers (pino JSON lines on stdout, readable
 * lines when a person watches the terminal), see `createKairosLogger` of `@kairos/worker`.
 */
export function createLogger(level: string): Logger {
  return createKairosLogger({ level, fd: 1 });
}
