import type { KairosClient } from '@kairos/client';
import { beforeAll, describe, expect, it } from 'vitest';
import { apiError, startTestNode } from './helpers.ts';

let admin: KairosClient;

beforeAll(async () => {
  ({ admin } = await startTestNode());
  await admin.createJob({ name: 'later', handler: 'h', trigger: { kind: 'manual' }, params: { n: 0 } });
});

describe('triggering a run for later, and idempotency keys with a time to live', () => {
  it('runAt and delay set when the run becomes available; it stays queued until then', async () => {
    const runAt = new Date(Date.now() + 3_600_000).toISOString();
    const atRun = await admin.triggerJob('later', { runAt });
    expect(atRun).toMatchObject({ status: 'queued', availableAt: runAt });
    const before = Date.now();
    const delayed = await admin.triggerJob('later', { delay: '10m' });
    const after = Date.now();
    const available = Date.parse(delayed.availableAt);
    expect(available).toBeGreaterThanOrEqual(before + 600_000);
    expect(available).toBeLessThanOrEqual(after + 600_000);
    // An instant already past runs at once.
    const past = await admin.triggerJob('later', { runAt: '2020-01-01T00:00:00Z' });
    expect(Date.parse(past.availableAt)).toBeGreaterThanOrEqual(before);
    // The batch takes them too.
    const { runIds } = await admin.triggerJobBatch('later', [{ delay: 60_000 }, { runAt }]);
    expect((await admin.getRun(runIds[1]!)).availableAt).toBe(runAt);
  });

  it('refuses timing it cannot honour, with the field named, and queues nothing', async () => {
    const before = (await admin.listRuns({ job: 'later', limit: 100 })).items.length;
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ runAt: '2030-02-30T00:00:00Z' }, 'VALIDATION_FAILED', 'runAt'],
      [{ runAt: '2030-01-01T09:00:00' }, 'VALIDATION_FAILED', 'runAt'],
      [{ runAt: 'tomorrow' }, 'VALIDATION_FAILED', 'runAt'],
      [{ runAt: '2030-01-01T24:00:00Z' }, 'VALIDATION_FAILED', 'runAt'],
      [{ runAt: new Date().toISOString(), delay: '1s' }, 'VALIDATION_FAILED', 'runAt'],
      [{ delay: '-5s' }, 'INVALID_DURATION', 'delay'],
      [{ delay: '400d' }, 'INVALID_DURATION', 'delay'],
      [{ idempotencyKey: 'k', idempotencyTtl: '0s' }, 'INVALID_DURATION', 'idempotencyTtl'],
      [{ idempotencyKey: 'k', idempotencyTtl: '90d' }, 'INVALID_DURATION', 'idempotencyTtl'],
      [{ idempotencyTtl: '1h' }, 'VALIDATION_FAILED', 'idempotencyTtl'],
    ];
    for (const [request, code, field] of cases) {
      const error = await apiError(admin.triggerJob('later', request));
      expect(error, JSON.stringify(request)).toMatchObject({ status: 400, code, details: { field } });
    }
    const batch = await apiError(admin.triggerJobBatch('later', [{}, { delay: 'soon' }]));
    expect(batch).toMatchObject({ code: 'INVALID_DURATION', details: { field: 'runs[1].delay' } });
    expect((await admin.listRuns({ job: 'later', limit: 100 })).items.length).toBe(before);
  });

  it('a live key with the same params answers its run; with other params 409 IDEMPOTENCY_CONFLICT', async () => {
    const first = await admin.triggerJob('later', { params: { n: 1 }, idempotencyKey: 'order-1' });
    expect((await admin.triggerJob('later', { params: { n: 1 }, idempotencyKey: 'order-1' })).id).toBe(
      first.id,
    );
    const conflict = await apiError(
      admin.triggerJob('later', { params: { n: 2 }, idempotencyKey: 'order-1' }),
    );
    expect(conflict).toMatchObject({
      status: 409,
      code: 'IDEMPOTENCY_CONFLICT',
      details: { runId: first.id, idempotencyKey: 'order-1' },
    });
    const batch = await apiError(
      admin.triggerJobBatch('later', [{ params: { n: 9 } }, { params: { n: 2 }, idempotencyKey: 'order-1' }]),
    );
    expect(batch).toMatchObject({ status: 409, code: 'IDEMPOTENCY_CONFLICT' });
  });

  it('a key given a short time to live may be used again once it expired', async () => {
    const first = await admin.triggerJob('later', { idempotencyKey: 'short', idempotencyTtl: '1s' });
    expect((await admin.triggerJob('later', { idempotencyKey: 'short' })).id).toBe(first.id);
    // Until the key expires a trigger with other params is refused (and writes nothing); then it makes a new run.
    const deadline = Date.now() + 30_000;
    let second: Awaited<ReturnType<typeof admin.triggerJob>> | undefined;
    while (!second) {
      second = await admin
        .triggerJob('later', { params: { n: 5 }, idempotencyKey: 'short' })
        .catch((e: unknown) => {
          if ((e as { code?: string }).code !== 'IDEMPOTENCY_CONFLICT' || Date.now() > deadline) throw e;
          return undefined;
        });
      if (!second) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(second.id).not.toBe(first.id);
    expect(second.params).toEqual({ n: 5 });
  });
});
