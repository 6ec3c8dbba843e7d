// `npm run bench:trigger-claim`: on PostgreSQL, what a trigger and the claim of its run cost as two
// statements, each its own commit (what the node does), against both in one transaction (`BEGIN`,
// the trigger, the claim, `COMMIT`: the shape of a hand-off to a waiting poll, which SQLite does in
// `Store.triggerRun`). The node's own statements (TRIGGER_RUN, DISPATCH_FAST), prepared, on one
// connection, one pair at a time, the two shapes alternating in rounds: wall time per pair (the
// latency from the trigger to the run claimed) and this process's CPU per pair.
// Result: bench/results/trigger-claim-<timestamp>.json.
//   node --import tsx --conditions=@kairos/source src/trigger-claim.ts [--pairs 2000] [--rounds 5]
import { parseArgs } from 'node:util';
import { compileJob } from '@kairos/server';
import pg from 'pg';
import { dispatchWindow } from '../../packages/kairos/src/store/dispatch-rows.ts';
import { CHANNEL } from '../../packages/kairos/src/store/postgres/connection.ts';
import { DISPATCH_FAST } from '../../packages/kairos/src/store/postgres/dispatch.ts';
import { PostgresStore } from '../../packages/kairos/src/store/postgres/postgres-store.ts';
import { TRIGGER_RUN } from '../../packages/kairos/src/store/postgres/runs.ts';
import { createDatabase } from './pg.ts';
import { saveResult } from './results.ts';
import { percentile, round } from './stats.ts';

const { values } = parseArgs({
  options: { pairs: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '5' } },
});
const pairs = Number(values.pairs);
const rounds = Number(values.rounds);
const schema = 'kairos';
const database = await createDatabase('trigger_claim');
const store = new PostgresStore({ connectionString: database.url, schema });
await store.migrate();
await store.registerWorker(
  {
    id: 'w',
    name: 'w',
    group: 'default',
    handlers: ['h'],
    capacity: 1000,
    labels: {},
    version: '',
    host: '',
  },
  3_600_000,
  Date.now(),
);
await store.createJob(compileJob({ name: 'j', handler: 'h', trigger: { kind: 'manual' } }), null, Date.now());
const client = new pg.Client({ connectionString: database.url, options: `-c search_path=${schema}` });
await client.connect();

const trigger = (now: number) =>
  client.query({
    name: 'trigger',
    text: TRIGGER_RUN,
    values: [
      'j',
      null,
      null,
      null,
      now,
      CHANNEL,
      'bench',
      null,
      null,
      null,
      null,
      null,
      false,
      schema,
      now,
      null,
      null,
    ],
  });
const claim = async (now: number) => {
  const { rows } = await client.query<{ claimed: unknown[] }>({
    name: 'claim',
    text: DISPATCH_FAST,
    values: ['w', now, 4, dispatchWindow(4), false, null],
  });
  if (rows[0]!.claimed.length !== 1) throw new Error('the run was not claimed');
};
const shapes = {
  twoStatements: async () => {
    await trigger(Date.now());
    await claim(Date.now());
  },
  oneTransaction: async () => {
    await client.query('BEGIN');
    const now = Date.now();
    await trigger(now);
    await claim(now);
    await client.query('COMMIT');
  },
};
type Shape = keyof typeof shapes;

const measured: Record<Shape, Array<{ medianMs: number; p99Ms: number; meanMs: number; cpuUs: number }>> = {
  twoStatements: [],
  oneTransaction: [],
};
// A warm-up of each shape (statements prepared, pages cached), then the rounds, the order alternating.
for (const shape of Object.keys(shapes) as Shape[]) for (let i = 0; i < 200; i++) await shapes[shape]();
for (let round_ = 0; round_ < rounds; round_++) {
  const order: Shape[] =
    round_ % 2 === 0 ? ['twoStatements', 'oneTransaction'] : ['oneTransaction', 'twoStatements'];
  for (const shape of order) {
    const times: number[] = [];
    const cpu = process.cpuUsage();
    const start = performance.now();
    for (let i = 0; i < pairs; i++) {
      const t0 = performance.now();
      await shapes[shape]();
      times.push(performance.now() - t0);
    }
    const wall = performance.now() - start;
    const used = process.cpuUsage(cpu);
    times.sort((a, b) => a - b);
    measured[shape].push({
      medianMs: round(percentile(times, 50)),
      p99Ms: round(percentile(times, 99)),
      meanMs: round(wall / pairs),
      cpuUs: round((used.user + used.system) / pairs),
    });
  }
}
await client.end();
await store.close();
await database.drop();

for (const [shape, rows] of Object.entries(measured))
  console.log(
    `${shape}: median ${rows.map((r) => r.medianMs).join(', ')} ms; p99 ${rows.map((r) => r.p99Ms).join(', ')} ms; mean ${rows.map((r) => r.meanMs).join(', ')} ms; client CPU ${rows.map((r) => r.cpuUs).join(', ')} µs per pair`,
  );
saveResult('trigger-claim', { pairs, rounds, measured });
