import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileJob, type JobDefinition } from '../../src/core/job.ts';
import { ENVELOPE_KEY, type SecretEnvelope, valueAt } from '../../src/core/secret-params.ts';
import { keyIdOf, type SecretKey, SecretKeyring } from '../../src/scheduler/secret-keyring.ts';
import { rotateSecrets } from '../../src/scheduler/secret-rotation.ts';
import type { Store } from '../../src/store/store.ts';

/**
 * The secret-params part of the store conformance suite (docs/security.md): the store keeps a job's
 * secret paths, keeps envelopes in params as given (and copies them into runs), and offers a key
 * rotation its batched reads and conditional writes. Run by `describeStoreConformance` on every
 * dialect, unchanged.
 */
export function describeSecretsConformance(dialect: string, open: () => Promise<Store>): void {
  describe(`Store conformance, secret params: ${dialect}`, () => {
    let store: Store;
    const T0 = Date.UTC(2026, 0, 1);
    const k1: SecretKey = { id: 'k1', key: randomBytes(32) };
    const k2: SecretKey = { id: 'k2', key: randomBytes(32) };
    const first = new SecretKeyring([k1]);
    const rotated = new SecretKeyring([k2, k1]);

    beforeEach(async () => {
      store = await open();
      await store.migrate();
    });
    afterEach(async () => {
      await store.close();
    });

    /** A job whose `apiKey` (and `db.password`) are stored as envelopes of `keyring`. */
    const secretJob = (name: string, keyring = first, extra: Record<string, unknown> = {}): JobDefinition => {
      const job = compileJob({
        name,
        handler: 'h',
        trigger: { kind: 'manual' },
        params: { apiKey: `key-of-${name}`, db: { password: 'pw' }, region: 'eu' },
        secretParams: ['apiKey', 'db.password'],
        ...extra,
      });
      return { ...job, params: keyring.seal(job.params, job.secretParams, null) };
    };

    it('keeps a job’s secret paths, and its params with their envelopes as given', async () => {
      const created = await store.createJob(secretJob('a'), null, T0);
      expect(created.secretParams).toEqual(['apiKey', 'db.password']);
      const stored = await store.getJob('a');
      expect(stored?.secretParams).toEqual(['apiKey', 'db.password']);
      const envelope = valueAt(stored!.params, 'apiKey') as SecretEnvelope;
      expect(envelope[ENVELOPE_KEY]).toMatch(/^v1:k1:/);
      expect(JSON.stringify(stored!.params)).not.toContain('key-of-a');
      expect(first.open(stored!.params)).toEqual({
        apiKey: 'key-of-a',
        db: { password: 'pw' },
        region: 'eu',
      });
      const plain = compileJob({ name: 'a', handler: 'h', trigger: { kind: 'manual' } });
      expect((await store.updateJob(created.id, plain, null, T0))?.secretParams).toEqual([]);
      expect((await store.createJob({ ...plain, name: 'b' }, null, T0)).secretParams).toEqual([]);
    });

    it('pages the rows whose params hold a secret, jobs and the runs that copied them, in id order', async () => {
      const a = await store.createJob(secretJob('a'), null, T0);
      await store.createJob(
        compileJob({ name: 'plain', handler: 'h', trigger: { kind: 'manual' } }),
        null,
        T0,
      );
      const c = await store.createJob(secretJob('c'), null, T0);
      // A run that takes the job's params (null: the job's) carries its envelopes.
      const run = await store.triggerRun('a', { params: null, priority: null }, T0);
      await store.enqueueRuns(a.id, [{ params: { n: 1 }, priority: 0 }], T0);

      const page1 = await store.secretParamsPage('jobs', 0, 1);
      expect(page1.map((r) => r.id)).toEqual([a.id]);
      const page2 = await store.secretParamsPage('jobs', page1[0]!.id, 10);
      expect(page2.map((r) => r.id)).toEqual([c.id]);
      expect(first.open(page2[0]!.params).apiKey).toBe('key-of-c');
      const runs = await store.secretParamsPage('runs', 0, 10);
      expect(runs.map((r) => r.id)).toEqual([run!.id]);
      expect(first.open(runs[0]!.params).apiKey).toBe('key-of-a');
    });

    it('replaces params only while they are as read: a concurrent edit wins, and the version stays', async () => {
      const a = await store.createJob(secretJob('a'), null, T0);
      const [row] = await store.secretParamsPage('jobs', 0, 10);
      expect(await store.replaceSecretParams('jobs', a.id, row!.stored, rotated.rotate(row!.params))).toBe(
        true,
      );
      const after = await store.getJob('a');
      expect(after?.version).toBe(a.version);
      expect(keyIdOf(valueAt(after!.params, 'apiKey') as SecretEnvelope)).toBe('k2');
      // Written twice from one read: the second finds the row changed and writes nothing.
      expect(await store.replaceSecretParams('jobs', a.id, row!.stored, row!.params)).toBe(false);

      // An edit between the read and the write: the edit stays.
      const [read] = await store.secretParamsPage('jobs', 0, 10);
      const edited = secretJob('a', first, { params: { apiKey: 'edited', db: { password: 'pw' } } });
      await store.updateJob(a.id, edited, null, T0);
      expect(await store.replaceSecretParams('jobs', a.id, read!.stored, rotated.rotate(read!.params))).toBe(
        false,
      );
      expect(first.open((await store.getJob('a'))!.params).apiKey).toBe('edited');
    });

    it('a rotation re-encrypts every secret under the first key, in batches, once', async () => {
      for (const name of ['a', 'b', 'c', 'd', 'e']) await store.createJob(secretJob(name), null, T0);
      for (const name of ['a', 'b', 'c']) await store.triggerRun(name, { params: null, priority: null }, T0);
      const report = await rotateSecrets(store, rotated, 2);
      expect(report).toEqual({
        keyId: 'k2',
        rotated: { jobs: 5, runs: 3 },
        unreadable: { jobs: 0, runs: 0 },
      });
      for (const table of ['jobs', 'runs'] as const) {
        for (const row of await store.secretParamsPage(table, 0, 100)) {
          expect(keyIdOf(valueAt(row.params, 'apiKey') as SecretEnvelope)).toBe('k2');
          expect(keyIdOf(valueAt(row.params, 'db.password') as SecretEnvelope)).toBe('k2');
          expect(rotated.open(row.params).db).toEqual({ password: 'pw' });
        }
      }
      // Idempotent: nothing left to do.
      expect((await rotateSecrets(store, rotated, 2)).rotated).toEqual({ jobs: 0, runs: 0 });
      // A key the node lacks leaves its rows as they are, counted.
      await store.createJob(
        secretJob('f', new SecretKeyring([{ id: 'lost', key: randomBytes(32) }])),
        null,
        T0,
      );
      expect((await rotateSecrets(store, rotated, 2)).unreadable).toEqual({ jobs: 1, runs: 0 });
    });
  });
}
