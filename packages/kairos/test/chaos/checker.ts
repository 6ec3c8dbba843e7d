import type {
  AckEvent,
  EndEvent,
  ExecEvent,
  FaultEvent,
  HistoryEvent,
  LoadEvent,
  StallEvent,
} from './history-log.ts';
import {
  type ClassifiedStall,
  classifyStalls,
  clusterStalled,
  formatStall,
  type LoadSummary,
  nodeAvailability,
  type StallSummary,
  stallEndingLease,
  summarizeLoad,
  summarizeStalls,
} from './stalls.ts';

/** One run as the store holds it at the end of a chaos run. */
export interface StoreRun {
  id: number;
  job: string;
  /** `schedule`, `manual`, `retry`… as the store says; null fire time for a manual run. */
  fireTime: number | null;
  status: string;
  /** The run's current (or last) attempt number; 0 before the first claim. */
  attempt: number;
  /** Worker id of the current attempt (the store's id, not the process name). */
  workerId: string | null;
  startedAt: number | null;
  createdAt: number;
  /** The result the accepted success report wrote. */
  result: unknown;
  /** Ended attempts (the running one is the run itself). */
  attempts: Array<{
    attempt: number;
    workerId: string;
    status: string;
    startedAt: number;
    finishedAt: number | null;
  }>;
}

/** What the store holds at the end. */
export interface StoreSnapshot {
  takenAt: number;
  runs: StoreRun[];
  /** The ledger of fires that did not become runs. */
  skipped: Array<{ job: string; reason: string; firstFire: number; lastFire: number }>;
  /** Worker id → the worker process's name. */
  workerNames: Record<string, string>;
}

export interface CheckOptions {
  /** The nominal fire times each scheduled job owes inside the checked window. */
  scheduled: Array<{ job: string; fires: number[] }>;
  workerLeaseMs: number;
  reaperIntervalMs: number;
  /** Slack added to every time bound (a busy machine). */
  slackMs: number;
  /** Names of the worker processes alive when the snapshot was taken. */
  liveWorkers: string[];
  /** Skip reasons a job's policy makes legitimate (`overlap` for a job with `overlap: skip`). */
  allowedSkips?: Record<string, string[]>;
  /**
   * The misfire grace and partition lease of the nodes: a fire skipped as `misfire` is expected when
   * its grace ran out while the database was down (a `db-restart` fault) or before the cluster could
   * fire again after it came back (lease + a renewal + slack). Without them every misfire counts.
   */
  misfireGraceMs?: number;
  partitionLeaseMs?: number;
  /**
   * The workers' heartbeat: a machine stall of a worker's process at least `workerLeaseMs −
   * heartbeatMs` long explains its lost attempt. Without it no stall explains a re-execution.
   */
  heartbeatMs?: number;
  /**
   * The node slots (`n1`…): a missed fire is explained by machine stalls when no node could fire
   * it (see `nodeAvailability`). Without them (or without the partition lease) no stall explains one.
   */
  nodes?: string[];
}

export interface Violation {
  kind: string;
  message: string;
  evidence: unknown;
}

export interface InvariantVerdict {
  name: string;
  /** What was checked, in numbers. */
  checked: string;
  violations: Violation[];
}

export interface Verdict {
  ok: boolean;
  counts: {
    firesChecked: number;
    runs: number;
    executions: number;
    acknowledgedEnqueues: number;
    faultsInjected: number;
    faultsByKind: Record<string, number>;
    fencedWritesRejected: number;
    /** Re-executions after a fenced attempt, explained by a fault or by a machine stall. */
    reexecutionsAfterFence: number;
    /** Of those, the ones only a machine stall explains. */
    reexecutionsAfterStall: number;
    /** Fires no node could fire in time because the machine stalled them (not violations). */
    missedFiresAfterStall: number;
  };
  /** What the machine did meanwhile: load and pressure samples, and the stalls of every process. */
  machine: { load: LoadSummary; stalls: StallSummary };
  invariants: InvariantVerdict[];
  /** Executions beyond one per run, each after a fenced attempt that a fault explains. */
  reexecutions: Array<{
    runId: number;
    job: string;
    fireTime: number | null;
    attempts: unknown[];
    faults: string[];
    stalls: string[];
  }>;
  /**
   * Missed fires and re-executions explained by machine stalls, each with the stalls: the machine
   * held the processes, so the run did not test these promises there. Not violations.
   */
  explainedByStalls: Array<{ kind: 'missed-fire' | 're-execution'; message: string; evidence: unknown }>;
  /** Every stall the probes recorded, classified (`stalls.ts`). */
  stalls: ClassifiedStall[];
}

