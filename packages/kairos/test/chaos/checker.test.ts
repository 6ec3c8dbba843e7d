import { describe, expect, it } from 'vitest';
import { checkChaos, type StoreRun, type StoreSnapshot } from './checker.ts';
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
