import { describe, expect, it } from 'vitest';
import {
  type AlertEvent,
  type AlertJobFacts,
  type AlertSignal,
  type AlertSnapshot,
  conditionSignals,
  decideAlert,
  eventSignals,
} from './alert-engine.ts';
import { type AlertRuleRecord, compileAlertRule } from './alert-rule.ts';

const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

let ids = 0;
function rule(
  spec: Partial<Parameters<typeof compileAlertRule>[0]> & { kind: AlertRuleRecord['kind'] },
): AlertRuleRecord {
  return {
    ...compileAlertRule({ name: `r${++ids}`, channels: ['c'], ...spec }),
    namespace: 'default',
    id: ids,
    createdAt: T0,
    updatedAt: T0,
  };
}

const trigger = (fromEvent = true): AlertSignal => ({
  ruleId: 1,
  subject: 'job:a',
  type: 'trigger',
  fromEvent,
  title: 't',
  text: 'x',
  details: {},
});

describe('decideAlert: one alert per rule and subject per window', () => {
  it('opens, counts inside the window, reminds after it, resolves once', () => {
    const first = decideAlert(undefined, trigger(), HOUR, T0)!;
    expect(first).toEqual({
      notify: 'firing',
      state: { ruleId: 1, subject: 'job:a', status: 'firing', firedAt: T0, notifiedAt: T0, count: 1 },
    });
    const again = decideAlert(first.state, trigger(), HOUR, T0 + HOUR - 1)!;
    expect(again).toMatchObject({ notify: null, state: { count: 2, notifiedAt: T0 } });
    const reminder = decideAlert(again.state, trigger(), HOUR, T0 + HOUR)!;
    expect(reminder).toMatchObject({
      notify: 'firing',
      state: { count: 3, notifiedAt: T0 + HOUR, firedAt: T0 },
    });
    const resolved = decideAlert(reminder.state, { ...trigger(), type: 'recover' }, HOUR, T0 + 2 * HOUR)!;
    expect(resolved).toMatchObject({ notify: 'resolved', state: { status: 'resolved' } });
    expect(decideAlert(resolved.state, { ...trigger(), type: 'recover' }, HOUR, T0 + 3 * HOUR)).toBeNull();
    expect(decideAlert(undefined, { ...trigger(), type: 'recover' }, HOUR, T0)).toBeNull();
    // After a resolve the next trigger opens a new alert at once, whatever the window.
    expect(decideAlert(resolved.state, trigger(), HOUR, T0 + 2 * HOUR + 1)).toMatchObject({
      notify: 'firing',
      state: { firedAt: T0 + 2 * HOUR + 1, count: 1 },
    });
  });

  it('a condition that still holds writes nothing inside the window', () => {
    const open = decideAlert(undefined, trigger(false), HOUR, T0)!;
    expect(decideAlert(open.state, trigger(false), HOUR, T0 + 1000)).toBeNull();
    expect(decideAlert(open.state, trigger(false), HOUR, T0 + HOUR)).toMatchObject({ notify: 'firing' });
  });

  it('a window of 0 notifies every occurrence', () => {
    const open = decideAlert(undefined, trigger(), 0, T0)!;
    expect(decideAlert(open.state, trigger(), 0, T0)).toMatchObject({ notify: 'firing' });
  });
});

