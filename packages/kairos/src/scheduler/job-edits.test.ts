import { join } from 'node:path';
import type { JobSpec } from '@kairos/client';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../test/helpers.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from '../../test/test-database.ts';
import { decideOutcome } from '../core/outcome.ts';
import { KairosError } from '../errors.ts';
import { PostgresStore } from '../store/postgres/postgres-store.ts';
import { SqliteStore } from '../store/sqlite/sqlite-store.ts';
import type { Store } from '../store/store.ts';
import { FakeClock } from './clock.ts';
import { JobService } from './job-service.ts';
import { keyIdOf, parseSecretKeys, SecretKeyring } from './secret-keyring.ts';
import { rotateSecrets } from './secret-rotation.ts';
import { TriggerLoop } from './trigger-loop.ts';

// Edits that race with the schedule and with each other, on real stores and a fake clock. The
// interleavings are made exact: a store whose `getJob` runs `between` once, right after the edit
// read the job and before it writes.

const dir = tempDir();
const logger = pino({ level: 'silent' });
const T0 = Date.UTC(2026, 0, 1);
const MIN = 60_000;
let n = 0;
const opened: Store[] = [];

afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
});
afterAll(dropTestSchemas);

const dialects: Array<[string, () => Store]> = [
  ['sqlite', () => new SqliteStore(join(dir, `job-edits-${n++}.db`))],
  ['postgres', () => new PostgresStore({ connectionString: testDatabaseUrl(), schema: testSchema() })],
];

