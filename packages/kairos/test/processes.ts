import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';

export { freePort } from './net.ts';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const children = new Set<ChildProcess>();

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

export interface Child {
  process: ChildProcess;
  output: () => string;
  /** Resolves when the process exited. */
  exited: Promise<number | null>;
}

/**
 * Runs `node --import tsx <script> ...args` with extra environment; output is kept for failure messages.
 * `root` is the checkout whose tsx runs it (another release's worktree in upgrade tests).
 */
export function spawnTs(script: string, args: string[], env: Record<string, string>, root = ROOT): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return { process: child, output: () => output, exited };
}

/** `kairos <args>` as a child process: this checkout's, or the one at `root` (another release). */
export function spawnKairos(args: string[], env: Record<string, string>, root?: string): Child {
  return root ? spawnTs(`${root}/packages/kairos/src/cli/main.ts`, args, env, root) : spawnTs(CLI, args, env);
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  check: () => Promise<T | undefined | false>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
