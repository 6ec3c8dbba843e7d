// The harness side of the client and worker processes: fork one, call its operations over IPC, stop it.
import { fork } from 'node:child_process';
import type { Env } from './contestant.ts';

/** A request from the harness to a child process. */
export interface CallMessage {
  type: 'call';
  id: number;
  op: string;
  args: unknown;
}

/** What a child process sends back: once `ready` (or `fatal`), then one `reply` per call. */
export type ChildMessage =
  | { type: 'ready' }
  | { type: 'fatal'; error: string }
  | { type: 'reply'; id: number; value?: unknown; error?: string };

/** What a child process is started with. */
export interface ChildSpec {
  /** The Node.js binary to run it on. */
  execPath: string;
  role: 'client' | 'worker';
  contestant: string;
  env: Env;
  queues: string[];
  /** Extra environment variables, e.g. `BENCH_CONCURRENCY`. */
  extra?: Record<string, string>;
}

/** A running child process. */
export interface Child {
  readonly pid: number;
  /** Runs operation `op` in the child and resolves with its result. */
  call<T>(op: string, args?: unknown): Promise<T>;
  /** Asks the child to finish and exit; kills it if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** `kill -9`, resolving once the process is gone. */
  kill(): Promise<void>;
}

/** Forks a client or worker process (bench/src/child.ts) and resolves once it is connected and ready. */
export function spawnChild(spec: ChildSpec): Promise<Child> {
  const child = fork(new URL('./child.ts', import.meta.url), [], {
    execPath: spec.execPath,
    // BENCH_CHILD_ARGS: extra Node.js flags for client and worker processes, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
    execArgv: [
      '--import',
      'tsx',
      '--conditions=@kairos/source',
      ...(process.env.BENCH_CHILD_ARGS?.split(' ').filter(Boolean) ?? []),
    ],
    env: {
      ...process.env,
      ...spec.extra,
      BENCH_ROLE: spec.role,
      BENCH_CONTESTANT: spec.contestant,
      BENCH_ENV: JSON.stringify(spec.env),
      BENCH_QUEUES: spec.queues.join(','),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let next = 0;
  let exited = false;
  // A message sent as the child exits fails on its closed IPC channel (EPIPE): the pending call is
  // rejected by the exit below; unhandled, the 'error' event would end the harness instead.
  child.on('error', (error) => {
    if (!exited) console.error(`${spec.role} process ${child.pid}: ${error.message}`);
  });
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exit.then(() => {
    exited = true;
    for (const { reject } of pending.values()) reject(new Error(`${spec.role} process ${child.pid} exited`));
    pending.clear();
  });
  child.on('message', (raw) => {
    const message = raw as ChildMessage;
    if (message.type !== 'reply') return;
    const call = pending.get(message.id);
    pending.delete(message.id);
    if (message.error !== undefined) call?.reject(new Error(message.error));
    else call?.resolve(message.value);
  });
  const handle: Child = {
    pid: child.pid ?? 0,
    call<T>(op: string, args?: unknown): Promise<T> {
      if (exited) return Promise.reject(new Error(`${spec.role} process ${child.pid} has exited`));
      const id = next++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: (value) => resolve(value as T), reject });
        child.send({ type: 'call', id, op, args } satisfies CallMessage);
      });
    },
    async kill() {
      if (!exited) child.kill('SIGKILL');
      await exit;
    },
    async stop(graceMs = 15_000) {
      if (exited) return;
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await handle.call('exit').catch(() => undefined);
      await exit;
      clearTimeout(timer);
    },
  };
  return new Promise<Child>((resolve, reject) => {
    const onExit = (code: number | null) => reject(new Error(`${spec.role} process exited early (${code})`));
    child.once('exit', onExit);
    child.on('message', (raw) => {
      const message = raw as ChildMessage;
      if (message.type === 'ready') {
        child.off('exit', onExit);
        resolve(handle);
      } else if (message.type === 'fatal') {
        child.off('exit', onExit);
        child.kill('SIGKILL');
        reject(new Error(`${spec.contestant} ${spec.role}: ${message.error}`));
      }
    });
  });
}
