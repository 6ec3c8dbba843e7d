import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { dropTestSchemas, testDatabaseUrl, testSchema } from '../../../test/test-database.ts';
import { firstScheduledFire } from '../../core/fire-plan.ts';
import { compileWorkflow } from '../../core/workflow.ts';
import { FakeClock } from '../../scheduler/clock.ts';
import { TriggerLoop } from '../../scheduler/trigger-loop.ts';
import { PostgresStore } from './postgres-store.ts';

afterAll(dropTestSchemas);

const logger = pino({ level: 'silent' });

// Two nodes fire one workflow on PostgreSQL at once: two stores (two pools) on one schema, and two
// trigger loops that both believe they own every partition (no leases), so only the store stands
// between a fire and a second instance of it (store/postgres/workflow-fires.ts).
describe('PostgreSQL workflow fires from two nodes at once', () => {
  const stores: PostgresStore[] = [];
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
  });

  it('starts one instance per fire time, and writes each skipped fire to the ledger once', async () => {
    const schema = testSchema();
    const a = new PostgresStore({ connectionString: testDatabaseUrl(), schema });
    await a.migrate();
    const b = new PostgresStore({ connectionString: testDatabaseUrl(), schema });
    stores.push(a, b);
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const put = async (name: string, overlap: 'allow' | 'skip') => {
      const definition = compileWorkflow({
        name,
        steps: [{ id: 'a', handler: 'h' }],
        trigger: { kind: 'every', every: '1s' },
        schedule: { overlap },
      });
      const now = clock.now();
      return (
        await a.workflows.put(definition, 'default', now, undefined, {
          next: firstScheduledFire(definition.trigger, definition.schedule, now),
        })
      ).workflow;
    };
    const allow = await put('allow', 'allow');
    const skip = await put('skip', 'skip');
    const loops = [a, b].map(
      (store, i) =>
        new TriggerLoop({
          store,
          clock,
          owner: `node-${i}`,
          logger,
          partitions: 4,
          partitionLeaseMs: 3000,
          misfireGraceMs: 60_000,
          useLeases: false,
        }),
    );
    const FIRES = 25;
    for (let i = 0; i < FIRES; i++) {
      await clock.advance(1000);
      await Promise.all(loops.map((loop) => loop.tick()));
    }
    const allowed = await a.workflows.listInstances(allow.id, undefined, 1000);
    const times = allowed
      .map((instance) => instance.scheduledFor! - Date.UTC(2026, 0, 1))
      .sort((x, y) => x - y);
    expect(times).toEqual(Array.from({ length: FIRES }, (_, i) => (i + 1) * 1000));
    const runs = await a.listRuns({ jobId: allow.jobId, limit: 1000 });
    expect(runs.length).toBe(FIRES);
    expect(new Set(runs.map((r) => r.cause))).toEqual(new Set(['workflow']));

    const skipped = await a.workflows.listInstances(skip.id, undefined, 1000);
    expect(skipped.map((instance) => instance.scheduledFor! - Date.UTC(2026, 0, 1))).toEqual([1000]);
    const ledger = await a.listSkipped(skip.jobId, { limit: 1000 });
    expect(ledger.every((row) => row.reason === 'overlap')).toBe(true);
    expect(ledger.reduce((n, row) => n + (row.count ?? 0), 0)).toBe(FIRES - 1);
  });
});
