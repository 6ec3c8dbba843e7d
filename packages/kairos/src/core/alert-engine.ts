import type { JsonObject, RunStatus } from '@kairos/client';
import { type AlertRuleRecord, ruleCovers } from './alert-rule.ts';
import { formatDuration } from './duration.ts';
import { type PlacementWorker, unplaceable } from './queue-wait.ts';
import type { Resources } from './resources.ts';

/**
 * The rule engine of alerts: pure functions from events and snapshots of the cluster to signals,
 * and from a signal and the stored state of its (rule, subject) to a decision. No I/O, no clock.
 *
 * State of one (rule, subject):
 *   (none) ──trigger──▶ firing ──recover──▶ resolved ──trigger──▶ firing …
 * A trigger notifies when the alert opens, and again while firing only once its window has passed
 * since the last notification (one alert per rule and subject per window). A recover of a firing
 * alert notifies "resolved". Inside a silence the notification is recorded, not sent.
 */

/** A change the store recorded as it happened (the outbox row), with the names it concerns. */
export type AlertEvent =
  | {
      id: number;
      type: 'run-ended';
      at: number;
      /** The job's namespace: only rules of that namespace see the event. */
      namespace: string;
      job: string;
      group: string;
      runId: number;
      status: RunStatus;
      error: string | null;
      /** Failed runs in a row ending with this one; set when a consecutive-failures rule covers the job. */
      failuresInRow?: number;
    }
  | {
      id: number;
      type: 'fire-skipped';
      at: number;
      namespace: string;
      job: string;
      group: string;
      reason: string;
      count: number | null;
      firstFire: number;
      lastFire: number;
    }
  | {
      id: number;
      type: 'worker-lost' | 'worker-back';
      at: number;
      /** The worker's namespace. */
      namespace: string;
      workerId: string;
      worker: string;
      group: string;
    };

export interface AlertSignal {
  ruleId: number;
  /** `job:<name>`, `worker:<id>`, `node:<name>`. */
  subject: string;
  type: 'trigger' | 'recover';
  /** From an event (counts as another occurrence) or from a snapshot (the condition still holds). */
  fromEvent: boolean;
  title: string;
  text: string;
  details: JsonObject;
}

export type AlertStatus = 'firing' | 'resolved';

export interface AlertStateRecord {
  ruleId: number;
  subject: string;
  status: AlertStatus;
  firedAt: number;
  notifiedAt: number | null;
  /** Occurrences since it fired. */
  count: number;
}

export interface AlertDecision {
  state: AlertStateRecord;
  notify: 'firing' | 'resolved' | null;
}

/** What a signal does to the state of its (rule, subject); null: nothing changes. */
export function decideAlert(
  state: AlertStateRecord | undefined,
  signal: AlertSignal,
  windowMs: number,
  now: number,
): AlertDecision | null {
  if (signal.type === 'recover') {
    if (state?.status !== 'firing') return null;
    return { state: { ...state, status: 'resolved', notifiedAt: now }, notify: 'resolved' };
  }
  if (state?.status !== 'firing') {
    return {
      state: {
        ruleId: signal.ruleId,
        subject: signal.subject,
        status: 'firing',
        firedAt: now,
        notifiedAt: now,
        count: 1,
      },
      notify: 'firing',
    };
  }
  const due = state.notifiedAt === null || now - state.notifiedAt >= windowMs;
  if (due) return { state: { ...state, notifiedAt: now, count: state.count + 1 }, notify: 'firing' };
  if (!signal.fromEvent) return null;
  return { state: { ...state, count: state.count + 1 }, notify: null };
}

/**
 * The signals one event raises or clears, for every enabled event rule that covers it. A rule sees
 * only the events of its own namespace.
 */
