import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A private network for the chaos suite: a bridge in the root namespace (the database and the
 * harness live there, at `.1`) and one network namespace per node or worker, joined to it by a
 * veth pair. Partitions drop packets silently at the receiving side (an nftables set of blocked
 * sources in each namespace's input hook), as a cut cable does: no reset, no error, just silence.
 * A lossy link drops a share of the packets the same way.
 *
 * Needs root, iproute2 and nftables (Debian: `apt-get install iproute2 nftables`).
 */
export class Network {
  static readonly BRIDGE = 'kcbr0';
  static readonly HOST = '10.213.0.1';
  private readonly members = new Map<string, { ns: string; ip: string }>();
  /** How many active cuts block `to ← from`, so that overlapping faults heal correctly. */
  private readonly blocks = new Map<string, number>();
  private readonly shaped = new Set<string>();

  /**
   * Removes what an earlier run that was killed may have left, then builds the bridge. One run at
   * a time per machine: the names are fixed, so a second run would tear down the first one's.
   */
  setup(): void {
    takeLock();
    this.teardown();
    run('ip', ['link', 'add', Network.BRIDGE, 'type', 'bridge']);
    run('ip', ['addr', 'add', `${Network.HOST}/24`, 'dev', Network.BRIDGE]);
    run('ip', ['link', 'set', Network.BRIDGE, 'up']);
    nft(null, FILTER);
  }

  /** A namespace `kc-<name>` at 10.213.0.<index>. */
  add(name: string, index: number): string {
    const ns = `kc-${name}`;
    const ip = `10.213.0.${index}`;
    const veth = `kcv-${name}`;
    run('ip', ['netns', 'add', ns]);
    run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    run('ip', ['link', 'set', veth, 'master', Network.BRIDGE, 'up']);
    run('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    nft(ns, FILTER);
    this.members.set(name, { ns, ip });
    return ip;
  }

  ip(name: string): string {
    return name === 'db' ? Network.HOST : this.member(name).ip;
  }

  /** The command prefix that runs a process inside the member's namespace. */
  exec(name: string): string[] {
    return ['ip', 'netns', 'exec', this.member(name).ns];
  }

  /** Cuts `a` and `b` apart in both directions (`db` is the root namespace). */
  cut(a: string, b: string): void {
    this.block(a, b);
    this.block(b, a);
  }

  heal(a: string, b: string): void {
    this.unblock(a, b);
    this.unblock(b, a);
  }

  /** Drops one packet in five between `a` and `b`, both ways. */
  lossy(a: string, b: string): void {
    for (const [to, from] of [
      [a, b],
      [b, a],
    ] as const) {
      nft(
        to === 'db' ? null : this.member(to).ns,
        `add element inet kairos_chaos lossy { ${this.ip(from)} }`,
      );
      this.shaped.add(`${to}<${from}`);
    }
  }

  unlossy(a: string, b: string): void {
    for (const [to, from] of [
      [a, b],
      [b, a],
    ] as const) {
      if (!this.shaped.delete(`${to}<${from}`)) continue;
      nft(
        to === 'db' ? null : this.member(to).ns,
        `delete element inet kairos_chaos lossy { ${this.ip(from)} }`,
      );
    }
  }

  /** Heals every cut and shaping. */
  healAll(): void {
    for (const key of [...this.blocks.keys()]) {
      const [to, from] = key.split('<');
      this.blocks.set(key, 1);
      this.unblock(to!, from!);
    }
    for (const key of [...this.shaped]) {
      const [to, from] = key.split('<');
      this.unlossy(to!, from!);
    }
  }

  /** Deletes the namespaces, the bridge and the root namespace's table. */
  teardown(): void {
    const list = tryRun('ip', ['netns', 'list']) ?? '';
    for (const line of list.split('\n')) {
      const ns = line.split(' ')[0];
      if (ns?.startsWith('kc-')) tryRun('ip', ['netns', 'del', ns]);
    }
    // A veth whose namespace went away with a killed run, or that a half-done `add` left behind.
    const links = tryRun('ip', ['-o', 'link', 'show']) ?? '';
    for (const match of links.matchAll(/^\d+: (kcv-[^:@\s]+)/gm)) tryRun('ip', ['link', 'del', match[1]!]);
    tryRun('ip', ['link', 'del', Network.BRIDGE]);
    tryRun('nft', ['delete', 'table', 'inet', 'kairos_chaos']);
    this.members.clear();
    this.blocks.clear();
    if (existsSync(LOCK) && Number(readFileSync(LOCK, 'utf8')) === process.pid) rmSync(LOCK);
    this.shaped.clear();
  }

  private block(to: string, from: string): void {
    const key = `${to}<${from}`;
    const n = this.blocks.get(key) ?? 0;
    this.blocks.set(key, n + 1);
    if (n === 0)
      nft(
        to === 'db' ? null : this.member(to).ns,
        `add element inet kairos_chaos blocked { ${this.ip(from)} }`,
      );
  }

  private unblock(to: string, from: string): void {
    const key = `${to}<${from}`;
    const n = this.blocks.get(key) ?? 0;
    if (n <= 1) {
      this.blocks.delete(key);
      if (n === 1)
        nft(
          to === 'db' ? null : this.member(to).ns,
          `delete element inet kairos_chaos blocked { ${this.ip(from)} }`,
        );
    } else this.blocks.set(key, n - 1);
  }

  private member(name: string) {
    const m = this.members.get(name);
    if (!m) throw new Error(`no namespace for ${name}`);
    return m;
  }
}

// `blocked` sources are dropped; of `lossy` sources one packet in five (netem is not in every
// kernel; nftables' random number generator is).
const LOCK = join(tmpdir(), 'kairos-chaos-network.pid');

/**
 * Takes the machine-wide lock of the namespaces atomically (O_EXCL): of two runs that start at
 * once, exactly one gets it. A lock whose holder died is taken over.
 */
function takeLock(): void {
  for (let tries = 0; tries < 3; tries++) {
    try {
      writeFileSync(LOCK, String(process.pid), { flag: 'wx' });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = Number(readFileSync(LOCK, 'utf8').trim() || '0');
    if (holder === process.pid) return;
    if (holder === 0) {
      // Created by a run that has not written its pid yet.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
      continue;
    }
    if (alive(holder))
      throw new Error(`another chaos run (pid ${holder}) holds the network namespaces; wait for it to end`);
    rmSync(LOCK, { force: true });
  }
  throw new Error(`could not take the chaos network lock ${LOCK}`);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const FILTER = `table inet kairos_chaos {
  set blocked { type ipv4_addr; }
  set lossy { type ipv4_addr; }
  chain input {
    type filter hook input priority 0; policy accept;
    ip saddr @blocked drop;
    ip saddr @lossy numgen random mod 100 < 20 drop;
  }
}`;

function nft(ns: string | null, script: string): void {
  const prefix = ns === null ? [] : ['ip', 'netns', 'exec', ns];
  const [cmd, ...args] = [...prefix, 'nft', '-f', '-'];
  try {
    execFileSync(cmd!, args, { input: script, stdio: 'pipe' });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`nft ${script} failed${ns ? ` in ${ns}` : ''}: ${stderr.trim()}`);
  }
}

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { stdio: 'pipe' }).toString();
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`${cmd} ${args.join(' ')} failed: ${stderr.trim() || (error as Error).message}`);
  }
}

function tryRun(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { stdio: 'pipe' }).toString();
  } catch {
    return undefined;
  }
}
