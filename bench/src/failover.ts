// Scheduler failover on PostgreSQL, with real processes (`npm run bench:failover -w bench`, and part
// of `--all`). Two `kairos server` nodes share a database; one job fires every second. Each round
// waits for a fire, then stops the node that owns the job's partition, and measures the time from
// the stop to the next run the survivor creates, and how late that run was against its nominal fire
// time. `kill -9` (crash) and SIGTERM (clean stop), `rounds` times each (3 by default). Alone, it
// writes bench/results/failover-<timestamp>.json.
import { pathToFileURL } from 'node:url';
import { serviceSettings } from './environment.ts';
import { type NodeProcess, settledPartitions, startNodeProcess, stopNodeProcess } from './kairos-process.ts';
import { SERVER_URL, serverClient } from './pg.ts';
import { saveResult } from './results.ts';
import { round } from './stats.ts';
import { Timings } from './timings.ts';
import { sleep } from './util.ts';

/** One way of stopping the owner, measured `rounds` times (milliseconds). */
export interface FailoverFigures {
  /** Stop → next run created. */
  gaps: number[];
  /** Next run created − its nominal fire time. */
  lateness: number[];
  medianGap: number;
  medianLateness: number;
}

export interface FailoverResult {
  rounds: number;
  crash: FailoverFigures;
  clean: FailoverFigures;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** Runs the failover benchmark on a fresh schema, which it drops afterwards. */
export async function failover(rounds: number, timings = new Timings()): Promise<FailoverResult> {
  const schema = `kairos_bench_failover_${process.pid}`;
  let generation = 0;
  const startNode = () => startNodeProcess(`bench-${generation++}`, `${SERVER_URL}?schema=${schema}`);
  const db = serverClient();
  await db.connect();
  const nodes = await timings.time('failover: node start', () => Promise.all([startNode(), startNode()]));

  /** The node that owns partition `partition`, once the nodes have settled their shares. */
  async function ownerOf(partition: number): Promise<NodeProcess> {
    const owner = (await settledPartitions(nodes)).find((n) => n.partitions.includes(partition))!;
    return nodes.find((n) => n.id === owner.id)!;
  }

  async function measure(signal: NodeJS.Signals, jobId: number): Promise<FailoverFigures> {
    const gaps: number[] = [];
    const lateness: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const owner = await timings.time('failover: settle', async () => {
        const owner = await ownerOf(jobId % 16);
        // Stop the owner just after a fire, so that the next nominal fire is due within a second.
        for (;;) {
          const { rows } = await db.query<{ at: string }>(`SELECT max(created_at) AS at FROM ${schema}.runs`);
          if (Date.now() - Number(rows[0]!.at) < 200) return owner;
          await sleep(10);
        }
      });
      const stoppedAt = Date.now();
      await stopNodeProcess(owner, signal);
      const measured = Date.now();
      for (;;) {
        const { rows } = await db.query<{ created_at: string; fire_time: string }>(
          `SELECT created_at, fire_time FROM ${schema}.runs WHERE created_at > $1 ORDER BY created_at LIMIT 1`,
          [stoppedAt],
        );
        const next = rows[0];
        if (next) {
          gaps.push(Number(next.created_at) - stoppedAt);
          lateness.push(Number(next.created_at) - Number(next.fire_time));
          break;
        }
        await sleep(5);
      }
      timings.add(`failover: ${signal} → next fire`, Date.now() - measured);
      nodes.splice(nodes.indexOf(owner), 1, await timings.time('failover: node start', startNode));
    }
    return { gaps, lateness, medianGap: median(gaps), medianLateness: round(median(lateness)) };
  }

  try {
    const job = await nodes[0]!.client.createJob({
      name: 'tick',
      handler: 'noop',
      trigger: { kind: 'every', every: '1s' },
    });
    const crash = await measure('SIGKILL', job.id);
    const clean = await measure('SIGTERM', job.id);
    return { rounds, crash, clean };
  } finally {
    await Promise.all(nodes.map((node) => stopNodeProcess(node, 'SIGKILL')));
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.end();
  }
}

/** The result in two lines. */
export function describeFailover(result: FailoverResult): string {
  const line = (name: string, f: FailoverFigures) =>
    `  ${name} → next fire after: median ${f.medianGap} ms (${f.gaps.join(', ')}); that fire late by median ${f.medianLateness} ms`;
  return [
    `Kairos scheduler failover on PostgreSQL (2 nodes, 1 job every 1 s, default timings, ${result.rounds} rounds)`,
    line('kill -9', result.crash),
    line('SIGTERM', result.clean),
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  const result = await failover(Number(process.env.ROUNDS ?? 3));
  console.log(describeFailover(result));
  saveResult('failover', { result, services: { postgres: await serviceSettings('postgres') } });
}
