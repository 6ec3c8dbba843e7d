import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import type { Store } from '../store/store.ts';
import { StoreClock } from './store-clock.ts';

const HANG_MS = 1200;

describe('StoreClock', () => {
  let store: SqliteStore;
  afterEach(async () => {
    await store.close();
  });

  /** The store, its link to the database hanging for `HANG_MS` before the clock query reaches it. */
  function hungLink(real: Store, hung: { on: boolean }): Store {
    return Object.assign(Object.create(real) as Store, {
      async databaseTime() {
        if (hung.on) await new Promise((resolve) => setTimeout(resolve, HANG_MS));
        return real.databaseTime();
      },
    });
  }

  it('a sync whose query hung before it reached the database does not put the clock ahead of the store', async () => {
    store = new SqliteStore(join(tempDir(), 'clock.db'));
    await store.migrate();
    const hung = { on: false };
    const clock = new StoreClock(hungLink(store, hung));
    await clock.sync();
    hung.on = true;
    await clock.sync();
    // The store read its time at the end of the hang: taking the middle of the round trip put the
    // clock HANG_MS / 2 ahead, so that a reaper judged leases ended that early.
    const estimate = clock.now();
    const storeTime = await store.databaseTime();
    expect(estimate - storeTime).toBeLessThan(HANG_MS / 4);
  });

  it('follows a step of the store clock that a sync shows beyond its round trip', async () => {
    store = new SqliteStore(join(tempDir(), 'clock-step.db'));
    await store.migrate();
    let offset = 0;
    const stepped = Object.assign(Object.create(store) as Store, {
      async databaseTime() {
        return (await store.databaseTime()) + offset;
      },
    });
    const clock = new StoreClock(stepped);
    await clock.sync();
    offset = -60_000;
    await clock.sync();
    // Not a hung answer: the store's time moved back a minute, and the clock follows it.
    expect(Math.abs(clock.now() - (await stepped.databaseTime()))).toBeLessThan(30_000);
  });
});
