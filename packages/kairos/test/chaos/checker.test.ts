import { describe, expect, it } from 'vitest';
import { checkChaos, formatVerdict, type StoreRun, type StoreSnapshot } from './checker.ts';
import type { HistoryEvent } from './history-log.ts';

// Hand-made histories: the chaos checker must pass a clean one and catch each kind of violation.

const T0 = Date.UTC(2026, 0, 1);
const options = {
  scheduled: [{ job: 'tick', fires: [T0, T0 + 1000, T0 + 2000] }],
  workerLeaseMs: 5000,
  reaperIntervalMs: 1000,
  slackMs: 1000,
  liveWorkers: ['w1', 'w2'],
};

function run(id: number, extra: Partial<StoreRun> = {}): StoreRun {
  return {
    id,
    job: 'tick',
    fireTime: null,
    status: 'succeeded',
    attempt: 1,
    workerId: 'id-w1',
    startedAt: T0 + id * 10,
    createdAt: T0 + id * 10 - 5,
    result: { runId: id, attempt: extra.attempt ?? 1 },
    attempts: [
      {
        attempt: 1,
        workerId: 'id-w1',
        status: 'succeeded',
        startedAt: T0 + id * 10,
        finishedAt: T0 + id * 10 + 5,
      },
    ],
    ...extra,
  };
}

function executed(id: number, attempt = 1, worker = 'w1', ok = true): HistoryEvent[] {
  return [
    { t: 'exec', runId: id, attempt, job: 'tick', fireTime: null, worker, at: T0 + id * 10 },
    { t: 'end', runId: id, attempt, worker, at: T0 + id * 10 + 5, ok },
  ];
}

/** A clean history: three fires, each run once; two acknowledged manual runs, each run once. */
function clean(): { events: HistoryEvent[]; store: StoreSnapshot } {
  const runs = [
    run(1, { fireTime: T0 }),
    run(2, { fireTime: T0 + 1000 }),
    run(3, { fireTime: T0 + 2000 }),
    run(4, { job: 'manual' }),
    run(5, { job: 'manual' }),
  ];
  const events: HistoryEvent[] = [
    ...[1, 2, 3, 4, 5].flatMap((id) => executed(id)),
    { t: 'ack', runId: 4, job: 'manual', at: T0 },
    { t: 'ack', runId: 5, job: 'manual', at: T0 },
  ];
  return {
    events,
    store: { takenAt: T0 + 60_000, runs, skipped: [], workerNames: { 'id-w1': 'w1', 'id-w2': 'w2' } },
  };
}

const runOf = (e: HistoryEvent) => ('runId' in e ? e.runId : null);
const kinds = (verdict: ReturnType<typeof checkChaos>) =>
  verdict.invariants.flatMap((i) => i.violations.map((v) => v.kind));