describe('eventSignals', () => {
  const ended = (status: 'succeeded' | 'failed' | 'timed_out', extra: Partial<AlertEvent> = {}): AlertEvent =>
    ({
      id: 1,
      type: 'run-ended',
      at: T0,
      namespace: 'default',
      job: 'a',
      group: 'g',
      runId: 7,
      status,
      error: 'boom',
      ...extra,
    }) as AlertEvent;

  it('matches scope: a job, a group, everything', () => {
    const rules = [
      rule({ kind: 'run-failed', job: 'a' }),
      rule({ kind: 'run-failed', job: 'b' }),
      rule({ kind: 'run-failed', group: 'g' }),
      rule({ kind: 'run-failed', group: 'h' }),
      rule({ kind: 'run-failed' }),
      rule({ kind: 'run-failed', enabled: false }),
    ];
    expect(eventSignals(rules, ended('failed')).map((s) => s.ruleId)).toEqual([
      rules[0]!.id,
      rules[2]!.id,
      rules[4]!.id,
    ]);
  });

  it('failed and timed out are separate kinds; a success clears both', () => {
    const failed = rule({ kind: 'run-failed' });
    const timedOut = rule({ kind: 'run-timed-out' });
    expect(eventSignals([failed, timedOut], ended('timed_out')).map((s) => [s.ruleId, s.type])).toEqual([
      [timedOut.id, 'trigger'],
    ]);
    expect(eventSignals([failed, timedOut], ended('succeeded')).map((s) => s.type)).toEqual([
      'recover',
      'recover',
    ]);
  });

  it('consecutive failures trigger from the count on', () => {
    const streak = rule({ kind: 'consecutive-failures', count: 3 });
    expect(eventSignals([streak], ended('failed', { failuresInRow: 2 } as Partial<AlertEvent>))).toEqual([]);
    expect(
      eventSignals([streak], ended('failed', { failuresInRow: 3 } as Partial<AlertEvent>)),
    ).toMatchObject([{ type: 'trigger', details: { failuresInRow: 3 } }]);
  });

  it('skipped fires alert for the reasons a rule names', () => {
    const misfires = rule({ kind: 'fire-skipped', reasons: ['misfire'] });
    const all = rule({ kind: 'fire-skipped' });
    const skipped: AlertEvent = {
      id: 2,
      type: 'fire-skipped',
      at: T0,
      namespace: 'default',
      job: 'a',
      group: 'g',
      reason: 'overlap',
      count: 3,
      firstFire: T0 - 3000,
      lastFire: T0 - 1000,
    };
    expect(eventSignals([misfires, all], skipped).map((s) => s.ruleId)).toEqual([all.id]);
    expect(eventSignals([misfires, all], skipped)[0]!.title).toBe('Job a: 3 fires did not run (overlap)');
    // An overload sheds fires of every job at once: only a rule that names the reason alerts.
    const overloads = rule({ kind: 'fire-skipped', reasons: ['overloaded'] });
    const shed: AlertEvent = { ...skipped, reason: 'overloaded' };
    expect(eventSignals([misfires, all, overloads], shed).map((s) => s.ruleId)).toEqual([overloads.id]);
  });

  it('a lost worker, by group; back again clears it', () => {
    const etl = rule({ kind: 'worker-lost', group: 'etl' });
    const lost: AlertEvent = {
      id: 3,
      type: 'worker-lost',
      at: T0,
      namespace: 'default',
      workerId: 'w1',
      worker: 'box',
      group: 'etl',
    };
    expect(eventSignals([etl], lost)).toMatchObject([{ subject: 'worker:w1', type: 'trigger' }]);
    expect(eventSignals([etl], { ...lost, group: 'web' })).toEqual([]);
    expect(eventSignals([etl], { ...lost, type: 'worker-back' })).toMatchObject([{ type: 'recover' }]);
  });

  it('a rule sees only the events of its own namespace', () => {
    const every = rule({ kind: 'run-failed' });
    const byJob = rule({ kind: 'run-failed', job: 'a' });
    const lostRule = rule({ kind: 'worker-lost' });
    const skippedRule = rule({ kind: 'fire-skipped' });
    expect(eventSignals([every, byJob], ended('failed', { namespace: 'team-b' }))).toEqual([]);
    expect(eventSignals([every, byJob], ended('failed'))).toHaveLength(2);
    const lost: AlertEvent = {
      id: 3,
      type: 'worker-lost',
      at: T0,
      namespace: 'team-b',
      workerId: 'w1',
      worker: 'box',
      group: 'g',
    };
    expect(eventSignals([lostRule], lost)).toEqual([]);
    const skipped: AlertEvent = {
      id: 2,
      type: 'fire-skipped',
      at: T0,
      namespace: 'team-b',
      job: 'a',
      group: 'g',
      reason: 'overlap',
      count: 1,
      firstFire: T0,
      lastFire: T0,
    };
    expect(eventSignals([skippedRule], skipped)).toEqual([]);
  });
});

