// `npm run bench:failover -w bench`: scheduler failover on PostgreSQL, with real processes.
// Two `kairos server` nodes share a database; one job fires every second. Each round kills the
// node that owns the job's partition and measures the time from the kill to the next run the
// survivor creates. `kill -9` (crash) and SIGTERM (clean stop) are measured 5 times each.
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { KairosClient } from '@kairos/client';
import pg from 'pg';

const DATABASE = process.env.KAIROS_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const SCHEMA = `kairos_bench_failover_${process.pid}`;
const CLI = fileURLToPath(new URL('../../packages/kairos/src/cli/main.ts', import.meta.url));
const TOKEN = 'bench-admin';
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Node {
  id: string;
  url: string;
  child: ChildProcess;
  client: KairosClient;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

let generation = 0;
async function startNode(): Promise<Node> {
  const port = await freePort();
  const id = `bench-${generation++}`;
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'server', '--port', String(port)], {
    env: {
      ...process.env,
      KAIROS_DATABASE_URL: `${DATABASE}?schema=${SCHEMA}`,
      KAIROS_ADMIN_TOKEN: TOKEN,
      KAIROS_WORKER_TOKEN: 'bench-worker',
      KAIROS_NODE_ID: id,
      KAIROS_LOG_LEVEL: 'error',
    },
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  const client = new KairosClient({ url, token: TOKEN });
  for (let i = 0; ; i++) {
    try {
      await client.health();
      break;
    } catch (error) {
      if (i > 300) throw error;
      await sleep(100);
    }
  }
  return { id, url, child, client };
}

/** The node that owns partition `partition`, once the two nodes settled. */
async function ownerOf(nodes: Node[], partition: number): Promise<Node> {
  for (;;) {
    const infos = (await nodes[0]!.client.listNodes()).items.filter(
      (n) => n.status === 'alive' && nodes.some((x) => x.id === n.id),
    );
    const owned = infos.flatMap((n) => n.partitions);
    if (infos.length === nodes.length && new Set(owned).size === 16 && owned.length === 16) {
      const owner = infos.find((n) => n.partitions.includes(partition))!;
      return nodes.find((n) => n.id === owner.id)!;
    }
    await sleep(50);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function measure(
  signal: NodeJS.Signals,
  nodes: Node[],
  db: pg.Client,
  jobId: number,
): Promise<number[]> {
  const times: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const owner = await ownerOf(nodes, jobId % 16);
    const survivor = nodes.find((n) => n !== owner)!;
    // Kill just after a fire, so that the next nominal fire is due within a second.
    const last = await db.query<{ created_at: string }>(
      `SELECT max(created_at) AS created_at FROM ${SCHEMA}.runs`,
    );
    while (Date.now() - Number(last.rows[0]!.created_at) > 300 || Date.now() % 1000 > 300) await sleep(10);
    const killedAt = Date.now();
    owner.child.kill(signal);
    await new Promise((resolve) => owner.child.once('exit', resolve));
    for (;;) {
      const next = await db.query<{ created_at: string }>(
        `SELECT min(created_at) AS created_at FROM ${SCHEMA}.runs WHERE created_at > $1`,
        [killedAt],
      );
      const at = next.rows[0]?.created_at;
      if (at) {
        times.push(Number(at) - killedAt);
        break;
      }
      await sleep(5);
    }
    nodes.splice(nodes.indexOf(owner), 1, await startNode());
    void survivor;
  }
  return times;
}

const db = new pg.Client({ connectionString: DATABASE });
await db.connect();
const nodes = [await startNode(), await startNode()];
try {
  const job = await nodes[0]!.client.createJob({
    name: 'tick',
    handler: 'noop',
    trigger: { kind: 'every', every: '1s' },
  });
  await sleep(2000);
  const crash = await measure('SIGKILL', nodes, db, job.id);
  const clean = await measure('SIGTERM', nodes, db, job.id);
  console.log('Kairos scheduler failover on PostgreSQL (2 nodes, 1 job every 1 s, default timings)');
  console.log(`  kill -9  → next fire: median ${median(crash)} ms  (runs: ${crash.join(', ')})`);
  console.log(`  SIGTERM  → next fire: median ${median(clean)} ms  (runs: ${clean.join(', ')})`);
} finally {
  for (const node of nodes) node.child.kill('SIGKILL');
  await db.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await db.end();
}
