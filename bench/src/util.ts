// Small helpers shared by the harness and the child processes.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

/** Milliseconds since the epoch with sub-millisecond resolution; comparable across processes on one machine. */
export const now = (): number => performance.timeOrigin + performance.now();

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The `bench/` folder. */
export const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));

/** The installed version of package `name`, found the way Node.js finds it from `bench/`. */
export function packageVersion(name: string): string {
  for (let dir = BENCH_DIR; ; dir = dirname(dir)) {
    const file = join(dir, 'node_modules', name, 'package.json');
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
    if (dirname(dir) === dir) return 'unknown';
  }
}

/** The message of an error, whatever was thrown. */
export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Waits until `check()` is true, polling every `everyMs`; false if `timeoutMs` passed first. */
export async function until(check: () => Promise<boolean> | boolean, everyMs: number, timeoutMs: number) {
  const deadline = now() + timeoutMs;
  while (!(await check())) {
    if (now() > deadline) return false;
    await sleep(everyMs);
  }
  return true;
}
