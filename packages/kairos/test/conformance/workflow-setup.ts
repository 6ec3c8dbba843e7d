import type { Store } from '../../src/store/store.ts';

/**
 * The set-up the workflow conformance files share: a migrated store with one worker, `w1` of the
 * `default` group, serving `handlers`, registered at `at` with an hour's lease.
 */
export async function openWithWorker(
  open: () => Promise<Store>,
  at: number,
  worker: { handlers?: string[]; capacity?: number } = {},
): Promise<Store> {
  const store = await open();
  await store.migrate();
  await store.registerWorker(
    {
      id: 'w1',
      name: 'w1',
      group: 'default',
      handlers: worker.handlers ?? ['h'],
      capacity: worker.capacity ?? 100,
      labels: {},
      version: 't',
      host: 'h',
    },
    3_600_000,
    at,
  );
  return store;
}
