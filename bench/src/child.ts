// A client or worker process of one contestant, driven by the harness over IPC (see processes.ts).
// Client: runs the producer loops (producer.ts). Worker: consumes one queue with the probe handler.
import type { Contestant, Env } from './contestant.ts';
import { loadContestant } from './contestants/index.ts';
import { Probe } from './probe.ts';
import type { CallMessage, ChildMessage } from './processes.ts';
import { bulk, flood, paced } from './producer.ts';
import { message } from './util.ts';

type Operations = Record<string, (args: never) => Promise<unknown> | unknown>;

const send = (reply: ChildMessage, then?: () => void) => process.send!(reply, undefined, {}, then);

async function clientOperations(contestant: Contestant, env: Env, queues: string[]): Promise<Operations> {
  const client = await contestant.connect(env, queues);
  return {
    bulk: (a: { queue: string; n: number }) => bulk(client, a.queue, a.n, contestant.bulkSize),
    flood: (a: { queue: string; seconds: number }) => flood(client, a.queue, a.seconds),
    paced: (a: { queue: string; rate: number; seconds: number }) => paced(client, a.queue, a.rate, a.seconds),
    schedule: (a: { queue: string; count: number; periodMs: number }) => {
      if (!client.schedule) throw new Error(`${contestant.name} has no schedules`);
      return client.schedule(a.queue, a.count, a.periodMs);
    },
    unschedule: (a: { queue: string; count: number }) => client.unschedule?.(a.queue, a.count),
    exit: () => client.close(),
  };
}

async function workerOperations(contestant: Contestant, env: Env, queue: string): Promise<Operations> {
  const probe = new Probe(process.env.BENCH_HANG === '1', process.env.BENCH_RECORD_STARTS === '1');
  const consumer = await contestant.consume(env, queue, probe.handle);
  return {
    go: () => consumer.start(),
    distinct: () => probe.distinct(),
    firedSince: (a: { since: number }) => probe.firedSince(a.since),
    report: () => probe.report(),
    exit: () => consumer.stop(),
  };
}

try {
  const contestant = await loadContestant(process.env.BENCH_CONTESTANT!);
  const env = JSON.parse(process.env.BENCH_ENV!) as Env;
  const queues = process.env.BENCH_QUEUES!.split(',');
  const operations =
    process.env.BENCH_ROLE === 'client'
      ? await clientOperations(contestant, env, queues)
      : await workerOperations(contestant, env, queues[0]!);
  process.on('message', async (raw) => {
    const call = raw as CallMessage;
    const then = call.op === 'exit' ? () => process.exit(0) : undefined;
    try {
      const run = operations[call.op];
      if (!run) throw new Error(`unknown operation ${call.op}`);
      send({ type: 'reply', id: call.id, value: await run(call.args as never) }, then);
    } catch (error) {
      send({ type: 'reply', id: call.id, error: message(error) }, then);
    }
  });
  send({ type: 'ready' });
} catch (error) {
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  send({ type: 'fatal', error: text }, () => process.exit(1));
}
