import { KairosClient, type NodeInfo } from '@kairos/client';
import { type Child, freePort, spawnKairos, waitFor } from './processes.ts';

export const TOKENS = { KAIROS_ADMIN_TOKEN: 'cluster-admin', KAIROS_WORKER_TOKEN: 'cluster-worker' };

export interface ClusterNode {
  name: string;
  id: string;
  url: string;
  child: Child;
  client: KairosClient;
}

/** Scheduler nodes as separate processes on one PostgreSQL database. */
export class Cluster {
  readonly nodes = new Map<string, ClusterNode>();
  private generation = 0;

  constructor(
    private readonly databaseUrl: string,
    private readonly env: Record<string, string> = {},
  ) {}

  /**
   * Starts (or restarts) the node called `name` on a new port (or `port`), with a new node id, and
   * waits until it answers. `root`: run the code of that checkout (an older release's worktree).
   */
  async start(name: string, options: { port?: number; root?: string } = {}): Promise<ClusterNode> {
    const port = options.port ?? (await freePort());
    const id = `${name}-g${this.generation++}`;
    const env = {
      ...TOKENS,
      KAIROS_LOG_LEVEL: 'warn',
      KAIROS_DATABASE_URL: this.databaseUrl,
      KAIROS_NODE_ID: id,
      ...this.env,
    };
    const child = spawnKairos(['server', '--port', String(port)], env, options.root);
    const url = `http://127.0.0.1:${port}`;
    const client = new KairosClient({ url, token: TOKENS.KAIROS_ADMIN_TOKEN, timeoutMs: 10_000 });
    // A process start (tsx, migrations, the first lease renewal) on a busy machine: an honest margin.
    // A process that exits (e.g. refused to start) fails at once rather than after the whole margin.
    const exited = child.exited.then((code) => {
      throw new Error(`node ${id} exited (${code}) before it answered\n${child.output()}`);
    });
    await Promise.race([
      waitFor(() => client.health(), 120_000, `node ${id} to answer\n${child.output()}`),
      exited,
    ]);
    exited.catch(() => undefined);
    const node = { name, id, url, child, client };
    this.nodes.set(name, node);
    return node;
  }

  /** Sends a signal; SIGKILL also forgets the node and waits for the process to be gone. */
  async signal(name: string, signal: NodeJS.Signals): Promise<void> {
    const node = this.nodes.get(name)!;
    node.child.process.kill(signal);
    if (signal === 'SIGKILL' || signal === 'SIGTERM') {
      await node.child.exited;
      this.nodes.delete(name);
    }
  }

  /** A node that is up, to ask the cluster. */
  any(except?: string): ClusterNode {
    const node = [...this.nodes.values()].find((n) => n.name !== except);
    if (!node) throw new Error('no node is up');
    return node;
  }

  async clusterNodes(except?: string): Promise<NodeInfo[]> {
    return (await this.any(except).client.listNodes()).items;
  }

  /** Waits until the alive nodes own every partition between them, each once. */
  async settled(partitions = 16, timeoutMs = 120_000): Promise<NodeInfo[]> {
    return waitFor(
      async () => {
        const alive = (await this.clusterNodes()).filter((n) => n.status === 'alive' && this.isUp(n.id));
        const owned = alive.flatMap((n) => n.partitions);
        return alive.length === this.nodes.size &&
          owned.length === partitions &&
          new Set(owned).size === partitions
          ? alive
          : undefined;
      },
      timeoutMs,
      'the partitions to settle',
    );
  }

  /** The name of the up node owning the most partitions. */
  async busiestOwner(): Promise<string> {
    const infos = (await this.clusterNodes()).filter((n) => this.isUp(n.id));
    const top = infos.sort((a, b) => b.partitions.length - a.partitions.length)[0]!;
    return [...this.nodes.values()].find((n) => isListedAs(n.id, top.id))!.name;
  }

  async stopAll(): Promise<void> {
    for (const [name, node] of [...this.nodes]) {
      // A node a failed test left stopped would hold SIGTERM pending forever.
      node.child.process.kill('SIGCONT');
      await this.signal(name, 'SIGTERM');
    }
  }

  private isUp(id: string): boolean {
    return [...this.nodes.values()].some((n) => isListedAs(n.id, id));
  }
}

/**
 * Whether a node listed under `listed` is the node with id `id`. Nodes list each other by node id;
 * a node of 0.1.0 (in the rolling-upgrade test) lists a newer one by its instance, `<id>:<token>`.
 */
function isListedAs(id: string, listed: string): boolean {
  return listed === id || listed.startsWith(`${id}:`);
}