export function eventSignals(rules: readonly AlertRuleRecord[], event: AlertEvent): AlertSignal[] {
  const out: AlertSignal[] = [];
  for (const rule of rules) {
    if (!rule.enabled || rule.namespace !== event.namespace) continue;
    if (event.type === 'run-ended') {
      if (!ruleCovers(rule, { job: event.job, group: event.group })) continue;
      const subject = `job:${event.job}`;
      const details = { job: event.job, group: event.group, runId: event.runId, status: event.status };
      const succeeded = event.status === 'succeeded';
      const recover = (): AlertSignal => ({
        ruleId: rule.id,
        subject,
        type: 'recover',
        fromEvent: true,
        title: `Resolved: ${event.job} succeeded`,
        text: `Run ${event.runId} of job ${event.job} succeeded.`,
        details,
      });
      if (rule.kind === 'run-failed' || rule.kind === 'run-timed-out') {
        if (succeeded) out.push(recover());
        const wanted = rule.kind === 'run-failed' ? event.status === 'failed' : event.status === 'timed_out';
        if (wanted) {
          const what = event.status === 'failed' ? 'failed after its last attempt' : 'timed out';
          out.push({
            ruleId: rule.id,
            subject,
            type: 'trigger',
            fromEvent: true,
            title: `Job ${event.job}: run ${event.runId} ${what}`,
            text: `Run ${event.runId} of job ${event.job} (group ${event.group}) ${what}.${event.error ? ` Error: ${event.error}` : ''}`,
            details: { ...details, error: event.error },
          });
        }
      } else if (rule.kind === 'consecutive-failures') {
        if (succeeded) out.push(recover());
        const inRow = event.failuresInRow ?? 0;
        if (event.status !== 'succeeded' && event.status !== 'cancelled' && inRow >= (rule.count ?? 0)) {
          out.push({
            ruleId: rule.id,
            subject,
            type: 'trigger',
            fromEvent: true,
            title: `Job ${event.job}: ${inRow} failed runs in a row`,
            text: `The last ${inRow} runs of job ${event.job} (group ${event.group}) failed; the latest is run ${event.runId}.${event.error ? ` Error: ${event.error}` : ''}`,
            details: { ...details, failuresInRow: inRow, error: event.error },
          });
        }
      }
    } else if (event.type === 'fire-skipped') {
      if (rule.kind !== 'fire-skipped' || !ruleCovers(rule, { job: event.job, group: event.group })) continue;
      // An overload sheds fires of every job at once: one alert per job only when asked for by name.
      if (rule.reasons ? !rule.reasons.includes(event.reason) : event.reason === 'overloaded') continue;
      const fires =
        event.count === null ? 'many fires' : event.count === 1 ? '1 fire' : `${event.count} fires`;
      out.push({
        ruleId: rule.id,
        subject: `job:${event.job}`,
        type: 'trigger',
        fromEvent: true,
        title: `Job ${event.job}: ${fires} did not run (${event.reason})`,
        text: `${fires} of job ${event.job} from ${iso(event.firstFire)} to ${iso(event.lastFire)} did not run: ${event.reason}.`,
        details: {
          job: event.job,
          group: event.group,
          reason: event.reason,
          count: event.count,
          firstFire: iso(event.firstFire),
          lastFire: iso(event.lastFire),
        },
      });
    } else {
      if (rule.kind !== 'worker-lost' || !ruleCovers(rule, { group: event.group })) continue;
      const subject = `worker:${event.workerId}`;
      const details = { workerId: event.workerId, worker: event.worker, group: event.group };
      out.push(
        event.type === 'worker-lost'
          ? {
              ruleId: rule.id,
              subject,
              type: 'trigger',
              fromEvent: true,
              title: `Worker ${event.worker} of group ${event.group} lost`,
              text: `Worker ${event.worker} (${event.workerId}) of group ${event.group} stopped heartbeating; its running attempts are retried by their policy.`,
              details,
            }
          : {
              ruleId: rule.id,
              subject,
              type: 'recover',
              fromEvent: true,
              title: `Resolved: worker ${event.worker} is back`,
              text: `Worker ${event.worker} (${event.workerId}) of group ${event.group} heartbeats again.`,
              details,
            },
      );
    }
  }
  return out;
}

/** What an evaluation reads of the cluster for the rules judged from state. */
export interface AlertSnapshot {
  jobs: readonly AlertJobFacts[];
  /** The workers, live or not (core/queue-wait.ts judges which are live). */
  workers: readonly PlacementWorker[];
  nodes: readonly { name: string; expiresAt: number }[];
}

export interface AlertJobFacts {
  namespace: string;
  name: string;
  group: string;
  handler: string;
  paused: boolean;
  createdAt: number;
  lastSuccessAt: number | null;
  /** `available_at` of the oldest queued run; null when none is queued. */
  oldestQueuedAt: number | null;
  queued: number;
  /** The latest scheduled run: its fire time and when its first attempt started (null: not yet). */
  lastFire: { fireTime: number; startedAt: number | null } | null;
  /** What each run of the job requests (core/resources.ts); null or absent: nothing. */
  resources?: Resources | null;
  /**
   * The oldest queued run's group, handler and request (its own, a workflow step's, else the job's):
   * the run `run-queued` judges. Null or absent: none queued, or read as the job's own.
   */
  oldestQueued?: { group: string; handler: string; resources: Resources | null } | null;
}

/**
 * The signals of a state rule at `now`: a trigger for each subject whose condition holds, a recover
 * for each firing subject (`firing`) whose condition no longer holds. A lost node recovers only
 * when a node of that name is alive again (its row may simply be gone). A job rule judges only the
 * jobs of its own namespace, and only that namespace's workers serve them; nodes are the cluster's.
 */