describe.each(dialects)('job edits that race: %s', (_dialect, open) => {
  async function setup() {
    const store = open();
    await store.migrate();
    opened.push(store);
    const clock = new FakeClock(T0);
    let between: (() => Promise<void>) | null = null;
    // The same store, with a hook after the next read of a job.
    const racing = new Proxy(store, {
      get(target, key, receiver) {
        if (key !== 'getJob') return Reflect.get(target, key, receiver);
        return async (name: string) => {
          const job = await target.getJob(name);
          const hook = between;
          between = null;
          if (hook) await hook();
          return job;
        };
      },
    });
    const editor = new JobService(racing, clock);
    const other = new JobService(store, clock);
    const loop = new TriggerLoop({
      store,
      clock,
      owner: 'node',
      logger,
      partitions: 1,
      partitionLeaseMs: 3_600_000,
      misfireGraceMs: MIN,
    });
    const create = (spec: Omit<JobSpec, 'handler'>) => other.create({ handler: 'h', ...spec });
    const whileReading = (hook: () => Promise<void>) => {
      between = hook;
    };
    return { store, racing, clock, editor, other, loop, create, whileReading };
  }

  it('an edit made while a fixed-delay run is in flight keeps the next fire its end set', async () => {
    const s = await setup();
    await s.create({ name: 'd', trigger: { kind: 'delay', delay: '1m' } });
    await s.clock.advance(1000);
    await s.loop.tick();
    const [run] = await s.store.listRuns({ limit: 10 });
    expect(run).toBeDefined();
    expect((await s.other.get('d')).nextFireAt).toBeNull();
    // The run ends between the edit's read and its write: its end sets the next fire.
    s.whileReading(async () => {
      await s.clock.advance(5000);
      await finish(s.store, run!.id, s.clock.now());
    });
    const edited = await s.editor.update('d', { description: 'edited while running' });
    const endedAt = T0 + 6000;
    expect(edited.description).toBe('edited while running');
    expect(edited.nextFireAt).toBe(endedAt + MIN);
    expect((await s.other.get('d')).nextFireAt).toBe(endedAt + MIN);
    // And the job fires again.
    await s.clock.advance(MIN);
    await s.loop.tick();
    expect(await s.store.listRuns({ limit: 10 })).toHaveLength(2);
  });

  it('an edit or a trigger made while the secrets are rotated writes them under the new key', async () => {
    const s = await setup();
    const key = () =>
      Buffer.from(Array.from({ length: 32 }, () => Math.floor(Math.random() * 256))).toString('base64');
    const [k1, k2] = parseSecretKeys(`k1:${key()},k2:${key()}`, 'test');
    // A job written while k1 encrypted; then k2 is added first, and the rotation runs.
    const before = new JobService(s.store, s.clock, undefined, new SecretKeyring([k1!]));
    const spec = { handler: 'h', trigger: { kind: 'manual' as const }, secretParams: ['token'] };
    await before.create({ ...spec, name: 'edited', params: { token: 'pw-1' } });
    const ring = new SecretKeyring([k2!, k1!]);
    const racing = new JobService(s.racing, s.clock, undefined, ring);
    // The rotation runs between the edit's (or trigger's) read of the job and its write.
    const rotateWhileReading = () =>
      s.whileReading(async () => {
        await rotateSecrets(s.store, ring);
      });
    // The rotation reported nothing left under k1 each time: nothing may be, for k1 can now be removed.
    const onlyK2 = new SecretKeyring([k2!]);
    rotateWhileReading();
    await racing.update('edited', { description: 'edited while rotating' });
    const job = (await s.store.getJob('edited'))!;
    expect(keyIdOf(job.params.token as never)).toBe('k2');
    expect(onlyK2.open(job.params)).toEqual({ token: 'pw-1' });
    // Another job still under k1 when a trigger reads it (the rotation above would have moved it).
    await before.create({ ...spec, name: 'triggered', params: { token: 'pw-2' } });
    rotateWhileReading();
    const run = await racing.triggerOne('triggered', { params: { token: '***', other: 1 } });
    const stored = (await s.store.getRun(run.id))!;
    expect(keyIdOf(stored.params.token as never)).toBe('k2');
    expect(onlyK2.open(stored.params)).toEqual({ token: 'pw-2', other: 1 });
  });

  it('an edit made while another operator pauses the job leaves it paused', async () => {
    const s = await setup();
    await s.create({ name: 'p', trigger: { kind: 'every', every: '1m' } });
    s.whileReading(async () => {
      await s.other.pause('p');
    });
    const edited = await s.editor.update('p', { description: 'edited while pausing' });
    expect(edited.paused).toBe(true);
    expect(edited.description).toBe('edited while pausing');
    const stored = await s.other.get('p');
    expect(stored.paused).toBe(true);
    await s.clock.advance(5 * MIN);
    await s.loop.tick();
    expect(await s.store.listRuns({ limit: 10 })).toHaveLength(0);
  });

  it('an edit made while the schedule advances does not rewind the next fire', async () => {
    const s = await setup();
    await s.create({ name: 'e', trigger: { kind: 'every', every: '1m' } });
    await s.clock.advance(30_000);
    s.whileReading(async () => {
      await s.clock.advance(MIN);
      await s.loop.tick();
    });
    const edited = await s.editor.update('e', { priority: 5 });
    expect(edited.priority).toBe(5);
    expect(edited.nextFireAt).toBe(T0 + 2 * MIN);
    await s.loop.tick();
    expect(await s.store.listRuns({ limit: 10 })).toHaveLength(1);
  });

  it('two operators edit the same version: the second gets VERSION_CONFLICT with the current job', async () => {
    const s = await setup();
    const created = await s.create({ name: 'v', trigger: { kind: 'every', every: '1m' } });
    expect(created.version).toBe(1);
    const first = await s.other.update('v', { description: 'first' }, { version: created.version });
    expect(first.version).toBe(2);
    const conflict = await s.other
      .update('v', { description: 'second' }, { version: created.version })
      .catch((error: unknown) => error);
    expect(conflict).toBeInstanceOf(KairosError);
    expect((conflict as KairosError).code).toBe('VERSION_CONFLICT');
    expect((conflict as KairosError).details).toMatchObject({ job: { version: 2, description: 'first' } });
    expect((await s.other.get('v')).description).toBe('first');
    // Pause and resume are changes too; the schedule advancing is not.
    const paused = await s.other.pause('v', { version: 2 });
    expect(paused.version).toBe(3);
    await s.clock.advance(MIN);
    const resumed = await s.other.resume('v', { version: 3 });
    expect(resumed.version).toBe(4);
    await s.clock.advance(MIN);
    await s.loop.tick();
    expect((await s.other.get('v')).version).toBe(4);
    // A replacement with a stale version changes nothing either.
    const put = await s.other
      .put({ name: 'v', handler: 'h', trigger: { kind: 'every', every: '2m' } }, { version: 3 })
      .catch((error: unknown) => error);
    expect((put as KairosError).code).toBe('VERSION_CONFLICT');
    expect((await s.other.get('v')).trigger).toMatchObject({ kind: 'every', every: MIN });
  });

  it('an edit that changes nothing writes nothing: the version stays', async () => {
    const s = await setup();
    const spec = {
      name: 'same',
      handler: 'h',
      trigger: { kind: 'cron' as const, cron: '0 9 * * *', timezone: 'Europe/Berlin' },
      params: { b: 1, a: { d: 2, c: 3 } },
      schedule: { overlap: 'skip' as const, jitter: '5s' },
      routing: { strategy: 'round-robin' as const },
      retry: { maxAttempts: 4, backoff: 'fixed' as const },
    };
    const created = await s.other.create(spec);
    expect((await s.other.put(spec)).version).toBe(created.version);
    expect((await s.other.update('same', { priority: 0, params: { a: { c: 3, d: 2 }, b: 1 } })).version).toBe(
      created.version,
    );
    const paused = await s.other.pause('same');
    expect(paused.version).toBe(created.version + 1);
    expect((await s.other.pause('same', { version: paused.version })).version).toBe(paused.version);
    expect((await s.other.get('same')).updatedAt).toBe(paused.updatedAt);
  });

  it('a replacement that does not say `paused` keeps a pause made while it was written', async () => {
    const s = await setup();
    await s.create({ name: 'r', trigger: { kind: 'every', every: '1m' } });
    s.whileReading(async () => {
      await s.other.pause('r');
    });
    const put = await s.editor.put({
      name: 'r',
      handler: 'h',
      trigger: { kind: 'every', every: '1m' },
      priority: 2,
    });
    expect(put).toMatchObject({ paused: true, priority: 2 });
    // Saying it resumes, with the ledger entry of a resume.
    await s.clock.advance(3 * MIN);
    const resumed = await s.other.put({
      name: 'r',
      handler: 'h',
      trigger: { kind: 'every', every: '1m' },
      paused: false,
    });
    expect(resumed.paused).toBe(false);
    expect(await s.store.listSkipped(resumed.id, { limit: 10 })).toEqual([
      expect.objectContaining({ reason: 'paused', count: 3 }),
    ]);
  });

  it('the version of a concurrent edit is checked when it writes, not only when it reads', async () => {
    const s = await setup();
    await s.create({ name: 'w', trigger: { kind: 'every', every: '1m' } });
    s.whileReading(async () => {
      await s.other.update('w', { description: 'won' });
    });
    const lost = await s.editor.update('w', { description: 'lost' }, { version: 1 }).catch((e: unknown) => e);
    expect((lost as KairosError).code).toBe('VERSION_CONFLICT');
    expect((await s.other.get('w')).description).toBe('won');
  });
});

/** Claims a run on a worker and ends its attempt as succeeded. */
async function finish(store: Store, runId: number, now: number) {
  await store.registerWorker(
    {
      id: 'w',
      name: 'w',
      group: 'default',
      handlers: ['h'],
      capacity: 10,
      labels: {},
      version: 't',
      host: 'h',
    },
    3_600_000,
    now,
  );
  const claimed = await store.claimRuns('w', 10, now);
  const attempt = claimed.find((c) => c.runId === runId)!.attempt;
  const decision = decideOutcome(
    { maxAttempts: 1, backoff: 'fixed', delay: 0, maxDelay: 0, jitter: false, nonRetryable: [] },
    attempt,
    { kind: 'succeeded', result: null },
    now,
    0,
  );
  await store.finishAttempts([{ ...decision, runId, attempt, group: 'default' }], now);
}
