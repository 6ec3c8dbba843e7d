import type { Server } from './server-cpu.ts';

// The one interface every contestant implements, so that each scenario is written once.
// A contestant has three sides, each run in its own process:
// - the harness (this benchmark's main process): prepares a fresh store, counts unfinished jobs, cleans up;
// - the client process: enqueues jobs (bulk, one by one, or at a fixed rate; see producer.ts);
// - one or more worker processes: consume jobs with a no-op handler (see probe.ts).

/** What every benchmark job carries: its number within the scenario and, where latency is measured, the
 * instant it was enqueued (`performance.timeOrigin + performance.now()` in the client process). */
export interface Payload {
  i: number;
  t?: number;
}

/** Connection details the harness hands to the client and worker processes (as JSON in the environment). */
export type Env = Record<string, string>;

/** A contestant's tuned settings, written into the results as they are. */
export type Settings = Record<string, string | number | boolean>;

/** Which Node.js the client and worker processes run on: the project's own (this process's), or the
 * Node 22 that the peers need (see runtime.ts). */
export type Runtime = 'project' | 'peer';

/** The producer side, inside the client process. */
export interface Client {
  /** Enqueues all `payloads` with the contestant's bulk API, in one call. */
  enqueueBulk(queue: string, payloads: Payload[]): Promise<void>;
  /** Enqueues one job with the contestant's single-job API. */
  enqueueOne(queue: string, payload: Payload): Promise<void>;
  /** Creates `count` recurring schedules on `queue`, schedule k carrying `{ i: k }`, each firing every
   * `periodMs` (only for contestants with {@link Contestant.schedules}). */
  schedule?(queue: string, count: number, periodMs: number): Promise<void>;
  /** Removes the schedules `schedule` created. */
  unschedule?(queue: string, count: number): Promise<void>;
  close(): Promise<void>;
}

/** The consumer side, inside a worker process: connected and ready, consuming only after `start()`. */
export interface Consumer {
  start(): Promise<void>;
  /** Stops consuming and lets running handlers finish. */
  stop(): Promise<void>;
}

/** The queue of the worker-crash scenario run with settings tuned for fast recovery (scenario
 * `crash-tuned`): a contestant gives its jobs, queue and workers there its {@link Contestant.fastRecovery}
 * settings, and its defaults everywhere else. */
export const FAST_RECOVERY_QUEUE = 'crash-tuned';

/** A contestant's settings for recovering a dead worker's jobs fast, or why it has none to set. */
export type FastRecovery = { recovery: string; recoverySeconds: number } | { unavailable: string };

/** The benchmark's handler: records the job (see probe.ts); `fireTime` is the nominal instant of a
 * scheduled job (epoch ms). It never throws. It returns a promise only in a worker that the worker-crash
 * scenario dooms: that promise never settles, so the jobs stay in flight until the process is killed. */
export type Handle = (payload: unknown, fireTime?: number) => void | Promise<void>;

/** A job system under test. */
export interface Contestant {
  /** Short name used on the command line (`--only`) and in result files. */
  readonly name: string;
  /** Name in tables and charts. */
  readonly label: string;
  readonly runtime: Runtime;
  /** Jobs per call of the bulk API in the drain scenario. */
  readonly bulkSize: number;
  readonly settings: Settings;
  /** The finest period of a recurring schedule and how it is set up; absent where the contestant has
   * no schedules that the accuracy scenario can measure. */
  readonly schedules?: { periodMs: number; note: string };
  /** The database server its jobs live in, whose CPU the drain measures; none for an embedded store. */
  readonly server?: Server;
  /** True where a scheduler node of the contestant runs in the harness process (Kairos): the drain
   * then reports the harness's CPU as the node's. Peers have no node: their workers use the store. */
  readonly nodeInHarness?: boolean;
  /** How a dead worker's jobs come back (the setting, and whether it is the default). */
  readonly recovery: string;
  /** The earliest, in seconds after a worker dies, that its jobs can run elsewhere with these settings
   * (from the contestant's documentation). Beyond the crash scenario's limit, its wait is idle time,
   * which the comparison overlaps with the schedule scenario (see run.ts). */
  readonly recoverySeconds: number;
  /** The settings of the `crash-tuned` scenario (on {@link FAST_RECOVERY_QUEUE}), from the contestant's
   * current options, or why there are none. */
  readonly fastRecovery: FastRecovery;
  /** The version under test, e.g. `12.38.0`. */
  version(): string;

  /** Harness: a fresh store (database, Redis) with `queues` ready to use. */
  setup(queues: string[]): Promise<Env>;
  /** Harness: how many jobs of `queue` the store does not count as completed yet. */
  unfinished(queue: string): Promise<number>;
  /** Harness: drops what `setup` made. */
  teardown(): Promise<void>;

  /** Client process: a connected producer. */
  connect(env: Env, queues: string[]): Promise<Client>;
  /** Worker process: a consumer of `queue` that calls `handle` once per job it runs. */
  consume(env: Env, queue: string, handle: Handle): Promise<Consumer>;
}
