// The store ceiling on this machine, so that every figure can be read as a fraction of the hardware's
// limit (`npm run bench:ceiling -w bench`, and part of `--all`):
// - PostgreSQL: pgbench with a single-row UPDATE per commit (the cost of one durable write), 8 clients;
// - Redis: redis-benchmark SET and GET, 50 clients, no pipelining.
// Alone, it writes bench/results/ceiling-<timestamp>.json with the servers' settings.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { serviceSettings } from './environment.ts';
import { createDatabase } from './pg.ts';
import { saveResult } from './results.ts';
import { Timings } from './timings.ts';

export interface CeilingResult {
  /** Single-row UPDATE transactions per second (pgbench, 8 clients, 10 s). */
  postgresUpdatesPerSecond: number;
  redisSetPerSecond: number;
  redisGetPerSecond: number;
}

const SECONDS = 10;

/** Runs pgbench on a fresh database (dropped afterwards) and redis-benchmark on database 15. */
export async function ceiling(timings = new Timings()): Promise<CeilingResult> {
  const database = await createDatabase('ceiling');
  try {
    const url = new URL(database.url);
    const target = ['-h', url.hostname, '-p', url.port || '5432', '-U', url.username || 'postgres'];
    const name = url.pathname.slice(1);
    await timings.time('ceiling: pgbench -i', async () =>
      execFileSync('pgbench', [...target, '-i', '-s', '10', '-q', name], { stdio: 'ignore' }),
    );
    const script = join(tmpdir(), `kairos-ceiling-${process.pid}.sql`);
    writeFileSync(
      script,
      '\\set aid random(1, 1000000)\nUPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = :aid;\n',
    );
    const out = await timings.time('ceiling: pgbench', async () =>
      execFileSync(
        'pgbench',
        [...target, '-n', '-M', 'prepared', '-c', '8', '-j', '2', '-T', String(SECONDS), '-f', script, name],
        { encoding: 'utf8' },
      ),
    );
    const tps = Number(/tps = ([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
    const redis = await timings.time('ceiling: redis-benchmark', async () =>
      execFileSync(
        'redis-benchmark',
        ['-h', '127.0.0.1', '-p', '6379', '--dbnum', '15', '-t', 'set,get', '-n', '200000', '-c', '50', '-q'],
        { encoding: 'utf8' },
      ),
    );
    const rate = (command: string) =>
      Number(new RegExp(`${command}: ([\\d.]+) requests per second`).exec(redis)?.[1] ?? Number.NaN);
    return {
      postgresUpdatesPerSecond: Math.round(tps),
      redisSetPerSecond: Math.round(rate('SET')),
      redisGetPerSecond: Math.round(rate('GET')),
    };
  } finally {
    await database.drop();
  }
}

/** The result in two lines. */
export function describeCeiling(r: CeilingResult): string {
  return [
    `Store ceiling: PostgreSQL ${r.postgresUpdatesPerSecond} single-row UPDATE commits/s (pgbench, 8 clients)`,
    `              Redis ${r.redisSetPerSecond} SET/s, ${r.redisGetPerSecond} GET/s (redis-benchmark, 50 clients)`,
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  const result = await ceiling();
  console.log(describeCeiling(result));
  saveResult('ceiling', {
    result,
    services: { postgres: await serviceSettings('postgres'), redis: await serviceSettings('redis') },
  });
}