describe('conditionSignals', () => {
  const job = (facts: Partial<AlertJobFacts> = {}): AlertJobFacts => ({
    namespace: 'default',
    name: 'a',
    group: 'g',
    handler: 'h',
    paused: false,
    createdAt: T0,
    lastSuccessAt: null,
    oldestQueuedAt: null,
    queued: 0,
    lastFire: null,
    ...facts,
  });
  /** A lease that outlasts every instant these cases judge at. */
  const LIVE = T0 + 3_600_000;
  const snapshot = (jobs: AlertJobFacts[], more: Partial<AlertSnapshot> = {}): AlertSnapshot => ({
    jobs,
    workers: [],
    nodes: [],
    ...more,
  });

  it("a job rule judges only its namespace's jobs, served only by its namespace's workers", () => {
    const queued = rule({ kind: 'run-queued', threshold: '1m' });
    const theirs = job({ namespace: 'team-b', oldestQueuedAt: T0, queued: 2 });
    expect(conditionSignals(queued, snapshot([theirs]), [], T0 + 60_000)).toEqual([]);
    const stuck = job({ oldestQueuedAt: T0, queued: 2 });
    const otherNamespace = [
      { namespace: 'team-b', group: 'g', handlers: ['h'], status: 'active', leaseExpiresAt: LIVE },
    ];
    expect(
      conditionSignals(queued, snapshot([stuck], { workers: otherNamespace }), [], T0 + 60_000),
    ).toMatchObject([{ details: { noLiveWorker: 'No live worker in group g' } }]);
  });

  it('run-queued: a job that requests more resources than any live worker has is unroutable, and says what is missing', () => {
    const unroutable = rule({ kind: 'run-queued', threshold: '1m', unroutableOnly: true });
    const big = job({ oldestQueuedAt: T0, queued: 1, resources: { cpu: 8000, gpu: 1 } });
    const small = [
      {
        namespace: 'default',
        group: 'g',
        handlers: ['h'],
        status: 'active',
        leaseExpiresAt: LIVE,
        resources: { cpu: 4000, gpu: 1 },
      },
    ];
    expect(conditionSignals(unroutable, snapshot([big], { workers: small }), [], T0 + 60_000)).toMatchObject([
      {
        details: {
          noLiveWorker:
            'No live worker in group g declaring handler h has cpu 8, gpu 1 in all (short of the largest: cpu 4)',
        },
      },
    ]);
    const large = [{ ...small[0]!, resources: { cpu: 8000, gpu: 2 } }];
    expect(conditionSignals(unroutable, snapshot([big], { workers: large }), [], T0 + 60_000)).toEqual([]);
  });

  it("run-queued judges the oldest queued run: a workflow step's own group, handler and request", () => {
    const unroutable = rule({ kind: 'run-queued', threshold: '1m', unroutableOnly: true });
    const worker = {
      namespace: 'default',
      group: 'ml',
      handlers: ['train'],
      status: 'active',
      leaseExpiresAt: LIVE,
    };
    const workers = [{ ...worker, resources: { cpu: 8000 } }];
    // The workflow's job requests nothing and names no step's group; its step run asks for a GPU.
    const step = job({
      oldestQueuedAt: T0,
      queued: 1,
      oldestQueued: { group: 'ml', handler: 'train', resources: { gpu: 1 } },
    });
    expect(conditionSignals(unroutable, snapshot([step], { workers }), [], T0 + 60_000)).toMatchObject([
      {
        details: {
          noLiveWorker:
            'No live worker in group ml declaring handler train has gpu 1 in all (short of the largest: gpu 1)',
        },
      },
    ]);
    const gpu = [{ ...worker, resources: { cpu: 8000, gpu: 1 } }];
    expect(conditionSignals(unroutable, snapshot([step], { workers: gpu }), [], T0 + 60_000)).toEqual([]);
    // A worker whose lease ended is not live, whatever its status says.
    const expired = [{ ...gpu[0]!, leaseExpiresAt: T0 + 60_000 }];
    expect(
      conditionSignals(unroutable, snapshot([step], { workers: expired }), [], T0 + 60_000),
    ).toMatchObject([{ details: { noLiveWorker: 'No live worker in group ml' } }]);
  });

  it('run-queued: over the threshold; says why no live worker can take it; unroutableOnly leaves served jobs out', () => {
    const queued = rule({ kind: 'run-queued', threshold: '1m' });
    const stuck = job({ oldestQueuedAt: T0, queued: 2 });
    expect(conditionSignals(queued, snapshot([stuck]), [], T0 + 59_999)).toEqual([]);
    expect(conditionSignals(queued, snapshot([stuck]), [], T0 + 60_000)).toMatchObject([
      { type: 'trigger', details: { noLiveWorker: 'No live worker in group g', queued: 2 } },
    ]);
    const others = [
      { namespace: 'default', group: 'g', handlers: ['other'], status: 'active', leaseExpiresAt: LIVE },
    ];
    expect(conditionSignals(queued, snapshot([stuck], { workers: others }), [], T0 + 60_000)).toMatchObject([
      { details: { noLiveWorker: 'No live worker in group g declares handler h' } },
    ]);
    const served = [
      { namespace: 'default', group: 'g', handlers: ['h'], status: 'active', leaseExpiresAt: LIVE },
    ];
    expect(conditionSignals(queued, snapshot([stuck], { workers: served }), [], T0 + 60_000)).toMatchObject([
      { details: { noLiveWorker: null } },
    ]);
    const unroutable = rule({ kind: 'run-queued', threshold: '1m', unroutableOnly: true });
    expect(conditionSignals(unroutable, snapshot([stuck], { workers: served }), [], T0 + 60_000)).toEqual([]);
    const lostWorker = [
      { namespace: 'default', group: 'g', handlers: ['h'], status: 'lost', leaseExpiresAt: LIVE },
    ];
    expect(
      conditionSignals(unroutable, snapshot([stuck], { workers: lostWorker }), [], T0 + 60_000),
    ).toHaveLength(1);
  });

  it('recovers firing subjects whose condition no longer holds', () => {
    const queued = rule({ kind: 'run-queued', threshold: '1m' });
    expect(conditionSignals(queued, snapshot([job()]), ['job:a', 'job:gone'], T0)).toMatchObject([
      { subject: 'job:a', type: 'recover' },
      { subject: 'job:gone', type: 'recover' },
    ]);
  });

  it('no-success: since the last success, or the creation; paused jobs are left alone', () => {
    const daily = rule({ kind: 'no-success', threshold: '1d' });
    expect(conditionSignals(daily, snapshot([job({ lastSuccessAt: T0 })]), [], T0 + 24 * HOUR - 1)).toEqual(
      [],
    );
    expect(conditionSignals(daily, snapshot([job({ lastSuccessAt: T0 })]), [], T0 + 24 * HOUR)).toHaveLength(
      1,
    );
    expect(conditionSignals(daily, snapshot([job()]), [], T0 + 24 * HOUR)).toMatchObject([
      { text: expect.stringContaining('has not succeeded since it was created') },
    ]);
    expect(conditionSignals(daily, snapshot([job({ paused: true })]), [], T0 + 48 * HOUR)).toEqual([]);
  });

  it('fire-late: the latest fire started, or still waiting, past the threshold', () => {
    const late = rule({ kind: 'fire-late', threshold: '30s' });
    const onTime = job({ lastFire: { fireTime: T0, startedAt: T0 + 1000 } });
    const slow = job({ lastFire: { fireTime: T0, startedAt: T0 + 45_000 } });
    const waiting = job({ lastFire: { fireTime: T0, startedAt: null } });
    expect(conditionSignals(late, snapshot([onTime]), [], T0 + HOUR)).toEqual([]);
    expect(conditionSignals(late, snapshot([slow]), [], T0 + HOUR)).toMatchObject([
      { details: { latenessMs: 45_000 } },
    ]);
    expect(conditionSignals(late, snapshot([waiting]), [], T0 + 29_999)).toEqual([]);
    expect(conditionSignals(late, snapshot([waiting]), [], T0 + 30_000)).toHaveLength(1);
  });

  it('node-lost: an expired node without a live namesake; recovers only when the node is alive again', () => {
    const nodes = rule({ kind: 'node-lost' });
    const gone = { name: 'n1', expiresAt: T0 };
    expect(conditionSignals(nodes, snapshot([], { nodes: [gone] }), [], T0 + 1)).toMatchObject([
      { subject: 'node:n1', type: 'trigger' },
    ]);
    // Restarted: a live instance with the same id.
    expect(
      conditionSignals(
        nodes,
        snapshot([], { nodes: [gone, { name: 'n1', expiresAt: T0 + 5000 }] }),
        ['node:n1'],
        T0 + 1,
      ),
    ).toMatchObject([{ subject: 'node:n1', type: 'recover' }]);
    // Its row simply gone: still firing, no false "resolved".
    expect(conditionSignals(nodes, snapshot([]), ['node:n1'], T0 + 1)).toEqual([]);
  });
});