describe('the chaos checker', () => {
  it('passes a clean history and counts what it checked', () => {
    const { events, store } = clean();
    const verdict = checkChaos(events, store, options);
    expect(kinds(verdict)).toEqual([]);
    expect(verdict.ok).toBe(true);
    expect(verdict.counts).toMatchObject({
      firesChecked: 3,
      runs: 5,
      executions: 5,
      acknowledgedEnqueues: 2,
      fencedWritesRejected: 0,
    });
  });

  it('catches a double execution whose first attempt no fault explains', () => {
    const { events, store } = clean();
    // Run 2's first attempt was declared lost while its worker was healthy (no fault on w1), and
    // attempt 2 ran it again on w2: the first worker ran it too, to the end.
    store.runs[1] = run(2, {
      fireTime: T0 + 1000,
      attempt: 2,
      workerId: 'id-w2',
      result: { attempt: 2 },
      attempts: [
        { attempt: 1, workerId: 'id-w1', status: 'lost', startedAt: T0 + 20, finishedAt: T0 + 6000 },
        { attempt: 2, workerId: 'id-w2', status: 'succeeded', startedAt: T0 + 6000, finishedAt: T0 + 6010 },
      ],
    });
    events.push(...executed(2, 2, 'w2'));
    // A node was paused meanwhile: a node fault does not excuse a lost worker.
    events.push({ t: 'fault', kind: 'node-stop', targets: ['node:n1'], start: T0, end: T0 + 8000 });
    const verdict = checkChaos(events, store, options);
    expect(kinds(verdict)).toEqual(['double-execution']);
    expect(verdict.ok).toBe(false);
    // The worker's success of attempt 1 was refused: a fenced write rejected.
    expect(verdict.counts.fencedWritesRejected).toBe(1);
  });

  it('accepts the same re-execution when a fault hit the first worker, and lists it', () => {
    const { events, store } = clean();
    store.runs[1] = run(2, {
      fireTime: T0 + 1000,
      attempt: 2,
      workerId: 'id-w2',
      result: { attempt: 2 },
      attempts: [
        { attempt: 1, workerId: 'id-w1', status: 'lost', startedAt: T0 + 20, finishedAt: T0 + 6000 },
        { attempt: 2, workerId: 'id-w2', status: 'succeeded', startedAt: T0 + 6000, finishedAt: T0 + 6010 },
      ],
    });
    events.push(...executed(2, 2, 'w2'));
    events.push({ t: 'fault', kind: 'worker-stop', targets: ['worker:w1'], start: T0 + 10, end: T0 + 7000 });
    const verdict = checkChaos(events, store, options);
    expect(kinds(verdict)).toEqual([]);
    expect(verdict.reexecutions).toHaveLength(1);
    expect(verdict.reexecutions[0]).toMatchObject({
      runId: 2,
      faults: [expect.stringContaining('worker-stop')],
    });
  });

  it('catches an acknowledged enqueue that is missing or never ended', () => {
    const { events, store } = clean();
    events.push({ t: 'ack', runId: 99, job: 'manual', at: T0 });
    store.runs[4] = run(5, {
      job: 'manual',
      status: 'queued',
      attempt: 0,
      workerId: null,
      startedAt: null,
      attempts: [],
    });
    const verdict = checkChaos(
      events.filter((e) => !(e.t !== 'ack' && runOf(e) === 5)),
      store,
      options,
    );
    expect(kinds(verdict).sort()).toEqual(['enqueue-lost', 'enqueue-unfinished']);
  });

  it('catches a run stuck running without a live holder, and spares one a live worker executes', () => {
    const { events, store } = clean();
    // Run 4: claimed by w1 long ago, but w1 never started it (the claim's answer was lost).
    store.runs[3] = run(4, { job: 'manual', status: 'running', result: null, attempts: [] });
    // Run 5: a long handler that w2 is executing right now.
    store.runs[4] = run(5, {
      job: 'manual',
      status: 'running',
      workerId: 'id-w2',
      result: null,
      attempts: [],
    });
    const verdict = checkChaos(
      [
        ...events.filter((e) => !(e.t !== 'ack' && (runOf(e) === 4 || runOf(e) === 5))),
        { t: 'exec', runId: 5, attempt: 1, job: 'manual', fireTime: null, worker: 'w2', at: T0 + 50 },
      ],
      store,
      options,
    );
    expect(kinds(verdict).filter((k) => k === 'run-stuck')).toEqual(['run-stuck']);
    expect(verdict.invariants[2]!.violations[0]!.message).toContain('run 4');
  });

  it('catches a missing fire and a doubled one, and takes a ledger entry the policy allows', () => {
    const { events, store } = clean();
    store.runs[2] = run(3, { fireTime: T0 + 1000 });
    let verdict = checkChaos(events, store, options);
    expect(kinds(verdict)).toEqual(['fire-doubled', 'fire-missing']);
    store.runs.splice(2, 1);
    store.skipped.push({ job: 'tick', reason: 'overlap', firstFire: T0 + 2000, lastFire: T0 + 2000 });
    verdict = checkChaos(
      events.filter((e) => e.t === 'ack' || runOf(e) !== 3),
      store,
      {
        ...options,
        allowedSkips: { tick: ['overlap'] },
      },
    );
    expect(kinds(verdict)).toEqual([]);
    verdict = checkChaos(
      events.filter((e) => e.t === 'ack' || runOf(e) !== 3),
      store,
      options,
    );
    expect(kinds(verdict)).toEqual(['fire-missing']);
  });

  it('catches a success written by a fenced attempt and an attempt executed twice', () => {
    const { events, store } = clean();
    store.runs[0] = run(1, {
      fireTime: T0,
      attempt: 2,
      workerId: 'id-w2',
      result: { attempt: 1 },
      attempts: [
        { attempt: 1, workerId: 'id-w1', status: 'lost', startedAt: T0, finishedAt: T0 + 6000 },
        { attempt: 2, workerId: 'id-w2', status: 'succeeded', startedAt: T0 + 6000, finishedAt: T0 + 6010 },
      ],
    });
    events.push(...executed(3, 1, 'w2'));
    const verdict = checkChaos(events, store, options);
    expect(kinds(verdict)).toEqual(['fenced-write-accepted', 'attempt-executed-twice']);
  });

  it('expects a misfire whose grace ran out while the database was down, and only that', () => {
    // Fires T0 .. T0+2000 skipped as misfires (no runs); a grace of 60 s, a lease of 3 s.
    const misfired = (outage: { start: number; end: number }) => {
      const { events, store } = clean();
      store.runs = store.runs.filter((r) => r.fireTime === null);
      store.skipped = [{ job: 'tick', reason: 'misfire', firstFire: T0, lastFire: T0 + 2000 }];
      const history = events.filter((e) => e.t === 'ack' || [4, 5].includes(runOf(e) ?? 0));
      history.push({ t: 'fault', kind: 'db-restart', targets: ['db'], ...outage });
      return checkChaos(history, store, { ...options, misfireGraceMs: 60_000, partitionLeaseMs: 3000 });
    };
    const missing = (verdict: ReturnType<typeof checkChaos>) =>
      verdict.invariants.flatMap((i) => i.violations.filter((v) => v.kind === 'fire-missing')).length;
    // The database down from T0 + 30 s to T0 + 100 s: every grace (ending T0 + 60..62 s) ran out then.
    expect(missing(misfired({ start: T0 + 30_000, end: T0 + 100_000 }))).toBe(0);
    // Back at T0 + 58 s: the graces end within lease + renewal + slack (5 s) of its return.
    expect(missing(misfired({ start: T0 + 30_000, end: T0 + 58_000 }))).toBe(0);
    // Back at T0 + 50 s: the cluster had 10 s to fire them; none of the misfires is excused.
    expect(missing(misfired({ start: T0 + 30_000, end: T0 + 50_000 }))).toBe(3);
    // Down only after the graces ended: the fires were already late, not the outage's doing.
    expect(missing(misfired({ start: T0 + 63_000, end: T0 + 90_000 }))).toBe(3);
    // Without the grace and lease the checker excuses nothing.
    const { events, store } = clean();
    store.runs = store.runs.filter((r) => r.fireTime === null);
    store.skipped = [{ job: 'tick', reason: 'misfire', firstFire: T0, lastFire: T0 + 2000 }];
    events.push({ t: 'fault', kind: 'db-restart', targets: ['db'], start: T0 + 30_000, end: T0 + 100_000 });
    const history = events.filter((e) => e.t === 'ack' || e.t === 'fault' || [4, 5].includes(runOf(e) ?? 0));
    expect(missing(checkChaos(history, store, options))).toBe(3);
  });
});

