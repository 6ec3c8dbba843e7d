import type { KairosClient } from '@kairos/client';
import { beforeAll, describe, expect, it } from 'vitest';
import type { KairosNode } from '../src/node.ts';
import { FakeClock } from '../src/scheduler/clock.ts';
import { apiError, startTestNode } from './helpers.ts';

const T0 = Date.UTC(2026, 2, 28, 12);
let node: KairosNode;
let admin: KairosClient;
const clock = new FakeClock(T0);

beforeAll(async () => {
  ({ node, admin } = await startTestNode({ clock }));
});

describe('schedule policies through the API', () => {
  it('keeps the policies and shows every default', async () => {
    const job = await admin.createJob({
      name: 'policies',
      handler: 'h',
      trigger: { kind: 'cron', cron: '30 2 * * *', timezone: 'Europe/Berlin', dst: 'literal' },
      schedule: {
        misfire: { policy: 'catch-up', maxCatchUp: 3 },
        overlap: 'skip',
        jitter: '10s',
        maxRuns: 5,
      },
    });
    expect(job.trigger).toEqual({
      kind: 'cron',
      cron: '30 2 * * *',
      timezone: 'Europe/Berlin',
      dst: 'literal',
    });
    expect(job.schedule).toEqual({
      misfire: { policy: 'catch-up', maxCatchUp: 3, catchUpWindow: 86_400_000 },
      overlap: 'skip',
      startAt: null,
      endAt: null,
      jitter: 10_000,
      maxRuns: 5,
      calendars: [],
    });
    expect(job.runsFired).toBe(0);
    const plain = await admin.createJob({ name: 'plain', handler: 'h', trigger: { kind: 'manual' } });
    expect(plain.schedule).toMatchObject({ misfire: { policy: 'skip' }, overlap: 'allow', maxRuns: null });
    const patched = await admin.updateJob('plain', { schedule: { overlap: 'cancel-previous' } });
    expect(patched.schedule.overlap).toBe('cancel-previous');
  });

  it.each([
    [
      'end before start',
      { startAt: '2030-01-02T00:00:00Z', endAt: '2030-01-01T00:00:00Z' },
      'INVALID_SCHEDULE',
    ],
    ['bad instant', { startAt: 'tomorrow' }, 'INVALID_SCHEDULE'],
    ['catch-up cap out of range', { misfire: { policy: 'catch-up', maxCatchUp: 0 } }, 'INVALID_SCHEDULE'],
    ['catch-up field on skip', { misfire: { policy: 'skip', maxCatchUp: 3 } }, 'INVALID_SCHEDULE'],
    ['unknown policy', { overlap: 'queue' }, 'VALIDATION_FAILED'],
    ['unknown field', { colour: 'blue' }, 'VALIDATION_FAILED'],
    ['bad jitter', { jitter: 'soon' }, 'INVALID_DURATION'],
  ])('rejects %s with a stable code and stores nothing', async (_, schedule, code) => {
    const error = await apiError(
      admin.createJob({ name: 'bad-schedule', handler: 'h', trigger: { kind: 'manual' }, schedule } as never),
    );
    expect(error).toMatchObject({ status: 400, code });
    expect((await apiError(admin.getJob('bad-schedule'))).code).toBe('JOB_NOT_FOUND');
  });

  it('rejects an unknown DST rule', async () => {
    const error = await apiError(
      admin.createJob({
        name: 'bad-dst',
        handler: 'h',
        trigger: { kind: 'cron', cron: '* * * * *', dst: 'never' },
      } as never),
    );
    expect(error).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
  });
});

