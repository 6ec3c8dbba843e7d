// A user's script that defines jobs and triggers them through @kairos/client, then follows each
// run's log until the run ends and prints the runs as JSON.
import { KairosClient } from '@kairos/client';

const client = new KairosClient({ url: process.env.KAIROS_URL, token: process.env.KAIROS_TOKEN });
const jobs = [
  { name: 'esm-double', group: 'esm', handler: 'double', n: 21 },
  { name: 'esm-isolated', group: 'esm', handler: 'isolated-double', n: 50 },
  { name: 'cjs-double', group: 'cjs', handler: 'double', n: 100 },
];
const runs = {};
for (const { name, group, handler, n } of jobs) {
  await client.putJob({ name, group, handler, trigger: { kind: 'manual' }, retry: { maxAttempts: 1 } });
  const { id } = await client.triggerJob(name, { params: { n } });
  for await (const event of client.followRunLogs(id)) if (event.type === 'end') break;
  const run = await client.getRun(id);
  runs[name] = { status: run.status, result: run.result, error: run.error };
}
console.log(JSON.stringify(runs));