export function conditionSignals(
  rule: AlertRuleRecord,
  snapshot: AlertSnapshot,
  firing: readonly string[],
  now: number,
): AlertSignal[] {
  const bad = new Map<string, Omit<AlertSignal, 'ruleId' | 'subject' | 'type' | 'fromEvent'>>();
  const threshold = rule.threshold ?? 0;
  const recoverable = new Set<string>();
  if (rule.kind === 'node-lost') {
    const alive = new Set(snapshot.nodes.filter((n) => n.expiresAt > now).map((n) => n.name));
    for (const name of alive) recoverable.add(`node:${name}`);
    for (const node of snapshot.nodes) {
      if (node.expiresAt > now || alive.has(node.name)) continue;
      bad.set(`node:${node.name}`, {
        title: `Node ${node.name} lost`,
        text: `Node ${node.name} stopped renewing its membership at ${iso(node.expiresAt)}; other nodes took over its partitions.`,
        details: { node: node.name, expiredAt: iso(node.expiresAt) },
      });
    }
  } else {
    for (const job of snapshot.jobs) {
      if (job.namespace !== rule.namespace || !ruleCovers(rule, { job: job.name, group: job.group }))
        continue;
      const subject = `job:${job.name}`;
      recoverable.add(subject);
      const facts = condition(rule.kind, threshold, rule.unroutableOnly, job, snapshot, now);
      if (facts) bad.set(subject, facts);
    }
  }
  const out: AlertSignal[] = [];
  for (const [subject, facts] of bad)
    out.push({ ruleId: rule.id, subject, type: 'trigger', fromEvent: false, ...facts });
  for (const subject of firing) {
    if (bad.has(subject)) continue;
    if (rule.kind === 'node-lost' && !recoverable.has(subject)) continue;
    out.push({
      ruleId: rule.id,
      subject,
      type: 'recover',
      fromEvent: false,
      title: `Resolved: ${rule.name} on ${subject}`,
      text: `The condition of rule ${rule.name} (${rule.kind}) no longer holds for ${subject}.`,
      details: { subject },
    });
  }
  return out;
}

function condition(
  kind: AlertRuleRecord['kind'],
  threshold: number,
  unroutableOnly: boolean,
  job: AlertJobFacts,
  snapshot: AlertSnapshot,
  now: number,
): Omit<AlertSignal, 'ruleId' | 'subject' | 'type' | 'fromEvent'> | null {
  const base = { job: job.name, group: job.group };
  if (kind === 'no-success') {
    if (job.paused) return null;
    const since = job.lastSuccessAt ?? job.createdAt;
    if (now - since < threshold) return null;
    return {
      title: `Job ${job.name}: no success within ${formatDuration(threshold)}`,
      text: job.lastSuccessAt
        ? `Job ${job.name} last succeeded at ${iso(job.lastSuccessAt)}, more than ${formatDuration(threshold)} ago.`
        : `Job ${job.name} has not succeeded since it was created at ${iso(job.createdAt)}.`,
      details: { ...base, lastSuccessAt: job.lastSuccessAt === null ? null : iso(job.lastSuccessAt) },
    };
  }
  if (kind === 'run-queued') {
    if (job.oldestQueuedAt === null || now - job.oldestQueuedAt < threshold) return null;
    const why = unroutable(job, snapshot, now);
    if (unroutableOnly && why === null) return null;
    return {
      title: `Job ${job.name}: runs queued longer than ${formatDuration(threshold)}${why ? ' (no live worker can take them)' : ''}`,
      text:
        `${job.queued} run(s) of job ${job.name} are queued; the oldest has waited since ${iso(job.oldestQueuedAt)}.` +
        (why ? ` ${why}.` : ''),
      details: { ...base, queued: job.queued, oldestQueuedAt: iso(job.oldestQueuedAt), noLiveWorker: why },
    };
  }
  if (kind === 'fire-late') {
    if (!job.lastFire) return null;
    const lateness = (job.lastFire.startedAt ?? now) - job.lastFire.fireTime;
    if (lateness < threshold) return null;
    return {
      title: `Job ${job.name}: fire started ${formatDuration(lateness)} late`,
      text: `The fire of job ${job.name} due at ${iso(job.lastFire.fireTime)} ${
        job.lastFire.startedAt === null ? 'has not started yet' : `started at ${iso(job.lastFire.startedAt)}`
      }, more than ${formatDuration(threshold)} late.`,
      details: { ...base, fireTime: iso(job.lastFire.fireTime), latenessMs: lateness },
    };
  }
  return null;
}

/**
 * Why no live worker of the job's namespace can take its oldest queued run (core/queue-wait.ts
 * {@link unplaceable}, as a run's `waiting` and the metric decide it), or null when one can.
 */
export function unroutable(
  job: Pick<AlertJobFacts, 'namespace' | 'group' | 'handler' | 'resources' | 'oldestQueued'>,
  snapshot: AlertSnapshot,
  now: number,
): string | null {
  const run = job.oldestQueued ?? {
    group: job.group,
    handler: job.handler,
    resources: job.resources ?? null,
  };
  const why = unplaceable({ namespace: job.namespace, ...run }, snapshot.workers, now);
  return why === null ? null : why.message.charAt(0).toUpperCase() + why.message.slice(1);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
