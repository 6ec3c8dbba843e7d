import type { DoctorCheck, DoctorReport, DoctorStatus } from '@kairos/client';
import type { KairosConfig } from '../config.ts';
import { formatDuration } from '../core/duration.ts';
import { type CoverageJob, fleetCoverage } from '../core/fleet-coverage.ts';
import { readMigrations } from '../store/migrations.ts';
import { GONE_NODE_KEPT_LEASES, type Store } from '../store/store.ts';
import { VERSION } from '../version.ts';

/** A clock this far off the store's is reported (`warn`): logs and the console show times that are off. */
export const CLOCK_WARN_MS = 1000;
/** The most jobs the fleet checks read (pages of {@link JOB_PAGE}); more are named as not checked. */
export const DOCTOR_MAX_JOBS = 10_000;
const JOB_PAGE = 500;
/** The most names one check lists. */
const MAX_ITEMS = 50;

/**
 * `GET /v1/doctor`: the node checks its config, its store (reachable, schema version), the clocks of
 * the cluster, the nodes that stopped heartbeating, and whether the live workers can run the jobs (docs/operations.md, "kairos doctor").
 * Never throws for a store that fails: that is a check that fails.
 */
export async function runDoctor(config: KairosConfig, store: Store): Promise<DoctorReport> {
  const code = Math.max(0, ...readMigrations(store.dialect).map((m) => m.version));
  const checks: DoctorCheck[] = [configCheck(config)];
  const report = (databaseTime: number | null, storeVersion: number | null): DoctorReport => ({
    status: worst(checks),
    version: VERSION,
    nodeId: config.nodeId,
    store: store.dialect,
    nodeTime: new Date().toISOString(),
    databaseTime: databaseTime === null ? null : new Date(databaseTime).toISOString(),
    schema: { code, store: storeVersion },
    checks,
  });

  let dbTime: number;
  let skewMs: number;
  let storeVersion: number;
  try {
    const before = Date.now();
    dbTime = await store.databaseTime();
    skewMs = Math.round((before + Date.now()) / 2 - dbTime);
    storeVersion = await store.schemaVersion();
  } catch (error) {
    checks.push({
      name: 'store',
      status: 'fail',
      message: `cannot reach the store: ${(error as Error).message}`,
    });
    return report(null, null);
  }
  checks.push({ name: 'store', status: 'ok', message: `${store.dialect} answers` });
  checks.push(schemaCheck(code, storeVersion));
  try {
    const upkeep = await store.spaceUpkeep();
    checks.push(
      upkeep.ok
        ? { name: 'store-space', status: 'ok', message: upkeep.detail }
        : { name: 'store-space', status: 'warn', message: `${upkeep.detail} (docs/retention.md)` },
    );
  } catch (error) {
    checks.push({ name: 'store-space', status: 'warn', message: `cannot read: ${(error as Error).message}` });
  }
  try {
    const [nodes, workers, jobs] = await Promise.all([
      store.listNodes(),
      store.listWorkers(),
      readJobs(store),
    ]);
    const offNodes = nodes
      .filter((n) => n.expiresAt > dbTime && Math.abs(n.clockSkewMs) > CLOCK_WARN_MS)
      .map(
        (n) =>
          `${n.id}: ${signed(n.clockSkewMs)} (at its heartbeat ${formatDuration(dbTime - n.heartbeatAt)} ago)`,
      );
    if (Math.abs(skewMs) > CLOCK_WARN_MS) offNodes.unshift(`this node (${config.nodeId}): ${signed(skewMs)}`);
    checks.push(
      offNodes.length === 0
        ? {
            name: 'clock',
            status: 'ok',
            message: `this node ${signed(skewMs)} off the store; live nodes within ${CLOCK_WARN_MS} ms`,
          }
        : {
            name: 'clock',
            status: 'warn',
            message: `clocks more than ${CLOCK_WARN_MS} ms off the store's (nodes judge time by the store, so fires and leases are right; times in logs are off)`,
            items: offNodes.slice(0, MAX_ITEMS),
          },
    );
    const live = nodes.filter((n) => n.expiresAt > dbTime);
    const gone = nodes
      .filter((n) => n.expiresAt <= dbTime)
      .map((n) => `${n.id} (last heartbeat ${formatDuration(dbTime - n.heartbeatAt)} ago)`);
    checks.push(
      listCheck('nodes', 'warn', gone, {
        ok: `${live.length} live node${live.length === 1 ? '' : 's'}`,
        bad: `${live.length} live; nodes that stopped heartbeating (listed for ${GONE_NODE_KEPT_LEASES} partition leases, then forgotten)`,
      }),
    );
    const coverage = fleetCoverage(jobs.items, workers, dbTime);
    const partial = jobs.truncated ? ` (the first ${DOCTOR_MAX_JOBS} jobs checked)` : '';
    checks.push(
      listCheck('job-groups', 'fail', coverage.jobsWithoutWorkerGroup, {
        ok: `every job's group has a live worker${partial}`,
        bad: `jobs routed to a group with no live worker: their runs wait${partial}`,
      }),
      listCheck('job-handlers', 'fail', coverage.jobsWithoutHandler, {
        ok: `every job's handler is declared by a live worker of its group${partial}`,
        bad: `jobs whose handler no live worker of their group declares: their runs wait${partial}`,
      }),
      listCheck('worker-groups', 'warn', coverage.groupsWithoutJobs, {
        ok: 'every group of live workers has jobs',
        bad: 'groups of live workers that no job routes to',
      }),
    );
  } catch (error) {
    checks.push({
      name: 'fleet',
      status: 'fail',
      message: `cannot read nodes, workers or jobs: ${(error as Error).message}`,
    });
  }
  return report(dbTime, storeVersion);
}

