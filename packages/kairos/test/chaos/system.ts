import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../net.ts';
import { type PrivatePostgres, startPrivatePostgres } from '../private-postgres.ts';
import { Network } from './netns.ts';
import { SlowLink } from './slow-link.ts';

// The system under test: scheduler nodes (`kairos server` processes) on a private PostgreSQL
// server or on one SQLite file, and chaos workers, each process in a network namespace of its
// own when the profile cuts links.

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const WORKER = fileURLToPath(new URL('./chaos-worker.ts', import.meta.url));
const CLOCK = fileURLToPath(new URL('./clock-offset.ts', import.meta.url));
const PROBE = fileURLToPath(new URL('./stall-probe.ts', import.meta.url));
export const ADMIN_TOKEN = 'chaos-admin';
const WORKER_TOKEN = 'chaos-worker';

export interface Timings {
  workerLeaseMs: number;
  heartbeatMs: number;
  reaperIntervalMs: number;
  partitionLeaseMs: number;
}
export const TIMINGS: Timings = {
  workerLeaseMs: 5000,
  heartbeatMs: 1000,
  reaperIntervalMs: 1000,
  partitionLeaseMs: 3000,
};

export interface SystemOptions {
  store: 'postgres' | 'sqlite';
  nodes: number;
  workers: number;
  /** Each process in a network namespace of its own (needed for partitions). */
  network: boolean;
  /** Each node reaches PostgreSQL through a relay of the harness that can slow it down. */
  slowLinks: boolean;
  dir: string;
  history: string;
  log: (line: string) => void;
}

/** One process of the system: `n1-g0` is node n1's first incarnation. */
export interface Member {
  slot: string;
  name: string;
  child: ChildProcess;
  output: string[];
  exited: Promise<number | null>;
  /** The harness killed it on purpose (the nemesis or the shutdown). */
  expectedExit: boolean;
  stopped: boolean;
}

export class System {
  readonly nodes = new Map<string, Member>();
  readonly workers = new Map<string, Member>();
  readonly net = new Network();
  postgres: PrivatePostgres | null = null;
  /** Called when a worker exits without the harness asking (a poison run killed it). */
  onWorkerCrash: (member: Member) => void = () => {};
  private generation = new Map<string, number>();
  private ports = new Map<string, number>();
  /** Each node's own link to PostgreSQL (network profiles), which the nemesis slows down. */
  readonly links = new Map<string, SlowLink>();
  private databaseUrls = new Map<string, string>();
  private closing = false;

  constructor(readonly options: SystemOptions) {}

  async start(): Promise<void> {
    const { options } = this;
    mkdirSync(options.dir, { recursive: true });
    if (options.network) {
      this.net.setup();
      for (let i = 1; i <= options.nodes; i++) this.net.add(`n${i}`, 10 + i);
      for (let i = 1; i <= options.workers; i++) this.net.add(`w${i}`, 30 + i);
    }
    if (options.store === 'postgres') {
      this.postgres = await startPrivatePostgres({ listen: options.network ? [Network.HOST] : [] });
      const port = Number(new URL(this.postgres.url).port);
      for (let i = 1; i <= options.nodes; i++) {
        const host = options.network ? Network.HOST : '127.0.0.1';
        let url = `postgres://postgres@${host}:${port}/postgres?schema=chaos`;
        if (options.slowLinks) {
          const link = new SlowLink(Network.HOST, { host: '127.0.0.1', port });
          url = `postgres://postgres@${Network.HOST}:${await link.listen()}/postgres?schema=chaos`;
          this.links.set(`n${i}`, link);
        }
        this.databaseUrls.set(`n${i}`, url);
      }
    }
    if (options.store === 'sqlite') {
      // The SQLite file on a small disk of its own, which the nemesis can fill.
      mkdirSync(this.dataDir(), { recursive: true });
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', this.dataDir()]);
    }
    for (let i = 1; i <= options.nodes; i++)
      this.ports.set(`n${i}`, options.network ? 7070 : await freePort());
    // The first node creates the schema; the others join it.
    await this.startNode('n1');
    await Promise.all([...this.ports.keys()].slice(1).map((slot) => this.startNode(slot)));
    for (let i = 1; i <= options.workers; i++) this.startWorker(`w${i}`);
  }

  url(slot: string): string {
    const host = this.options.network ? this.net.ip(slot) : '127.0.0.1';
    return `http://${host}:${this.ports.get(slot)}`;
  }

  nodeSlots(): string[] {
    return [...this.ports.keys()];
  }

  workerSlots(): string[] {
    return Array.from({ length: this.options.workers }, (_, i) => `w${i + 1}`);
  }

  clockFile(slot: string): string {
    return join(this.options.dir, `clock-${slot}`);
  }

