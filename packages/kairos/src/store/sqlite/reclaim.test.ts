import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../../test/helpers.ts';
import { compileJob } from '../../core/job.ts';
import { SqliteStore } from './sqlite-store.ts';

const dir = tempDir();
let n = 0;
const stores: SqliteStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

/** A store with 2,000 finished runs with 4 KiB params, all deleted: most of its pages are free. */
async function storeWithFreedRuns(path: string): Promise<SqliteStore> {
  const store = new SqliteStore(path);
  stores.push(store);
  await store.migrate();
  const job = await store.createJob(
    compileJob({ name: 'j', handler: 'h', trigger: { kind: 'manual' } }),
    null,
    0,
  );
  await store.registerWorker(
    {
      id: 'w',
      name: 'w',
      group: 'default',
      handlers: ['h'],
      capacity: 10_000,
      labels: {},
      version: 't',
      host: 'h',
    },
    60_000,
    0,
  );
  const params = { blob: 'x'.repeat(4096) };
  for (let i = 0; i < 2; i++) {
    await store.enqueueRuns(
      job.id,
      Array.from({ length: 1000 }, () => ({ params, priority: 0 })),
      0,
    );
    const claimed = await store.claimRuns('w', 1000, 1);
    await store.finishAttempts(
      claimed.map((c) => ({
        runId: c.runId,
        attempt: c.attempt,
        group: 'default',
        attemptStatus: 'succeeded' as const,
        error: null,
        result: null,
        run: { status: 'succeeded' as const },
      })),
      2,
    );
    expect(await store.deleteFinishedRuns(claimed.map((c) => c.runId))).toBe(1000);
  }
  return store;
}

function pages(path: string): { total: number; free: number; mode: number } {
  const db = new Database(path, { readonly: true });
  try {
    return {
      total: db.pragma('page_count', { simple: true }) as number,
      free: db.pragma('freelist_count', { simple: true }) as number,
      mode: db.pragma('auto_vacuum', { simple: true }) as number,
    };
  } finally {
    db.close();
  }
}

describe('SQLite: giving space back after retention', () => {
  it('a new database is incremental: the pages deletes freed go back to the file system', async () => {
    const path = join(dir, `reclaim-${n++}.db`);
    const store = await storeWithFreedRuns(path);
    const before = pages(path);
    expect(before.mode).toBe(2);
    expect((await store.spaceUpkeep()).ok).toBe(true);
    expect(before.free).toBeGreaterThan(before.total / 2);
    // Under the share asked for: nothing moves.
    expect(await store.reclaimSpace(4096, 0.99)).toBe(0);
    let given = 0;
    for (let step = await store.reclaimSpace(1000, 0.25); step > 0; step = await store.reclaimSpace(1000, 0))
      given += step;
    expect(given).toBe(before.free);
    const after = pages(path);
    expect(after.free).toBe(0);
    expect(after.total).toBeLessThanOrEqual(before.total - before.free);
    await store.close();
    stores.length = 0;
    // Closed (the WAL checkpointed into the file): the file is the smaller size.
    expect(statSync(path).size).toBeLessThanOrEqual(after.total * 4096);
  });

  it('a database made before keeps its mode: nothing is given back, nothing breaks', async () => {
    const path = join(dir, `reclaim-${n++}.db`);
    const old = new Database(path);
    old.exec('CREATE TABLE kept_from_before (x INTEGER)');
    old.close();
    const store = await storeWithFreedRuns(path);
    expect(pages(path).mode).toBe(0);
    expect(await store.reclaimSpace(4096, 0)).toBe(0);
    // `kairos doctor` says so.
    expect(await store.spaceUpkeep()).toMatchObject({ ok: false, detail: /not incremental/ });
  });
});