function configCheck(config: KairosConfig): DoctorCheck {
  const summary = `heartbeat ${formatDuration(config.heartbeatMs)}, worker lease ${formatDuration(config.workerLeaseMs)}, ${config.partitions} partitions`;
  if (config.retention.intervalMs === 0)
    return {
      name: 'config',
      status: 'warn',
      message: `valid (${summary}); retention is off (retentionInterval 0): the database grows without bound`,
    };
  return {
    name: 'config',
    status: 'ok',
    message: `valid (${summary}, retention every ${formatDuration(config.retention.intervalMs)})`,
  };
}

function schemaCheck(code: number, stored: number): DoctorCheck {
  if (stored === code)
    return { name: 'schema', status: 'ok', message: `version ${stored}, as this node's code` };
  if (stored < code)
    return {
      name: 'schema',
      status: 'fail',
      message: `the store is at version ${stored}, this node's code ships ${code}: migrations are missing (a node migrates at start)`,
    };
  return {
    name: 'schema',
    status: 'warn',
    message: `the store is at version ${stored}, this node's code knows up to ${code}: a newer release migrated it (upgrade this node)`,
  };
}

function listCheck(
  name: string,
  badStatus: DoctorStatus,
  items: string[],
  text: { ok: string; bad: string },
): DoctorCheck {
  if (items.length === 0) return { name, status: 'ok', message: text.ok };
  const more = items.length > MAX_ITEMS ? ` (${items.length}, the first ${MAX_ITEMS} listed)` : '';
  return { name, status: badStatus, message: text.bad + more, items: items.slice(0, MAX_ITEMS) };
}

async function readJobs(store: Store): Promise<{ items: CoverageJob[]; truncated: boolean }> {
  const items: CoverageJob[] = [];
  let after: string | undefined;
  while (items.length < DOCTOR_MAX_JOBS) {
    const page = await store.listJobs({ after, limit: JOB_PAGE });
    items.push(...page);
    if (page.length < JOB_PAGE) return { items, truncated: false };
    after = page.at(-1)!.name;
  }
  return { items, truncated: true };
}

function worst(checks: readonly DoctorCheck[]): DoctorStatus {
  if (checks.some((c) => c.status === 'fail')) return 'fail';
  return checks.some((c) => c.status === 'warn') ? 'warn' : 'ok';
}

function signed(ms: number): string {
  return `${ms >= 0 ? '+' : '-'}${Math.abs(ms)} ms`;
}
