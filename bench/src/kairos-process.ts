// A `kairos server` node in a process of its own, for the benchmarks that kill nodes or read a node's
// memory (failover.ts, scale.ts).
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { KairosClient, type NodeInfo } from '@kairos/client';
import { now, sleep } from './util.ts';

/** The CLI's TypeScript entry, run through tsx. */
export const CLI = fileURLToPath(new URL('../../packages/kairos/src/cli/main.ts', import.meta.url));
export const ADMIN_TOKEN = 'bench-admin';

/** A running node process. */
export interface NodeProcess {
  id: string;
  url: string;
  child: ChildProcess;
  client: KairosClient;
  /** From spawn to the first healthy answer, in milliseconds. */
  startMs: number;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Starts `kairos server` on `databaseUrl` (sqlite:<path> or postgres://…) and waits until it answers. */
export async function startNodeProcess(
  id: string,
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<NodeProcess> {
  const port = await freePort();
  const started = now();
  // BENCH_NODE_ARGS: extra Node.js flags for the node, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
  const flags = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(
    process.execPath,
    [...flags, '--import', 'tsx', '--conditions=@kairos/source', CLI, 'server', '--port', String(port)],
    {
      env: {
        ...process.env,
        KAIROS_DATABASE_URL: databaseUrl,
        KAIROS_ADMIN_TOKEN: ADMIN_TOKEN,
        KAIROS_WORKER_TOKEN: 'bench-worker',
        KAIROS_NODE_ID: id,
        KAIROS_LOG_LEVEL: 'error',
        ...env,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  // The end of its error output, to say why a node that exits while starting did.
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const url = `http://127.0.0.1:${port}`;
  const client = new KairosClient({ url, token: ADMIN_TOKEN });
  for (let i = 0; ; i++) {
    try {
      await client.health();
      break;
    } catch (error) {
      if (child.exitCode !== null)
        throw new Error(`node ${id} exited with code ${child.exitCode} while starting:\n${stderr}`);
      if (i > 3000) throw error;
      await sleep(10);
    }
  }
  return { id, url, child, client, startMs: now() - started };
}

/** Resident and peak resident memory of a process, in MiB (Linux). */
export function memoryOf(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
  return { rssMiB: Math.round(kib('VmRSS') / 1024), peakMiB: Math.round(kib('VmHWM') / 1024) };
}

/** Sends `signal` and resolves once the process has exited. */
export async function stopNodeProcess(node: NodeProcess, signal: NodeJS.Signals): Promise<void> {
  if (node.child.exitCode !== null || node.child.signalCode !== null) return;
  const exited = new Promise((resolve) => node.child.once('exit', resolve));
  node.child.kill(signal);
  await exited;
}

/**
 * Waits until `nodes` have settled their trigger partitions: every one alive, each of the
 * `partitions` held by exactly one of them, none holding more than its share (ceil(partitions /
 * nodes), what a node takes; nodes that start together may hold more until the next renewal).
 * Resolves with the nodes as they report themselves.
 */
export async function settledPartitions(nodes: NodeProcess[], partitions = 16): Promise<NodeInfo[]> {
  const share = Math.ceil(partitions / nodes.length);
  for (;;) {
    const alive = (await nodes[0]!.client.listNodes()).items.filter(
      (n) => n.status === 'alive' && nodes.some((x) => x.id === n.id),
    );
    const owned = alive.flatMap((n) => n.partitions);
    if (
      alive.length === nodes.length &&
      new Set(owned).size === partitions &&
      owned.length === partitions &&
      alive.every((n) => n.partitions.length <= share)
    )
      return alive;
    await sleep(50);
  }
}