describe('the chaos checker and machine stalls', () => {
  // The harness's knobs: worker lease 5 s and heartbeat 1 s, so a stall of 4 s or more can end a
  // lease; partition lease 3 s (failover 4 s); misfire grace 60 s; nodes n1 and n2.
  const stallOptions = {
    ...options,
    heartbeatMs: 1000,
    partitionLeaseMs: 3000,
    misfireGraceMs: 60_000,
    nodes: ['n1', 'n2'],
  };

  /** Run 2 executed twice: attempt 1 on w1 declared lost at T0 + 6 s, attempt 2 on w2. */
  function doubled(): { events: HistoryEvent[]; store: StoreSnapshot } {
    const { events, store } = clean();
    store.runs[1] = run(2, {
      fireTime: T0 + 1000,
      attempt: 2,
      workerId: 'id-w2',
      result: { attempt: 2 },
      attempts: [
        { attempt: 1, workerId: 'id-w1', status: 'lost', startedAt: T0 + 20, finishedAt: T0 + 6000 },
        { attempt: 2, workerId: 'id-w2', status: 'succeeded', startedAt: T0 + 6000, finishedAt: T0 + 6010 },
      ],
    });
    events.push(...executed(2, 2, 'w2'));
    return { events, store };
  }

  const stall = (process: string, start: number, ms: number, cpuMs = 50): HistoryEvent => ({
    t: 'stall',
    process,
    start,
    end: start + ms,
    cpuMs,
    waitMs: ms - cpuMs - 100,
  });

  it('explains a double execution inside a stall of its worker long enough to end the lease', () => {
    const { events, store } = doubled();
    events.push(stall('w1', T0 + 500, 4600));
    const verdict = checkChaos(events, store, stallOptions);
    expect(kinds(verdict)).toEqual([]);
    expect(verdict.ok).toBe(true);
    expect(verdict.counts).toMatchObject({ reexecutionsAfterFence: 1, reexecutionsAfterStall: 1 });
    expect(verdict.explainedByStalls).toHaveLength(1);
    expect(verdict.explainedByStalls[0]).toMatchObject({ kind: 're-execution' });
    // The stall's numbers: which process, when, how long, and how long it waited for a CPU.
    expect(verdict.explainedByStalls[0]!.message).toContain(
      `machine stall w1 at ${new Date(T0 + 500).toISOString()}, 4600 ms (run queue 4450 ms, on CPU 50 ms)`,
    );
    expect(formatVerdict(verdict)).toContain('verdict: PASS (1 re-executions and 0 missed fires');
  });

  it('fails the same double execution outside any fault or stall', () => {
    const { events, store } = doubled();
    const verdict = checkChaos(events, store, stallOptions);
    expect(kinds(verdict)).toEqual(['double-execution']);
    expect(verdict.ok).toBe(false);
  });

  it('does not take a stall that could not end the lease, or that was not the machine, or not its worker', () => {
    const cases: Array<[string, HistoryEvent[]]> = [
      ['shorter than lease − heartbeat', [stall('w1', T0 + 500, 3900)]],
      ['its own work (on a CPU most of the gap)', [stall('w1', T0 + 500, 4600, 3000)]],
      [
        'asleep in the kernel',
        [{ t: 'stall', process: 'w1', start: T0 + 500, end: T0 + 5100, cpuMs: 50, waitMs: 500 }],
      ],
      [
        'a kernel that does not say',
        [{ t: 'stall', process: 'w1', start: T0 + 500, end: T0 + 5100, cpuMs: 50, waitMs: null }],
      ],
      ['another worker', [stall('w2', T0 + 500, 4600)]],
      ['a node', [stall('n1-g0', T0 + 500, 4600)]],
      ['long before the attempt', [stall('w1', T0 - 20_000, 4600)]],
      ['several short stalls', [stall('w1', T0 + 100, 2000), stall('w1', T0 + 2200, 2000)]],
    ];
    for (const [name, extra] of cases) {
      const { events, store } = doubled();
      events.push(...extra);
      const verdict = checkChaos(events, store, stallOptions);
      expect({ name, kinds: kinds(verdict) }).toEqual({ name, kinds: ['double-execution'] });
    }
    // The evidence names the stalls that were too short.
    const { events: short, store: shortStore } = doubled();
    short.push(stall('w1', T0 + 100, 2000), stall('w1', T0 + 2200, 2000));
    expect(checkChaos(short, shortStore, stallOptions).invariants[4]!.violations[0]!.message).toContain(
      'each shorter than the 4000 ms that can end a lease: 2000 ms, 2000 ms',
    );
    // Without the heartbeat in the options no stall explains anything.
    const { events, store } = doubled();
    events.push(stall('w1', T0 + 500, 4600));
    expect(kinds(checkChaos(events, store, options))).toEqual(['double-execution']);
  });

  it('never explains two accepted outcomes of one run, even inside a stall', () => {
    const { events, store } = doubled();
    // Both attempts' successes were accepted: attempt 1's though it was fenced out.
    store.runs[1]!.attempts[0]!.status = 'succeeded';
    events.push(stall('w1', T0 + 500, 4600), stall('w2', T0 + 500, 4600));
    const verdict = checkChaos(events, store, stallOptions);
    expect(kinds(verdict)).toContain('fenced-write-accepted');
    expect(verdict.ok).toBe(false);
  });

  it('counts a stall of a process the nemesis froze as the fault, and its own work as busy', () => {
    const { events, store } = clean();
    events.push(
      { t: 'fault', kind: 'worker-stop', targets: ['worker:w1'], start: T0, end: T0 + 3000 },
      stall('w1', T0 - 50, 3100),
      stall('w2', T0, 1500, 1400),
      stall('n1-g0', T0, 1500),
      { t: 'stall', process: 'n2-g0', start: T0, end: T0 + 1500, cpuMs: 100, waitMs: 200 },
    );
    const verdict = checkChaos(events, store, stallOptions);
    expect(verdict.stalls.map((s) => `${s.process} ${s.cause}`)).toEqual([
      'w1 injected',
      'w2 busy',
      'n1-g0 machine',
      'n2-g0 blocked',
    ]);
    expect(verdict.machine.stalls).toMatchObject({
      recorded: 4,
      machine: 1,
      busy: 1,
      blocked: 1,
      injected: 1,
    });
  });

  it('explains a misfire only when no node could fire it for its whole grace', () => {
    /** Fire T0 + 2000 skipped as a misfire; the other two ran. */
    const misfired = (extra: HistoryEvent[]) => {
      const { events, store } = clean();
      store.runs = store.runs.filter((r) => r.fireTime !== T0 + 2000);
      store.skipped = [{ job: 'tick', reason: 'misfire', firstFire: T0 + 2000, lastFire: T0 + 2000 }];
      return checkChaos(
        [...events.filter((e) => e.t === 'ack' || runOf(e) !== 3), ...extra],
        store,
        stallOptions,
      );
    };
    // n1 stalled through the grace (T0 + 2 s .. T0 + 62 s); n2 killed, then stalled: able 3 s in all.
    let verdict = misfired([
      stall('n1-g0', T0 + 1000, 62_000),
      { t: 'fault', kind: 'node-kill', targets: ['node:n2-g0'], start: T0 + 1000, end: T0 + 20_000 },
      stall('n2-g1', T0 + 23_000, 40_000),
    ]);
    expect(kinds(verdict)).toEqual([]);
    expect(verdict.counts.missedFiresAfterStall).toBe(1);
    expect(verdict.explainedByStalls[0]).toMatchObject({ kind: 'missed-fire' });
    // n2 able for 10 s of the grace: it should have fired; the evidence says how long each node could not.
    verdict = misfired([stall('n1-g0', T0 + 1000, 62_000), stall('n2-g0', T0 + 12_000, 50_000)]);
    expect(kinds(verdict)).toEqual(['fire-missing']);
    expect(verdict.invariants[0]!.violations[0]!.message).toContain(
      'nodes unable n1 60000 ms (60000 stalled), n2 50000 ms (50000 stalled) of 60000 ms',
    );
    // Every node down by faults alone: not a machine stall (and no fault excuses a missed fire).
    verdict = misfired([
      { t: 'fault', kind: 'node-stop', targets: ['node:n1-g0'], start: T0, end: T0 + 70_000 },
      { t: 'fault', kind: 'node-stop', targets: ['node:n2-g0'], start: T0, end: T0 + 70_000 },
    ]);
    expect(kinds(verdict)).toEqual(['fire-missing']);
  });
});