describe('compileAlertRule', () => {
  it('refuses fields the kind does not take, and missing ones', () => {
    const code = (spec: Parameters<typeof compileAlertRule>[0]) => {
      try {
        compileAlertRule(spec);
        return 'ok';
      } catch (error) {
        return (error as { code: string }).code;
      }
    };
    const base = { name: 'r', channels: ['c'] };
    expect(code({ ...base, kind: 'no-success' })).toBe('INVALID_ALERT_RULE');
    expect(code({ ...base, kind: 'run-failed', threshold: '1m' })).toBe('INVALID_ALERT_RULE');
    expect(code({ ...base, kind: 'consecutive-failures' })).toBe('INVALID_ALERT_RULE');
    expect(code({ ...base, kind: 'run-failed', reasons: ['misfire'] })).toBe('INVALID_ALERT_RULE');
    expect(code({ ...base, kind: 'node-lost', group: 'g' })).toBe('INVALID_ALERT_RULE');
    expect(code({ ...base, kind: 'worker-lost', job: 'j' })).toBe('INVALID_ALERT_RULE');
    expect(code({ ...base, kind: 'run-queued', threshold: '10ms' })).toBe('INVALID_DURATION');
    expect(code({ ...base, kind: 'run-queued', threshold: '5m', unroutableOnly: true })).toBe('ok');
    expect(compileAlertRule({ ...base, kind: 'run-failed' }).windowMs).toBe(HOUR);
  });
});