const FINAL = new Set(['succeeded', 'failed', 'timed_out', 'cancelled']);
/** Attempt ends that fence the attempt out: the worker may still have been running it. */
const FENCED = new Set(['lost', 'timed_out', 'cancelled']);

type Attempt = StoreRun['attempts'][number] & { current?: boolean };

/** All attempts of a run, the running one included. */
function attemptsOf(run: StoreRun): Attempt[] {
  const list: Attempt[] = [...run.attempts];
  if (run.status === 'running' && run.workerId !== null && !list.some((a) => a.attempt === run.attempt))
    list.push({
      attempt: run.attempt,
      workerId: run.workerId,
      status: 'running',
      startedAt: run.startedAt ?? 0,
      finishedAt: null,
      current: true,
    });
  return list.sort((a, b) => a.attempt - b.attempt);
}

/**
 * Checks a chaos run's whole history against the store at the end. Invariants:
 * - fires: each nominal fire inside the window has exactly one run (or a ledger entry its job's
 *   policy allows, or a misfire whose grace ran out while the database was down), and that run ended;
 * - enqueues: each acknowledged enqueue exists in the store and reached a final state;
 * - holders: no run is `running` past worker lease + sweep without a live worker executing it;
 * - fencing: no write of a fenced attempt was accepted (one success per run, by its last attempt,
 *   with that attempt's result);
 * - executions: each attempt executed at most once, each execution is an attempt the store knows,
 *   and a run executed more than once only after an attempt was fenced out by a fault that hit
 *   its worker (or the database).
 *
 * Machine stalls (`stall-probe.ts`, classified in `stalls.ts`) are causes of their own, as faults
 * are, and explain two things only, each listed in `explainedByStalls`, not as a violation:
 * - a re-execution whose earlier attempt was `lost` after its worker's process stalled for at least
 *   worker lease − heartbeat (a freeze the at-least-once promise allows, as a SIGSTOP);
 * - a missed fire (a `misfire`, or no run at all) that no node could fire: every node was stalled
 *   (or down by a fault) for all but less than a failover (P + P/3) from the fire to the end of
 *   its grace.
 * Nothing explains a doubled fire, a lost or unfinished enqueue, a stuck run, an accepted write of
 * a fenced attempt (two committed outcomes of one run) or an attempt executed twice.
 */