describe('previews', () => {
  it('previews a saved job with DST notes and jitter', async () => {
    await admin.createJob({
      name: 'berlin',
      handler: 'h',
      trigger: { kind: 'cron', cron: '30 2 * * *', timezone: 'Europe/Berlin' },
      schedule: { jitter: '1m' },
    });
    const preview = await admin.previewJob('berlin', 3);
    expect(preview.fires.map((f) => [f.fireTime, f.note])).toEqual([
      ['2026-03-29T01:00:00.000Z', 'dst-moved'],
      ['2026-03-30T00:30:00.000Z', undefined],
      ['2026-03-31T00:30:00.000Z', undefined],
    ]);
    for (const fire of preview.fires) {
      const delay = Date.parse(fire.runAt) - Date.parse(fire.fireTime);
      expect(delay >= 0 && delay <= 60_000).toBe(true);
    }
  });

  it('previews a spec that is not saved, with its window', async () => {
    const preview = await admin.preview({
      trigger: { kind: 'every', every: '1h' },
      schedule: { endAt: '2026-03-28T14:30:00Z' },
      count: 10,
    });
    expect(preview.fires.map((f) => f.fireTime)).toEqual([
      '2026-03-28T13:00:00.000Z',
      '2026-03-28T14:00:00.000Z',
    ]);
    expect(preview.skipped).toEqual([{ fireTime: '2026-03-28T15:00:00.000Z', reason: 'outside-window' }]);
    expect((await apiError(admin.preview({ trigger: { kind: 'cron', cron: 'nope' } }))).code).toBe(
      'INVALID_CRON',
    );
    expect((await apiError(admin.preview({ trigger: { kind: 'manual' }, from: 'yesterday' }))).code).toBe(
      'VALIDATION_FAILED',
    );
  });
});

describe('the ledger of skipped fires', () => {
  it('records the fires missed while paused, pages them, and counts them in the metrics', async () => {
    await admin.createJob({ name: 'ticker', handler: 'h', trigger: { kind: 'every', every: '10s' } });
    for (let round = 0; round < 3; round++) {
      await admin.pauseJob('ticker');
      await clock.advance(60_000);
      await admin.resumeJob('ticker');
    }
    const first = await admin.listSkipped('ticker', { limit: 2 });
    expect(first.items).toHaveLength(2);
    expect(first.items[0]).toMatchObject({ jobName: 'ticker', reason: 'paused', count: 6 });
    const rest = await admin.listSkipped('ticker', { limit: 2, cursor: first.nextCursor! });
    expect(rest.items).toHaveLength(1);
    expect(rest.nextCursor).toBeNull();
    expect((await apiError(admin.listSkipped('ticker', { cursor: 'x' }))).code).toBe('INVALID_CURSOR');
    expect((await apiError(admin.listSkipped('nope'))).code).toBe('JOB_NOT_FOUND');
    const metrics = await fetch(`${node.url}/metrics`).then((r) => r.text());
    expect(metrics).toContain('kairos_skipped_fires_total{job="ticker",reason="paused"} 18');
  });
});

describe('calendars through the API', () => {
  it('creates, reads, replaces, lists and deletes calendars with stable codes', async () => {
    const created = await admin.createCalendar({
      name: 'holidays',
      timezone: 'Europe/Berlin',
      dates: ['2026-12-25'],
      periods: [{ from: '2026-12-28', to: '2026-12-31' }],
    });
    expect(created).toMatchObject({ name: 'holidays', weekdays: [], cron: null, timezone: 'Europe/Berlin' });
    expect((await apiError(admin.createCalendar({ name: 'holidays' }))).code).toBe('CALENDAR_NAME_TAKEN');
    expect((await apiError(admin.createCalendar({ name: 'bad', dates: ['2026-13-01'] }))).code).toBe(
      'VALIDATION_FAILED',
    );
    expect((await apiError(admin.createCalendar({ name: 'bad', weekdays: [9] }))).code).toBe(
      'VALIDATION_FAILED',
    );
    expect((await apiError(admin.createCalendar({ name: 'bad', cron: 'x' }))).code).toBe('INVALID_CRON');
    const replaced = await admin.putCalendar({
      name: 'holidays',
      timezone: 'Europe/Berlin',
      weekdays: [0, 6],
    });
    expect(replaced).toMatchObject({ dates: [], weekdays: [0, 6] });
    expect((await admin.listCalendars()).items.map((c) => c.name)).toEqual(['holidays']);
    expect((await apiError(admin.getCalendar('nope'))).code).toBe('CALENDAR_NOT_FOUND');

    const missing = await apiError(
      admin.createJob({
        name: 'cal-job',
        handler: 'h',
        trigger: { kind: 'every', every: '1h' },
        schedule: { calendars: ['nope'] },
      }),
    );
    expect(missing).toMatchObject({ status: 404, code: 'CALENDAR_NOT_FOUND' });
    await admin.createJob({
      name: 'cal-job',
      handler: 'h',
      trigger: { kind: 'cron', cron: '0 12 * * *', timezone: 'Europe/Berlin' },
      schedule: { calendars: ['holidays'] },
    });
    // The clock is past noon on Saturday 28 March 2026: Sunday's fire is excluded, Monday's is the first.
    const preview = await admin.previewJob('cal-job', 2);
    expect(preview.fires.map((f) => f.fireTime)).toEqual([
      '2026-03-30T10:00:00.000Z',
      '2026-03-31T10:00:00.000Z',
    ]);
    expect(preview.skipped).toEqual([{ fireTime: '2026-03-29T10:00:00.000Z', reason: 'calendar' }]);
    expect(await apiError(admin.deleteCalendar('holidays'))).toMatchObject({
      status: 409,
      code: 'CALENDAR_IN_USE',
    });
    await admin.deleteJob('cal-job');
    await admin.deleteCalendar('holidays');
    expect((await apiError(admin.deleteCalendar('holidays'))).code).toBe('CALENDAR_NOT_FOUND');
  });
});