  /** Starts (or restarts) node `slot` and waits until it answers. */
  async startNode(slot: string): Promise<Member> {
    writeFileSync(this.clockFile(slot), '0');
    const name = this.nextName(slot);
    const env: Record<string, string> = {
      KAIROS_ADMIN_TOKEN: ADMIN_TOKEN,
      KAIROS_WORKER_TOKEN: WORKER_TOKEN,
      KAIROS_LOG_LEVEL: 'warn',
      KAIROS_NODE_ID: name,
      KAIROS_WORKER_LEASE: String(TIMINGS.workerLeaseMs),
      KAIROS_HEARTBEAT: String(TIMINGS.heartbeatMs),
      KAIROS_REAPER_INTERVAL: String(TIMINGS.reaperIntervalMs),
      KAIROS_PARTITION_LEASE: String(TIMINGS.partitionLeaseMs),
      CHAOS_CLOCK_FILE: this.clockFile(slot),
      CHAOS_HISTORY: this.options.history,
      CHAOS_PROCESS: name,
    };
    const databaseUrl = this.databaseUrls.get(slot);
    if (databaseUrl) env.KAIROS_DATABASE_URL = databaseUrl;
    else env.KAIROS_DATA_DIR = this.dataDir();
    const member = this.spawn(
      slot,
      name,
      [
        '--import',
        'tsx',
        // The stall probe before the clock offset: it reads the real wall clock.
        '--import',
        PROBE,
        '--import',
        CLOCK,
        CLI,
        'server',
        '--host',
        '0.0.0.0',
        '--port',
        String(this.ports.get(slot)),
      ],
      env,
    );
    this.nodes.set(slot, member);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const ok = await fetch(`${this.url(slot)}/v1/health`, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return member;
      if (member.child.exitCode !== null || Date.now() > deadline)
        throw new Error(`node ${name} did not start:\n${member.output.join('')}`);
      await sleep(100);
    }
  }

  startWorker(slot: string): Member {
    const name = this.nextName(slot);
    const member = this.spawn(slot, name, ['--import', 'tsx', '--import', PROBE, WORKER], {
      KAIROS_WORKER_TOKEN: WORKER_TOKEN,
      CHAOS_PROCESS: name,
      KAIROS_URLS: JSON.stringify(this.nodeSlots().map((s) => this.url(s))),
      WORKER_NAME: name,
      CHAOS_HISTORY: this.options.history,
    });
    this.workers.set(slot, member);
    void member.exited.then(() => {
      if (!member.expectedExit && !this.closing && this.workers.get(slot) === member)
        this.onWorkerCrash(member);
    });
    return member;
  }

  /** kill -9, and waits until the process is gone. */
  async kill(member: Member): Promise<void> {
    member.expectedExit = true;
    member.child.kill('SIGKILL');
    await member.exited;
  }

  /** A clean stop (SIGTERM); kill -9 if it has not exited after 20 s. */
  async terminate(member: Member): Promise<void> {
    member.expectedExit = true;
    member.child.kill('SIGTERM');
    const timer = setTimeout(() => member.child.kill('SIGKILL'), 20_000);
    await member.exited;
    clearTimeout(timer);
  }

  pause(member: Member): void {
    member.stopped = true;
    member.child.kill('SIGSTOP');
  }

  resume(member: Member): void {
    member.stopped = false;
    member.child.kill('SIGCONT');
  }

  dataDir(): string {
    return join(this.options.dir, 'data');
  }

  /** Fills the SQLite node's disk to the last byte. */
  async fillDisk(): Promise<void> {
    await new Promise<void>((resolve) =>
      execFile('dd', ['if=/dev/zero', `of=${join(this.dataDir(), 'filler')}`, 'bs=1M'], () => resolve()),
    );
  }

  freeDisk(): void {
    rmSync(join(this.dataDir(), 'filler'), { force: true });
  }

  /** Names of the worker processes alive now. */
  liveWorkers(): string[] {
    return [...this.workers.values()]
      .filter((m) => m.child.exitCode === null && m.child.signalCode === null)
      .map((m) => m.name);
  }

  async shutdown(): Promise<void> {
    this.closing = true;
    for (const m of [...this.workers.values(), ...this.nodes.values()]) {
      m.expectedExit = true;
      m.child.kill('SIGCONT');
      m.child.kill('SIGKILL');
    }
    await Promise.all([...this.workers.values(), ...this.nodes.values()].map((m) => m.exited));
    for (const link of this.links.values()) link.close();
    this.postgres?.remove();
    if (this.options.network) this.net.teardown();
    if (this.options.store === 'sqlite') execFile('umount', ['-l', this.dataDir()], () => {});
  }

  private nextName(slot: string): string {
    const g = this.generation.get(slot) ?? 0;
    this.generation.set(slot, g + 1);
    return `${slot}-g${g}`;
  }

  private spawn(slot: string, name: string, args: string[], env: Record<string, string>): Member {
    const prefix = this.options.network ? this.net.exec(slot) : [];
    const [cmd, ...argv] = [...prefix, process.execPath, ...args];
    const child = spawn(cmd!, argv, {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output: string[] = [];
    const keep = (chunk: Buffer) => {
      output.push(chunk.toString());
      if (output.length > 200) output.shift();
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const member: Member = {
      slot,
      name,
      child,
      output,
      exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
      expectedExit: false,
      stopped: false,
    };
    void member.exited.then((code) =>
      this.options.log(`${name} exited (${code ?? member.child.signalCode})`),
    );
    return member;
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
