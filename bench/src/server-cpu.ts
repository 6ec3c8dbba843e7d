// CPU time of the database server a contestant keeps its jobs in, read from /proc (Linux, a server on
// this machine): every PostgreSQL process alive, plus what the postmaster's ended children used (a
// connection's backend exits with it); Redis is one process. Null where it cannot be read.
import { readdirSync, readFileSync } from 'node:fs';

export type Server = 'postgres' | 'redis';

const TICK_MS = 10; // USER_HZ is 100 on Linux.

interface Stat {
  comm: string;
  ppid: number;
  /** utime + stime, and cutime + cstime (children waited for), in ticks. */
  own: number;
  children: number;
}

function stat(pid: string): Stat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    const f = text.slice(close + 2).split(' ');
    // Fields after the name, from 3 (state): ppid is 4, utime 14, stime 15, cutime 16, cstime 17.
    const at = (field: number) => Number(f[field - 3]);
    return { comm, ppid: at(4), own: at(14) + at(15), children: at(16) + at(17) };
  } catch {
    return null;
  }
}

/** The server's CPU time so far, in ms; null without a readable server process. */
export function serverCpuMs(server: Server): number | null {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return null;
  }
  const comm = server === 'postgres' ? 'postgres' : 'redis-server';
  const stats = new Map<number, Stat>();
  for (const pid of pids) {
    const s = stat(pid);
    if (s?.comm === comm) stats.set(Number(pid), s);
  }
  if (stats.size === 0) return null;
  let ticks = 0;
  for (const s of stats.values()) {
    ticks += s.own;
    // The postmaster (its parent is no server process) also carries its ended backends.
    if (!stats.has(s.ppid)) ticks += s.children;
  }
  return ticks * TICK_MS;
}

/** Time on CPU of process `pid` so far, in ns: /proc/<pid>/schedstat (ns), else utime + stime of
 * /proc/<pid>/stat (10-ms ticks); null once the process is gone. */
export function processCpuNs(pid: number): number | null {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    const s = stat(String(pid));
    return s ? s.own * TICK_MS * 1e6 : null;
  }
}

/** The whole machine's CPU time so far, in ms, from /proc/stat: busy (all but idle and iowait) and
 * in all, summed over the cores. */
export function machineCpuMs(): { busyMs: number; totalMs: number } {
  const ticks = readFileSync('/proc/stat', 'utf8')
    .split('\n')[0]!
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  const total = ticks.reduce((sum, t) => sum + t, 0);
  const idle = ticks[3]! + ticks[4]!;
  return { busyMs: (total - idle) * TICK_MS, totalMs: total * TICK_MS };
}

/** Server CPU (ns) between two reads of backends' CPU by pid: backends seen at both, and new ones
 * from their start (one that ended between the reads is lost). */
export function spentNs(before: Map<number, number> | null, after: Map<number, number> | null): number {
  if (!before || !after) return 0;
  let ns = 0;
  for (const [pid, cpu] of after) ns += cpu - (before.get(pid) ?? 0);
  return ns;
}

/** CPU so far (ns) of each PostgreSQL backend connected to database `name`, by pid (from
 * pg_stat_activity, through `pool`: a server on this machine). */
export async function databaseBackendsNs(
  pool: { query(sql: string, params: unknown[]): Promise<{ rows: Array<{ pid: number }> }> },
  name: string,
): Promise<Map<number, number>> {
  const { rows } = await pool.query('SELECT pid FROM pg_stat_activity WHERE datname = $1', [name]);
  const ns = new Map<number, number>();
  for (const { pid } of rows) {
    const cpu = processCpuNs(pid);
    if (cpu !== null) ns.set(pid, cpu);
  }
  return ns;
}

/** CPU time of process `pid` so far, all its threads, in ms: utime + stime of /proc/<pid>/stat
 * (10-ms ticks); null once the process is gone. A Node.js process's GC and libuv threads count here,
 * not in the main thread's schedstat ({@link processCpuNs}). */
export function processTreeCpuMs(pid: number): number | null {
  const s = stat(String(pid));
  return s ? s.own * TICK_MS : null;
}