describe('dependencies and backfill through the API', () => {
  it('rejects a dependency cycle with DEPENDENCY_CYCLE', async () => {
    await admin.createJob({ name: 'dep-a', handler: 'h', trigger: { kind: 'after', job: 'dep-b' } });
    const error = await apiError(
      admin.createJob({
        name: 'dep-b',
        handler: 'h',
        trigger: { kind: 'after', job: 'dep-a', on: 'always' },
      }),
    );
    expect(error).toMatchObject({ status: 400, code: 'DEPENDENCY_CYCLE' });
    expect(
      (
        await apiError(
          admin.createJob({
            name: 'dep-c',
            handler: 'h',
            trigger: { kind: 'after', job: 'x', on: 'never' },
          } as never),
        )
      ).code,
    ).toBe('VALIDATION_FAILED');
  });

  it('backfills a range with a cap and answers where to continue', async () => {
    await admin.createJob({ name: 'hourly', handler: 'h', trigger: { kind: 'every', every: '1h' } });
    const result = await admin.backfill('hourly', {
      from: '2026-03-28T00:00:00Z',
      to: '2026-03-28T11:59:59Z',
      max: 5,
    });
    expect(result.runs.map((r) => r.fireTime)).toEqual(
      [0, 1, 2, 3, 4].map((h) => `2026-03-28T0${h}:00:00.000Z`),
    );
    expect(result).toMatchObject({ existing: [], nextFrom: '2026-03-28T05:00:00.000Z' });
    const again = await admin.backfill('hourly', {
      from: '2026-03-28T00:00:00Z',
      to: '2026-03-28T01:00:00Z',
    });
    expect(again).toMatchObject({
      runs: [],
      existing: ['2026-03-28T00:00:00.000Z', '2026-03-28T01:00:00.000Z'],
    });
    const runs = await admin.listRuns({ job: 'hourly' });
    expect(runs.items.every((r) => r.cause === 'backfill')).toBe(true);
    expect(
      (await apiError(admin.backfill('hourly', { from: '2026-03-28T00:00:00Z', to: '2030-01-01T00:00:00Z' })))
        .code,
    ).toBe('VALIDATION_FAILED');
    expect((await apiError(admin.backfill('hourly', { from: 'x', to: '2026-03-28T00:00:00Z' }))).code).toBe(
      'VALIDATION_FAILED',
    );
    expect(
      (await apiError(admin.backfill('nope', { from: '2026-03-28T00:00:00Z', to: '2026-03-28T01:00:00Z' })))
        .code,
    ).toBe('JOB_NOT_FOUND');
  });
});
