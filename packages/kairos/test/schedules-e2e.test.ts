import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KairosClient, type Run, type RunSummary } from '@kairos/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { tempDir } from './helpers.ts';
import { type Child, freePort, spawnKairos, spawnTs, waitFor } from './processes.ts';

// One policy family per test, through `kairos start` and a worker in its own process.
const WORKER = fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url));
const env = { KAIROS_ADMIN_TOKEN: 'e2e-admin', KAIROS_WORKER_TOKEN: 'e2e-worker', KAIROS_LOG_LEVEL: 'warn' };
const dataDir = tempDir();

let port: number;
let node: Child;
let worker: Child;
let admin: KairosClient;

async function startNode(): Promise<void> {
  node = spawnKairos(['start', '--port', String(port), '--data-dir', dataDir], env);
  await waitFor(() => admin.health(), 120_000, `kairos start\n${node.output()}`);
}

async function stopNode(): Promise<void> {
  node.process.kill('SIGTERM');
  expect(await node.exited).toBe(0);
}

async function runs(job: string, status?: Run['status']): Promise<RunSummary[]> {
  return (await admin.listRuns({ job, status, limit: 200, include: 'params' })).items.reverse();
}

beforeAll(async () => {
  port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  admin = new KairosClient({ url, token: env.KAIROS_ADMIN_TOKEN });
  await startNode();
  worker = spawnTs(WORKER, [], { ...env, KAIROS_URL: url, WORKER_NAME: 'w-schedules' });
  await waitFor(
    async () =>
      (await admin.listWorkers()).items.some((w) => w.name === 'w-schedules' && w.status === 'active'),
    20_000,
    'worker',
  );
});

afterAll(async () => {
  worker.process.kill('SIGTERM');
  await worker.exited;
  await stopNode();
});

describe('schedule policies end to end', () => {
  it('overlap skip: a slow job never runs twice at once, and the skipped fires are in the ledger', async () => {
    await admin.createJob({
      name: 'slow-tick',
      handler: 'sleep',
      params: { ms: 1500 },
      trigger: { kind: 'every', every: '1s' },
      schedule: { overlap: 'skip' },
    });
    const done = await waitFor(
      async () => {
        const ok = await runs('slow-tick', 'succeeded');
        return ok.length >= 2 ? ok : undefined;
      },
      30_000,
      'two runs of slow-tick',
    );
    await admin.pauseJob('slow-tick');
    for (let i = 1; i < done.length; i++) {
      expect(Date.parse(done[i]!.startedAt!)).toBeGreaterThanOrEqual(Date.parse(done[i - 1]!.finishedAt!));
    }
    const ledger = await admin.listSkipped('slow-tick');
    expect(ledger.items.length).toBeGreaterThan(0);
    expect(ledger.items.every((s) => s.reason === 'overlap')).toBe(true);
  });

  it('after: a child runs when its parent succeeds, with the parent result in its params', async () => {
    await admin.createJob({ name: 'parent', handler: 'echo', trigger: { kind: 'manual' } });
    await admin.createJob({
      name: 'child',
      handler: 'echo',
      params: { step: 2 },
      trigger: { kind: 'after', job: 'parent' },
    });
    const parent = await admin.triggerJob('parent', { params: { step: 1 } });
    const [child] = await waitFor(
      async () => {
        const ok = await runs('child', 'succeeded');
        return ok.length > 0 ? ok : undefined;
      },
      20_000,
      'the child run',
    );
    expect(child).toMatchObject({ cause: 'dependency' });
    expect(child!.params).toEqual({
      step: 2,
      parent: {
        job: 'parent',
        runId: parent.id,
        status: 'succeeded',
        result: { echo: { step: 1 }, attempt: 1 },
      },
    });
  });

  it('backfill: past fire times run one at a time, oldest first', async () => {
    await admin.createJob({
      name: 'report',
      handler: 'sleep',
      params: { ms: 100 },
      trigger: { kind: 'cron', cron: '0 6 * * *', timezone: 'Europe/Berlin' },
    });
    const result = await admin.backfill('report', {
      from: '2026-01-01T00:00:00Z',
      to: '2026-01-03T23:59:59Z',
    });
    expect(result.runs).toHaveLength(3);
    const done = await waitFor(
      async () => {
        const ok = await runs('report', 'succeeded');
        return ok.length === 3 ? ok : undefined;
      },
      20_000,
      'three backfill runs',
    );
    const byStart = [...done].sort((a, b) => Date.parse(a.startedAt!) - Date.parse(b.startedAt!));
    expect(byStart.map((r) => r.fireTime)).toEqual([
      '2026-01-01T05:00:00.000Z',
      '2026-01-02T05:00:00.000Z',
      '2026-01-03T05:00:00.000Z',
    ]);
    for (let i = 1; i < byStart.length; i++) {
      expect(Date.parse(byStart[i]!.startedAt!)).toBeGreaterThanOrEqual(
        Date.parse(byStart[i - 1]!.finishedAt!),
      );
    }
  });

  it('calendars: an excluded day gets no run, and its fires are one ledger range', async () => {
    const today = new Date().toISOString().slice(0, 10);
    await admin.putCalendar({ name: 'today-off', dates: [today] });
    await admin.createJob({
      name: 'off-today',
      handler: 'echo',
      trigger: { kind: 'every', every: '1s' },
      schedule: { calendars: ['today-off'] },
    });
    const [range] = await waitFor(
      async () => {
        const page = await admin.listSkipped('off-today');
        return page.items.length > 0 ? page.items : undefined;
      },
      20_000,
      'the calendar range',
    );
    expect(range).toMatchObject({ reason: 'calendar' });
    expect(range!.lastFireTime.slice(0, 10)).toBe(today);
    expect(Date.parse((await admin.getJob('off-today')).nextFireAt!)).toBeGreaterThanOrEqual(
      Date.parse(`${today}T23:59:59Z`),
    );
    expect(await runs('off-today')).toEqual([]);
  });

  it('misfire run-once: after an outage, one run for the latest missed fire', async () => {
    await admin.createJob({
      name: 'outage',
      handler: 'echo',
      trigger: { kind: 'every', every: '1m' },
      schedule: { misfire: { policy: 'run-once' } },
    });
    // Every node goes down; while they are down the job falls 3 hours behind.
    await stopNode();
    const store = new SqliteStore(join(dataDir, 'kairos.db'));
    const job = (await store.getJob('outage'))!;
    const behind = job.nextFireAt! - 3 * 3_600_000;
    await store.updateJob(job.id, job, behind, Date.now());
    await store.close();
    await startNode();
    const [run] = await waitFor(
      async () => {
        const ok = await runs('outage', 'succeeded');
        return ok.length > 0 ? ok : undefined;
      },
      20_000,
      'the run-once run',
    );
    expect(Date.parse(run!.fireTime!)).toBeGreaterThan(behind + 3 * 3_600_000 - 2 * 60_000);
    const ledger = await admin.listSkipped('outage');
    expect(ledger.items[0]).toMatchObject({
      reason: 'misfire',
      firstFireTime: new Date(behind).toISOString(),
    });
    expect(ledger.items[0]!.count).toBeGreaterThanOrEqual(178);
  });
});
