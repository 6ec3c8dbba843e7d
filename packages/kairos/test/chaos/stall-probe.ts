// The stall probe of a chaos run. Loaded with `node --import` into every node and worker (before
// clock-offset.ts, so it reads the real wall clock) and started by the harness in its own process.
// A timer due every 100 ms; when it wakes at least 200 ms late, the process ran none of its timers
// (heartbeats, lease renewals, sweeps) for that gap, and the probe appends a `stall` to the history
// with what the kernel says about the gap: the main thread's time on a CPU and its time runnable
// but waiting for one (/proc/<pid>/task/<pid>/schedstat). The checker (`stalls.ts`) tells the
// machine's stalls (waiting, or blocked in the kernel) from the process's own work (a handler that
// blocks its event loop) and from the nemesis's SIGSTOPs. Cost: one timer and one small /proc read
// per 100 ms per process.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { appendEvent, type LoadEvent, type StallEvent } from './history-log.ts';

/** The real wall clock, taken before clock-offset.ts (loaded after this file) shifts `Date`. */
const wallNow = Date.now.bind(Date);

export const PROBE_INTERVAL_MS = 100;
/** The shortest gap recorded: the interval plus 200 ms late. */
export const PROBE_RECORD_MS = 300;

interface Sched {
  cpuMs: number;
  waitMs: number | null;
}

/** The main thread's CPU and run-queue time so far (ms), or the process's CPU where /proc has none. */
function schedReader(): () => Sched {
  const path = `/proc/${process.pid}/task/${process.pid}/schedstat`;
  const kernel = (): Sched => {
    const [run, wait] = readFileSync(path, 'utf8').split(' ').map(Number);
    return { cpuMs: (run ?? 0) / 1e6, waitMs: (wait ?? 0) / 1e6 };
  };
  try {
    kernel();
    return kernel;
  } catch {
    return () => {
      const usage = process.cpuUsage();
      return { cpuMs: (usage.user + usage.system) / 1000, waitMs: null };
    };
  }
}

/** Starts the probe of process `name`; returns its stop. The timer does not keep the process alive. */
export function startStallProbe(name: string, record: (stall: StallEvent) => void): () => void {
  const sched = schedReader();
  let lastTick = performance.now();
  let last = sched();
  const timer = setInterval(() => {
    const tick = performance.now();
    const now = sched();
    const gap = tick - lastTick;
    if (gap >= PROBE_RECORD_MS) {
      const end = wallNow();
      record({
        t: 'stall',
        process: name,
        start: Math.round(end - gap),
        end,
        cpuMs: Math.round(now.cpuMs - last.cpuMs),
        waitMs: now.waitMs === null || last.waitMs === null ? null : Math.round(now.waitMs - last.waitMs),
      });
    }
    lastTick = tick;
    last = now;
  }, PROBE_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** The `some … total=<µs>` of a /proc/pressure file, or null. */
function pressureTotal(file: string): number | null {
  try {
    const match = /^some .*total=(\d+)/m.exec(readFileSync(file, 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** Samples the machine's load and CPU and I/O pressure every `everyMs`; returns its stop. */
export function startLoadSampler(record: (sample: LoadEvent) => void, everyMs = 1000): () => void {
  let lastAt = performance.now();
  let lastCpu = pressureTotal('/proc/pressure/cpu');
  let lastIo = pressureTotal('/proc/pressure/io');
  const share = (now: number | null, before: number | null, ms: number) =>
    now === null || before === null || ms <= 0
      ? null
      : Math.round(Math.min(1, (now - before) / 1000 / ms) * 1000) / 10;
  const timer = setInterval(() => {
    const at = performance.now();
    const cpu = pressureTotal('/proc/pressure/cpu');
    const io = pressureTotal('/proc/pressure/io');
    let load1 = Number.NaN;
    try {
      load1 = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
    } catch {
      // no /proc/loadavg
    }
    record({
      t: 'load',
      at: wallNow(),
      load1,
      cpuSomePct: share(cpu, lastCpu, at - lastAt),
      ioSomePct: share(io, lastIo, at - lastAt),
    });
    lastAt = at;
    lastCpu = cpu;
    lastIo = io;
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

// In a node or worker of a chaos run (the harness sets both), the probe starts on import.
const processName = process.env.CHAOS_PROCESS;
const history = process.env.CHAOS_HISTORY;
if (processName && history) startStallProbe(processName, (stall) => appendEvent(history, stall));