export function checkChaos(events: HistoryEvent[], store: StoreSnapshot, options: CheckOptions): Verdict {
  const execs = events.filter((e): e is ExecEvent => e.t === 'exec');
  const ends = events.filter((e): e is EndEvent => e.t === 'end');
  const acks = events.filter((e): e is AckEvent => e.t === 'ack');
  const faults = events.filter((e): e is FaultEvent => e.t === 'fault');
  const stalls = classifyStalls(
    events.filter((e): e is StallEvent => e.t === 'stall'),
    faults,
  );
  const explainedByStalls: Verdict['explainedByStalls'] = [];
  const runs = new Map(store.runs.map((r) => [r.id, r]));
  const bound = options.workerLeaseMs + options.reaperIntervalMs + options.slackMs;
  const nameOf = (workerId: string) => store.workerNames[workerId] ?? workerId;

  // fires ------------------------------------------------------------------
  const fireViolations: Violation[] = [];
  const outages = faults.filter((f) => f.kind === 'db-restart');
  /** Whether the fire's grace ended while the database was down or the cluster was taking it back. */
  const misfireExpected = (reason: string, fireTime: number): boolean => {
    const { misfireGraceMs, partitionLeaseMs } = options;
    if (reason !== 'misfire' || misfireGraceMs === undefined || partitionLeaseMs === undefined) return false;
    const graceEnds = fireTime + misfireGraceMs;
    const recovery = partitionLeaseMs + partitionLeaseMs / 3 + options.slackMs;
    return outages.some(
      (o) => o.start <= graceEnds && graceEnds <= (o.end ?? Number.POSITIVE_INFINITY) + recovery,
    );
  };
  /**
   * Whether machine stalls (with faults) left no node able to fire a missed fire: from its fire time
   * to the end of its grace (a `misfire` in the ledger) or to the snapshot (no run, no ledger entry).
   * Undefined when the options do not allow the question or the ledger gives another reason.
   */
  const clusterStalledFor = (fireTime: number, reason: string | null) => {
    const { nodes, partitionLeaseMs, misfireGraceMs } = options;
    if (!nodes || partitionLeaseMs === undefined) return undefined;
    if (reason !== null && (reason !== 'misfire' || misfireGraceMs === undefined)) return undefined;
    const to = reason === 'misfire' ? fireTime + misfireGraceMs! : store.takenAt;
    const availability = nodeAvailability(stalls, faults, nodes, fireTime, to);
    const text = Object.entries(availability.nodes)
      .map(([slot, n]) => `${slot} ${n.unableMs} ms (${n.stalledMs} stalled)`)
      .join(', ')
      .concat(` of ${availability.windowMs} ms`);
    return {
      explained: clusterStalled(availability, partitionLeaseMs + partitionLeaseMs / 3),
      availability,
      text,
    };
  };
  const byFire = new Map<string, StoreRun[]>();
  for (const run of store.runs) {
    if (run.fireTime === null) continue;
    const key = `${run.job}@${run.fireTime}`;
    byFire.set(key, [...(byFire.get(key) ?? []), run]);
  }
  let firesChecked = 0;
  for (const { job, fires } of options.scheduled) {
    const allowed = options.allowedSkips?.[job] ?? [];
    for (const fireTime of fires) {
      firesChecked++;
      const found = byFire.get(`${job}@${fireTime}`) ?? [];
      if (found.length > 1) {
        fireViolations.push({
          kind: 'fire-doubled',
          message: `${job} @ ${iso(fireTime)} has ${found.length} runs`,
          evidence: { job, fireTime, runs: found.map((r) => r.id) },
        });
      } else if (found.length === 0) {
        const ledger = store.skipped.find(
          (s) => s.job === job && s.firstFire <= fireTime && fireTime <= s.lastFire,
        );
        if (!ledger || !(allowed.includes(ledger.reason) || misfireExpected(ledger.reason, fireTime))) {
          const message = `${job} @ ${iso(fireTime)} has no run${ledger ? ` (ledger: ${ledger.reason})` : ''}`;
          const stalled = clusterStalledFor(fireTime, ledger?.reason ?? null);
          if (stalled?.explained)
            explainedByStalls.push({
              kind: 'missed-fire',
              message: `${message}: no node could fire it (${stalled.text})`,
              evidence: { job, fireTime, ledger: ledger ?? null, nodes: stalled.availability },
            });
          else
            fireViolations.push({
              kind: 'fire-missing',
              message: stalled ? `${message}; nodes unable ${stalled.text}` : message,
              evidence: { job, fireTime, ledger: ledger ?? null, nodes: stalled?.availability ?? null },
            });
        }
      } else if (!FINAL.has(found[0]!.status)) {
        fireViolations.push({
          kind: 'fire-unfinished',
          message: `${job} @ ${iso(fireTime)}: run ${found[0]!.id} is still ${found[0]!.status}`,
          evidence: summary(found[0]!),
        });
      }
    }
  }

  // enqueues -------------------------------------------------------------------
  const enqueueViolations: Violation[] = [];
  for (const ack of acks) {
    const run = runs.get(ack.runId);
    if (!run)
      enqueueViolations.push({
        kind: 'enqueue-lost',
        message: `run ${ack.runId} of ${ack.job}, acknowledged at ${iso(ack.at)}, is not in the store`,
        evidence: ack,
      });
    else if (!FINAL.has(run.status))
      enqueueViolations.push({
        kind: 'enqueue-unfinished',
        message: `run ${ack.runId} of ${ack.job}, acknowledged at ${iso(ack.at)}, is still ${run.status}`,
        evidence: summary(run),
      });
  }

  // holders --------------------------------------------------------------------
  const holderViolations: Violation[] = [];
  const live = new Set(options.liveWorkers);
  const ended = new Set(ends.map((e) => `${e.runId}#${e.attempt}`));
  const open = new Set(
    execs
      .filter((e) => !ended.has(`${e.runId}#${e.attempt}`))
      .map((e) => `${e.runId}#${e.attempt}@${e.worker}`),
  );
  let runningChecked = 0;
  for (const run of store.runs) {
    if (run.status !== 'running') continue;
    runningChecked++;
    const age = store.takenAt - (run.startedAt ?? run.createdAt);
    const holder = run.workerId === null ? null : nameOf(run.workerId);
    const held = holder !== null && live.has(holder) && open.has(`${run.id}#${run.attempt}@${holder}`);
    if (!held && age > bound)
      holderViolations.push({
        kind: 'run-stuck',
        message: `run ${run.id} (${run.job}) running for ${age} ms, attempt ${run.attempt} on ${holder ?? 'no worker'}, which ${
          holder !== null && live.has(holder) ? 'is alive but does not execute it' : 'is gone'
        } (bound ${bound} ms)`,
        evidence: summary(run),
      });
  }

  // fencing --------------------------------------------------------------------
  const fencingViolations: Violation[] = [];
  let fencedWritesRejected = 0;
  for (const end of ends) {
    if (!end.ok) continue;
    const run = runs.get(end.runId);
    const attempt = run && attemptsOf(run).find((a) => a.attempt === end.attempt);
    if (attempt && FENCED.has(attempt.status)) fencedWritesRejected++;
  }
  for (const run of store.runs) {
    const attempts = attemptsOf(run);
    const successes = attempts.filter((a) => a.status === 'succeeded');
    const last = attempts.at(-1);
    const resultAttempt = (run.result as { attempt?: unknown } | null)?.attempt;
    if (successes.length > 1 || (successes.length === 1 && successes[0] !== last)) {
      fencingViolations.push({
        kind: 'fenced-write-accepted',
        message: `run ${run.id} (${run.job}) has a success that is not its last attempt`,
        evidence: summary(run),
      });
    } else if (
      run.status === 'succeeded' &&
      typeof resultAttempt === 'number' &&
      resultAttempt !== run.attempt
    ) {
      fencingViolations.push({
        kind: 'fenced-write-accepted',
        message: `run ${run.id} (${run.job}) succeeded as attempt ${run.attempt} with the result of attempt ${resultAttempt}`,
        evidence: summary(run),
      });
    }
  }

  // executions -----------------------------------------------------------------
  const executionViolations: Violation[] = [];
  const reexecutions: Verdict['reexecutions'] = [];
  const execsByRun = new Map<number, ExecEvent[]>();
  for (const e of execs) execsByRun.set(e.runId, [...(execsByRun.get(e.runId) ?? []), e]);
  for (const [runId, list] of execsByRun) {
    const run = runs.get(runId);
    if (!run) {
      executionViolations.push({
        kind: 'execution-unknown-run',
        message: `run ${runId} was executed but is not in the store`,
        evidence: list,
      });
      continue;
    }
    const attempts = attemptsOf(run);
    const seen = new Map<number, ExecEvent[]>();
    for (const e of list) seen.set(e.attempt, [...(seen.get(e.attempt) ?? []), e]);
    for (const [attempt, same] of seen) {
      if (same.length > 1)
        executionViolations.push({
          kind: 'attempt-executed-twice',
          message: `run ${runId} (${run.job}) attempt ${attempt} executed ${same.length} times`,
          evidence: { run: summary(run), executions: same },
        });
      if (!attempts.some((a) => a.attempt === attempt))
        executionViolations.push({
          kind: 'execution-unrecorded',
          message: `run ${runId} (${run.job}) attempt ${attempt} executed on ${same[0]!.worker} but the store has no such attempt`,
          evidence: { run: summary(run), executions: same },
        });
    }
    if (seen.size <= 1) continue;
    // More than one attempt executed: every one but the last must have been fenced out by a fault.
    const executed = attempts.filter((a) => seen.has(a.attempt));
    const explainedBy: string[] = [];
    const stalledBy: ClassifiedStall[] = [];
    /** For an unexplained one: the machine stalls its workers had meanwhile, all too short. */
    const nearStalls: ClassifiedStall[] = [];
    let explained = true;
    for (const a of executed.slice(0, -1)) {
      if (a.status === 'failed') continue; // the handler failed: a retry, not a second execution
      const worker = nameOf(a.workerId);
      const cause = FENCED.has(a.status)
        ? faults.find(
            (f) =>
              (f.targets.includes(`worker:${worker}`) || f.targets.includes('db')) &&
              f.start <= (a.finishedAt ?? store.takenAt) + options.slackMs &&
              (f.end ?? store.takenAt) >= a.startedAt - options.workerLeaseMs - options.slackMs,
          )
        : undefined;
      // No fault: a machine stall of the worker's process long enough to end its lease.
      const stall =
        cause || a.status !== 'lost' || options.heartbeatMs === undefined
          ? undefined
          : stallEndingLease(stalls, worker, a, {
              workerLeaseMs: options.workerLeaseMs,
              heartbeatMs: options.heartbeatMs,
              slackMs: options.slackMs,
              until: store.takenAt,
            });
      if (cause) explainedBy.push(`${cause.kind} ${cause.targets.join(',')} ${iso(cause.start)}`);
      else if (stall) stalledBy.push(stall);
      else {
        explained = false;
        const to = (a.finishedAt ?? store.takenAt) + options.slackMs;
        const from = a.startedAt - options.workerLeaseMs - options.slackMs;
        nearStalls.push(
          ...stalls.filter(
            (s) => s.cause === 'machine' && s.process === worker && s.start <= to && s.end >= from,
          ),
        );
      }
    }
    const evidence = {
      runId,
      job: run.job,
      fireTime: run.fireTime,
      attempts: executed.map((a) => ({
        attempt: a.attempt,
        worker: nameOf(a.workerId),
        status: a.status,
        startedAt: iso(a.startedAt),
        finishedAt: a.finishedAt === null ? null : iso(a.finishedAt),
      })),
      faults: explainedBy,
      stalls: stalledBy.map(formatStall),
    };
    if (explained) {
      reexecutions.push(evidence);
      if (stalledBy.length > 0)
        explainedByStalls.push({
          kind: 're-execution',
          message: `run ${runId} (${run.job}${run.fireTime === null ? '' : ` @ ${iso(run.fireTime)}`}) executed ${seen.size} times after a lease ended in a machine stall: ${evidence.stalls.join('; ')}`,
          evidence,
        });
    } else
      executionViolations.push({
        kind: 'double-execution',
        message: `run ${runId} (${run.job}${run.fireTime === null ? '' : ` @ ${iso(run.fireTime)}`}) executed ${seen.size} times; an earlier attempt was not fenced out by a fault on its worker${
          nearStalls.length === 0
            ? ''
            : ` (its worker's machine stalls meanwhile, each shorter than the ${options.workerLeaseMs - (options.heartbeatMs ?? 0)} ms that can end a lease: ${nearStalls.map((s) => `${s.ms} ms`).join(', ')})`
        }`,
        evidence: { ...evidence, workerStalls: nearStalls.map(formatStall) },
      });
  }

  const faultsByKind: Record<string, number> = {};
  for (const f of faults) faultsByKind[f.kind] = (faultsByKind[f.kind] ?? 0) + 1;
  const invariants: InvariantVerdict[] = [
    {
      name: 'each due fire has exactly one run, and it ended',
      checked: `${firesChecked} fires of ${options.scheduled.length} jobs`,
      violations: fireViolations,
    },
    {
      name: 'every acknowledged enqueue reaches a final state',
      checked: `${acks.length} acknowledged enqueues`,
      violations: enqueueViolations,
    },
    {
      name: `no run stays running past lease + sweep (${bound} ms) without a live holder`,
      checked: `${runningChecked} runs running at the end, ${live.size} live workers`,
      violations: holderViolations,
    },
    {
      name: 'no write of a fenced attempt is accepted',
      checked: `${store.runs.length} runs; ${fencedWritesRejected} successes of fenced attempts rejected`,
      violations: fencingViolations,
    },
    {
      name: 'a run executes more than once only after a fault fenced an attempt out',
      checked: `${execs.length} executions of ${execsByRun.size} runs; ${reexecutions.length} re-executions after a fence (${explainedByStalls.filter((e) => e.kind === 're-execution').length} after a machine stall)`,
      violations: executionViolations,
    },
  ];
  return {
    ok: invariants.every((i) => i.violations.length === 0),
    counts: {
      firesChecked,
      runs: store.runs.length,
      executions: execs.length,
      acknowledgedEnqueues: acks.length,
      faultsInjected: faults.length,
      faultsByKind,
      fencedWritesRejected,
      reexecutionsAfterFence: reexecutions.length,
      reexecutionsAfterStall: explainedByStalls.filter((e) => e.kind === 're-execution').length,
      missedFiresAfterStall: explainedByStalls.filter((e) => e.kind === 'missed-fire').length,
    },
    machine: {
      load: summarizeLoad(events.filter((e): e is LoadEvent => e.t === 'load')),
      stalls: summarizeStalls(stalls, options.workerLeaseMs - (options.heartbeatMs ?? 0)),
    },
    invariants,
    reexecutions,
    explainedByStalls,
    stalls,
  };
}

/** The verdict as text: one line per invariant, then each violation with its evidence. */
export function formatVerdict(verdict: Verdict, maxPerInvariant = 20): string {
  const { counts, machine } = verdict;
  const byStalls = counts.reexecutionsAfterStall + counts.missedFiresAfterStall;
  const { load, stalls } = machine;
  const pct = (v: number | null) => (v === null ? 'n/a' : `${v}%`);
  const lines = [
    `verdict: ${verdict.ok ? 'PASS' : 'FAIL'}${
      byStalls === 0
        ? ''
        : ` (${counts.reexecutionsAfterStall} re-executions and ${counts.missedFiresAfterStall} missed fires explained only by machine stalls: promises not tested there)`
    }`,
    `counts: ${JSON.stringify(counts)}`,
    `machine: ${load.samples} samples; load average (1 min) max ${load.load1Max ?? 'n/a'}; CPU pressure (some) mean ${pct(load.cpuSomePctMean)}, max ${pct(load.cpuSomePctMax)}; I/O pressure (some) max ${pct(load.ioSomePctMax)}`,
    `stalls: ${stalls.recorded} recorded (gaps of 300 ms or more): ${stalls.machine} machine (${stalls.machineLeaseLong} long enough to end a worker lease; longest ${
      stalls.longestMachine ? `${stalls.longestMachine.ms} ms, ${stalls.longestMachine.process}` : 'none'
    }), ${stalls.busy} busy (the process's own work), ${stalls.blocked} blocked (asleep in the kernel, or no majority), ${stalls.injected} during an injected stop`,
  ];
  // Machine stalls of a second or more are causes of their own, listed like faults.
  const long = verdict.stalls
    .filter((s) => s.cause === 'machine' && s.ms >= 1000)
    .sort((a, b) => b.ms - a.ms);
  for (const s of long.slice(0, maxPerInvariant)) lines.push(`     ${formatStall(s)}`);
  if (long.length > maxPerInvariant)
    lines.push(`     … ${long.length - maxPerInvariant} more machine stalls of 1 s or more`);
  for (const inv of verdict.invariants) {
    lines.push(
      `${inv.violations.length === 0 ? 'ok  ' : 'FAIL'} ${inv.name}: checked ${inv.checked}; ${inv.violations.length} violations`,
    );
    for (const v of inv.violations.slice(0, maxPerInvariant))
      lines.push(`     - [${v.kind}] ${v.message}\n       evidence: ${JSON.stringify(v.evidence)}`);
    if (inv.violations.length > maxPerInvariant)
      lines.push(`     … ${inv.violations.length - maxPerInvariant} more`);
  }
  for (const e of verdict.explainedByStalls.slice(0, maxPerInvariant))
    lines.push(`explained by a machine stall: [${e.kind}] ${e.message}`);
  if (verdict.explainedByStalls.length > maxPerInvariant)
    lines.push(`explained by a machine stall: … ${verdict.explainedByStalls.length - maxPerInvariant} more`);
  for (const r of verdict.reexecutions.slice(0, maxPerInvariant))
    lines.push(`re-executed after a fence: ${JSON.stringify(r)}`);
  return lines.join('\n');
}

function summary(run: StoreRun) {
  return {
    id: run.id,
    job: run.job,
    fireTime: run.fireTime === null ? null : iso(run.fireTime),
    status: run.status,
    attempt: run.attempt,
    workerId: run.workerId,
    startedAt: run.startedAt === null ? null : iso(run.startedAt),
    attempts: run.attempts,
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
