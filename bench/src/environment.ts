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
  settings: Record<string, string | number | boolean>;
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
        settings: c.settings,
      };
    }),
  );
}

async function redisInfo(): Promise<Record<string, string>> {
  const { Redis } = await import('ioredis');
  const redis = new Redis(process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/15');
  try {
    const version = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';
    const info: Record<string, string> = { redis_version: version };
    for (const key of ['appendonly', 'appendfsync', 'maxmemory-policy']) {
      info[key] = ((await redis.config('GET', key)) as string[])[1] ?? '?';
    }
    return info;
  } finally {
    redis.disconnect();
  }
}

/** Versions and settings of the servers the chosen contestants use (PostgreSQL, Redis). */
export async function services(names: string[]): Promise<Record<string, Record<string, string>>> {
  const found: Record<string, Record<string, string>> = {};
  const ask = async (key: string, get: () => Promise<Record<string, string>>) => {
    try {
      found[key] = await get();
    } catch (error) {
      found[key] = { error: message(error) };
    }
  };
  if (names.includes('pg-boss') || names.includes('graphile-worker')) await ask('postgres', postgresInfo);
  if (names.includes('bullmq')) await ask('redis', redisInfo);
  return found;
}
