// What the results were measured on: the machine, the runtimes, the servers and their settings.

import { cpus, release, totalmem } from 'node:os';
import { loadContestant } from './contestants/index.ts';
import { postgresInfo } from './pg.ts';
import { nodeVersion } from './runtime.ts';
import type { Server } from './server-cpu.ts';
import { message } from './util.ts';

/** The machine the benchmark ran on. */
export interface Machine {
  cpu: string | undefined;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
}

/** The machine running this process. */
export function machine(): Machine {
  return {
    cpu: cpus()[0]?.model,
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `Linux ${release()}`,
    node: process.version,
  };
}

/** A contestant as it was measured. */
export interface ContestantInfo {
  name: string;
  label: string;
  version: string;
  node: string;
  /** The database server its jobs live in; absent for an embedded store. */
  server?: Server;
  /** True where its node runs in the harness process (Kairos); absent for peers and in older files. */
  nodeInHarness?: boolean;
  settings: Record<string, string | number | boolean>;
  /** How a dead worker's jobs come back by default, and with the fast-recovery settings (or why there
   * are none); absent in older result files. */
  recovery?: string;
  fastRecovery?: string;
}

/** Name, label, version, runtime and settings of each contestant in `names`. */
export async function describeContestants(names: string[]): Promise<ContestantInfo[]> {
  return Promise.all(
    names.map(async (name) => {
      const c = await loadContestant(name);
      return {
        name,
        label: c.label,
        version: c.version(),
        node: nodeVersion(c.runtime),
        ...(c.server ? { server: c.server } : {}),
        ...(c.nodeInHarness ? { nodeInHarness: true } : {}),
        settings: c.settings,
        recovery: c.recovery,
        fastRecovery:
          'unavailable' in c.fastRecovery ? `none: ${c.fastRecovery.unavailable}` : c.fastRecovery.recovery,
      };
    }),
  );
}

/** The Redis settings that bear on a queue's speed and durability. */
export const REDIS_SETTINGS = ['appendonly', 'appendfsync', 'maxmemory', 'maxmemory-policy', 'save'] as const;

async function redisInfo(): Promise<Record<string, string>> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/15');
  try {
    const version = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';
    const info: Record<string, string> = { redis_version: version };
    for (const key of REDIS_SETTINGS) info[key] = ((await redis.config('GET', key)) as string[])[1] ?? '?';
    return info;
  } finally {
    redis.disconnect();
  }
}

/**
 * The settings of `server` as the live service reports them (CONFIG GET, current_setting), read while a
 * contestant's run still has it set up: BullMQ's runs switch Redis's AOF on and back off at teardown, so
 * settings read after the run would be the machine's, not the run's. Errors are recorded, not thrown.
 */
export async function serviceSettings(server: Server): Promise<Record<string, string>> {
  try {
    return server === 'postgres' ? await postgresInfo() : await redisInfo();
  } catch (error) {
    return { error: message(error) };
  }
}
