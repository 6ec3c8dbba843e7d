import { availableParallelism, freemem, loadavg, totalmem } from 'node:os';
import { clearTimeout, setTimeout } from 'node:timers';
import type {
  Assignment,
  AttemptRef,
  HeartbeatRequest,
  JobSpec,
  JsonObject,
  PollRequest,
  PollResponse,
  RegisterRequest,
  Report,
  ReportResponse,
  Task,
  TaskReturn,
} from '@kairos/client';
import {
  checkTaskParams,
  HANDLER_PATTERN,
  KairosApiError,
  KairosClient,
  TaskParamsError,
} from '@kairos/client';
import { context } from '@opentelemetry/api';
import { type AttemptSpan, endAttemptSpan, startAttemptSpan } from './attempt-span.ts';
import { Backoff } from './backoff.ts';
import { createRunContext, type Handler, LazyAbort, type RunContext, withParams } from './context.ts';
import { formatDuration } from './duration.ts';
import { CancelledError, NonRetryableError, TimeoutError } from './errors.ts';
import { HeldRuns } from './held-runs.ts';
import { httpHandler } from './http-task.ts';
import { compileIsolated, type IsolatedHandler, isolatedHandler } from './isolated.ts';
import { WorkerLease } from './lease.ts';
import { LogShipper } from './log-shipper.ts';
import { errorField, type WorkerLogger } from './logger.ts';
import { NodeClock } from './node-clock.ts';
import {
  isConnectionError,
  isUnknownField,
  isValidationFailed,
  isWorkerNotFound,
  NodePool,
  namesField,
} from './nodes.ts';
import { type ResolvedOptions, resolveOptions, type WorkerOptions } from './options.ts';
import { classifyOutcome, type Settlement } from './outcome.ts';
import { Reporter } from './reporter.ts';
import { shellHandler } from './shell.ts';
import { TimeLimits } from './time-limits.ts';
import { monotonicNow, settlesWithin, sleep, Wakeup } from './timing.ts';

/** The node refuses polls for more runs than this. */
const MAX_POLL = 1000;
/** The node refuses heartbeats listing more attempts than this. */
const MAX_HEARTBEAT = 10_000;
/** Node's timers overflow past this (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** An empty poll answer quicker than this means the node does not wait: pause instead of spinning. */
const QUICK_EMPTY_POLL_MS = 50;
const EMPTY_POLL_PAUSE_MS = 1000;
/** How long an ended attempt's report waits for its log lines to be sent first. */
const LOG_FLUSH_BEFORE_REPORT_MS = 2000;

/** What the node answered at registration. */
interface Session {
  workerId: string;
  heartbeatMs: number;
  leaseMs: number;
  pollWaitMs: number;
}

/** One attempt whose handler is running. */
interface RunningAttempt {
  ref: AttemptRef;
  /** Its key in the running map. */
  key: string;
  timeoutMs: number;
  abort: LazyAbort;
  /** When its time limit ends (epoch ms); null when the limit is left to the node. */
  limitAt: number | null;
  /** The time limit fired: whatever the handler does next, the attempt timed out. */
  timedOut: boolean;
  /** The node cancelled it, or shutdown reported it already: the handler's own end is not reported. */
  abandoned: boolean;
  /** Settles when the handler returns or throws. */
  done: Promise<void>;
  /** Its span (tracing), ended with its report. */
  span: AttemptSpan;
}

type State = 'idle' | 'starting' | 'started' | 'stopping' | 'stopped';

/**
 * A Kairos worker: connects out to a node, takes the runs of its group's jobs whose handler it
 * registered, runs up to `concurrency` of them at a time and reports how each attempt ended.
 *
 * ```ts
 * import { Worker } from '@kairos/worker';
 *
 * new Worker({ url: 'http://127.0.0.1:7070', token: process.env.KAIROS_WORKER_TOKEN, group: 'default' })
 *   .handle('send-report', async (ctx) => {
 *     ctx.log.info('sending', { to: ctx.params.to });
 *     return { sent: true };
 *   })
 *   .start();
 * ```
 *
 * Lost connections are retried forever with backoff (and the next URL, if several were given);
 * they never throw. SIGTERM and SIGINT stop the worker gracefully unless `handleSignals` is false.
 */
export class Worker {
  readonly #options: ResolvedOptions;
  readonly #log: WorkerLogger;
  readonly #nodes: NodePool;
  readonly #reporter: Reporter;
  readonly #logs: LogShipper;
  readonly #handlers = new Map<string, Handler>();
  /** Jobs this worker's code declares, written at start (see `declare`). */
  readonly #declared = new Map<string, JobSpec>();
  readonly #running = new Map<string, RunningAttempt>();
  /** Attempts whose handler ended and whose report waits for their log lines to be sent. */
  readonly #ending = new Map<string, AttemptRef>();
  readonly #limits = new TimeLimits<RunningAttempt>((running) => this.#timedOut(running));
  /** Claimed attempts not started yet: before their instant (fire ahead), or waiting for a slot. */
  readonly #held = new HeldRuns(() => this.#startDue());
  /** Maps held runs' instants from each node's clock to this process's. */
  readonly #nodeClock = new NodeClock();
  readonly #slotFreed = new Wakeup();
  /** Aborted when stop() begins: no new work. */
  readonly #stopPolling = new AbortController();
  /** Aborted when stop() is done with the node: no more heartbeats, retries or registrations. */
  readonly #closed = new AbortController();
  #state: State = 'idle';
  #session: Session | null = null;
  /** The registration in progress after the node forgot this worker. */
  #registering: Promise<void> | null = null;
  #starting: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;
  #pollLoopDone: Promise<void> | null = null;
  /** The node refused polls with `ahead` (it predates fire ahead): prefetch is off from then on. */
  #aheadRefused = false;
  #heartbeatLoopDone: Promise<void> | null = null;
  /** The lease this worker can show: held runs start only while it is live. */
  readonly #lease = new WorkerLease();
  /** Held runs wait for a live lease (logged once per streak). */
  #waitingForLease = false;
  /** The number of the last poll sent; the node writes it with the runs that poll claims. */
  #pollSeq = 0;
  /**
   * Every poll up to this number has been answered (its runs are held) or abandoned. A heartbeat
   * says so, and the node gives back the attempts claimed by those polls that it does not list.
   */
  #polledSeq = 0;
  /** The node refused `seq` / `polled` (it predates them): not sent from then on. */
  #seqRefused = false;
  /** The node refused `reports` in a poll (it predates them): reports go in requests of their own. */
  #pollReportsRefused = false;
  /** The node refused `resources` at registration (older node): not sent again. */
  #resourcesRefused = false;
  /** The node refused `load` in a heartbeat (older node): not sent again. */
  #loadRefused = false;

  /** @throws TypeError when an option is invalid. */
  constructor(options: WorkerOptions) {
    this.#options = resolveOptions(options);
    this.#log = this.#options.logger;
    this.#nodes = new NodePool(this.#options.urls, this.#options.token, this.#log, this.#options.namespace);
    this.#reporter = new Reporter((reports) => this.#sendReports(reports), this.#log);
    // Built-in kinds are handlers too, under names no user handler may take.
    if (this.#options.shell) this.#handlers.set('kairos:shell', shellHandler(this.#options.shell));
    if (this.#options.http) this.#handlers.set('kairos:http', httpHandler(this.#options.http));
    this.#logs = new LogShipper(async (request) => {
      const id = await this.#workerId();
      if (id === null) throw new Error('the worker is not registered');
      return this.#nodes.call((client) => client.sendLogs(id, request), undefined, true);
    }, this.#log);
  }

  /** The id the node gave this worker; null before registration (and while registering again). */
  get id(): string | null {
    return this.#session?.workerId ?? null;
  }

  /** How many handlers are running now. */
  get running(): number {
    return this.#running.size;
  }

  /** How many claimed runs wait to start: before their instant (see `prefetch`), or for a free slot. */
  get held(): number {
    return this.#held.size;
  }

  /**
   * Registers the handler of the jobs whose `handler` is `name`. Chainable. A function runs in
   * this process; `{ module, isolated: true }` runs the module's export in a child process per
   * attempt, which is killed when it ignores a cancel or a timeout (see {@link IsolatedHandler}).
   * @throws Error after start(), or when `name` already has a handler.
   */
  handle(name: string, fn: Handler | IsolatedHandler): this;
  /**
   * Registers the handler of a typed task (`defineTask` of `@kairos/client`, shared with the
   * producers): `ctx.params` and the return value have the task's types; a task with a params
   * schema checks each run's params first, and a run whose params it refuses fails without a retry.
   */
  handle<Params extends JsonObject, Result extends TaskReturn>(
    task: Task<Params, Result>,
    fn: (ctx: RunContext<Params>) => Promise<Result> | Result,
  ): this;
  handle(target: string | Task<JsonObject, TaskReturn>, fn: unknown): this {
    if (typeof target === 'object' && target !== null) {
      const task = target;
      const typed = fn as Handler<JsonObject>;
      if (typeof typed !== 'function') {
        throw new TypeError(`Worker.handle('${task.handler}'): the handler of a task must be a function`);
      }
      const checked: Handler =
        task.params === undefined
          ? typed
          : async (ctx) => {
              let params: JsonObject;
              try {
                params = await checkTaskParams(task, ctx.params);
              } catch (error) {
                if (error instanceof TaskParamsError) throw new NonRetryableError(error.message);
                throw error;
              }
              return typed(withParams(ctx, params));
            };
      return this.handle(task.handler, checked);
    }
    const name = target;
    if (this.#state !== 'idle') {
      throw new Error(`Worker.handle('${name}'): handlers must be added before start()`);
    }
    if (typeof name !== 'string' || name.trim() === '') {
      throw new TypeError('Worker.handle: name must be a non-empty string');
    }
    if (typeof fn === 'object' && fn !== null && (fn as IsolatedHandler).isolated === true) {
      fn = isolatedHandler(compileIsolated(name, fn as IsolatedHandler));
    }
    if (typeof fn !== 'function') {
      throw new TypeError(
        `Worker.handle('${name}'): the handler must be a function or { module, isolated: true }`,
      );
    }
    if (name.startsWith('kairos:')) {
      throw new Error(
        `Worker.handle('${name}'): names starting with kairos: are built-in (see the tasks option)`,
      );
    }
    if (!HANDLER_PATTERN.test(name)) {
      // The node refuses such a name at registration: no job could name it.
      throw new TypeError(
        `Worker.handle('${name}'): a handler name is letters, digits and ._:/-, starting with a letter or digit`,
      );
    }
    if (this.#handlers.has(name)) {
      throw new Error(`Worker.handle('${name}'): a handler with this name is already registered`);
    }
    this.#handlers.set(name, fn as Handler);
    return this;
  }

  /**
   * Declares a job next to its handler: when the worker starts, it writes the job (in its group,
   * unless the spec names another), owned by the `jobs.owner` option and marked with its
   * `jobs.revision`. Workers of one release write nothing new (an unchanged job is not written);
   * a worker of an older release changes nothing (`STALE_REVISION`, logged), so the newest code's
   * definition wins whatever the order in which workers start. A job an operator paused stays
   * paused unless the spec says `paused`. Chainable; before start().
   */
  declare(spec: JobSpec): this {
    if (this.#state !== 'idle') throw new Error(`Worker.declare('${spec?.name}'): before start()`);
    if (!this.#options.jobs)
      throw new Error('Worker.declare(): set the jobs option ({ revision }) to declare jobs');
    if (typeof spec !== 'object' || spec === null || typeof spec.name !== 'string')
      throw new TypeError('Worker.declare(spec): a job spec with a name');
    if (this.#declared.has(spec.name)) throw new Error(`Worker.declare('${spec.name}'): declared twice`);
    this.#declared.set(spec.name, spec);
    return this;
  }

  /**
   * Registers with the node, then polls for runs and heartbeats in the background. Resolves once
   * registered: it waits through connection errors, but rejects when the node refuses the
   * registration (a wrong token, for example) or when no handler was added. Idempotent.
   */
  start(): Promise<void> {
    if (!this.#starting && this.#handlers.size === 0) {
      // Not remembered: start() may be called again once handlers are added.
      return Promise.reject(new Error('Worker.start(): no handlers; call handle(name, fn) first'));
    }
    this.#starting ??= this.#start();
    return this.#starting;
  }

  /**
   * Stops gracefully: no new runs, running handlers get `shutdownGraceMs` to finish, then their
   * signal aborts with a {@link CancelledError} and their attempts are reported as failed
   * (`WorkerShutdown`, retried at once elsewhere). Runs held for their instant (`prefetch`) are
   * this worker's attempts already: they still start at their instant within the grace; those
   * whose instant is beyond it are reported `WorkerShutdown` without starting, retried from their
   * instant on. Then the last reports are sent (for at most `shutdownGraceMs` more) and the worker
   * unregisters. Idempotent; never rejects.
   */
  stop(): Promise<void> {
    this.#stopping ??= this.#shutdown().catch((err: unknown) => {
      this.#log.error('error while stopping the worker', { err: errorField(err) });
    });
    return this.#stopping;
  }

  async #start(): Promise<void> {
    if (this.#state !== 'idle') throw new Error('Worker.start(): this worker was stopped; create a new one');
    this.#state = 'starting';
    this.#installSignalHandlers();
    let session: Session | null;
    try {
      // Before the first registration, stop() gives up at once: there is nothing to wind down.
      session = await this.#register(this.#stopPolling.signal, true);
    } catch (err) {
      this.#state = 'stopped';
      this.#removeSignalHandlers();
      this.#closed.abort();
      throw err;
    }
    this.#session = session;
    if (session === null || this.#stopPolling.signal.aborted) return;
    try {
      await this.#writeDeclared();
    } catch (err) {
      // A declaration the node refuses is a mistake in the code or its token: say so at start.
      await this.#unregisterQuietly(session);
      this.#state = 'stopped';
      this.#removeSignalHandlers();
      this.#closed.abort();
      throw err;
    }
    this.#state = 'started';
    this.#log.info('worker registered', { workerId: session.workerId, handlers: [...this.#handlers.keys()] });
    this.#pollLoopDone = this.#pollLoop().catch((err: unknown) => this.#crashed('poll', err));
    this.#heartbeatLoopDone = this.#heartbeatLoop().catch((err: unknown) => this.#crashed('heartbeat', err));
  }

  /** Writes the declared jobs (see `declare`), through the first node that answers. */
  async #writeDeclared(): Promise<void> {
    const jobs = this.#options.jobs;
    if (!jobs || this.#declared.size === 0) return;
    const token = jobs.token ?? this.#options.token;
    for (const spec of this.#declared.values()) {
      const body: JobSpec = {
        ...spec,
        group: spec.group ?? this.#options.group,
        owner: jobs.owner,
        revision: jobs.revision,
      };
      for (const [i, url] of this.#options.urls.entries()) {
        try {
          const namespace = this.#options.namespace;
          const job = await new KairosClient({ url, token, ...(namespace ? { namespace } : {}) }).putJob(
            body,
          );
          this.#log.debug('declared job written', { job: job.name, version: job.version });
          break;
        } catch (err) {
          if (err instanceof KairosApiError && err.code === 'STALE_REVISION') {
            this.#log.info('a newer release declared this job; it stays as that release wrote it', {
              job: spec.name,
              revision: jobs.revision,
              stored: (err.details as { revision?: number } | undefined)?.revision,
            });
            break;
          }
          if (isConnectionError(err) && i < this.#options.urls.length - 1) continue;
          throw err;
        }
      }
    }
  }

  /** After a failed start: the node forgets the worker at once instead of at its lease's end. */
  async #unregisterQuietly(session: Session): Promise<void> {
    await this.#nodes.call((client) => client.unregister(session.workerId)).catch(() => undefined);
  }

  async #shutdown(): Promise<void> {
    const previous = this.#state;
    if (previous === 'stopped') return;
    this.#state = 'stopping';
    this.#removeSignalHandlers();
    this.#stopPolling.abort();
    await this.#starting?.catch(() => {});
    // No attempt can start after the poll loop ended.
    await this.#pollLoopDone;
    const grace = this.#options.shutdownGraceMs;
    if (this.#running.size > 0 || this.#held.size > 0) {
      this.#log.info('waiting for running handlers', {
        running: this.#running.size,
        held: this.#held.size,
        graceMs: grace,
      });
      const deadline = Date.now() + grace;
      const graceOver = new AbortController();
      const timer = setTimeout(() => graceOver.abort(), grace);
      await this.#held.whenEmpty(graceOver.signal);
      clearTimeout(timer);
      await settlesWithin(
        Promise.all([...this.#running.values()].map((r) => r.done)),
        Math.max(0, deadline - Date.now()),
      );
    }
    this.#abandonRunning();
    // Heartbeats go on meanwhile: unacknowledged attempts must keep their lease.
    await this.#logs.flush(grace);
    await this.#reporter.flush(grace);
    this.#logs.close();
    const unsent = this.#reporter.close();
    if (unsent > 0) {
      this.#log.warn('gave up sending reports; the node retries those attempts when their lease expires', {
        unsent,
      });
    }
    this.#closed.abort();
    await Promise.all([this.#heartbeatLoopDone, this.#registering]);
    const id = this.id;
    if (id !== null) {
      try {
        await this.#nodes.call((client) => client.unregister(id));
      } catch (err) {
        this.#log.warn('could not unregister; the node will notice the worker is gone', {
          err: errorField(err),
        });
      }
    }
    this.#state = 'stopped';
    this.#log.info('worker stopped', { workerId: id });
  }

  /**
   * Registers until it works or `signal` aborts (null). Connection errors are retried; a refusal
   * (4xx) is thrown on the first registration and retried on later ones, which must not give up.
   */
  async #register(signal: AbortSignal, first: boolean): Promise<Session | null> {
    const { name, group, concurrency, labels, version, host, resources } = this.#options;
    const request: RegisterRequest = {
      name,
      group,
      handlers: [...this.#handlers.keys()],
      capacity: concurrency,
      labels,
      host,
    };
    if (version !== undefined) request.version = version;
    if (resources !== null && !this.#resourcesRefused) request.resources = resources;
    const backoff = new Backoff();
    let refused = false;
    while (!signal.aborted) {
      const sentAt = this.#lease.mark();
      try {
        const answer = await this.#nodes.call(async (client) => {
          const registered = await client.register(request);
          // Something else answers at that address: treated like no answer, tried elsewhere.
          if (typeof registered?.workerId !== 'string')
            throw new Error(`unexpected answer from ${client.url}`);
          return registered;
        });
        const session: Session = {
          workerId: answer.workerId,
          heartbeatMs: positive(answer.heartbeatMs, 1000),
          leaseMs: positive(answer.leaseMs, 5000),
          pollWaitMs: Math.max(0, answer.pollWaitMs || 0),
        };
        // Every request from now on times out well within the lease other nodes judge this worker by.
        this.#nodes.useLease(session.leaseMs, session.heartbeatMs);
        this.#lease.registered(sentAt, session.leaseMs, session.heartbeatMs);
        return session;
      } catch (err) {
        if (request.resources !== undefined && isValidationFailed(err) && namesField(err, 'resources')) {
          // A node from before resource-based scheduling: register without, and take only runs that request none.
          this.#resourcesRefused = true;
          delete request.resources;
          this.#log.warn('the node does not know resources; registering without them');
          continue;
        }
        if (first && !isConnectionError(err)) throw err;
        refused = this.#noteRefusal('registration', err, refused);
        await sleep(backoff.next(), signal);
      }
    }
    return null;
  }

  /** Registers again after the node said it does not know `staleId`; concurrent callers share one registration. */
  #reregister(staleId: string): Promise<void> {
    if (this.#session !== null && this.#session.workerId !== staleId) return Promise.resolve();
    if (!this.#registering) {
      this.#log.warn('the node no longer knows this worker; registering again', { workerId: staleId });
      this.#session = null;
      this.#lease.reset();
      // The runs held for their instant were the lost worker's: the node ends them and runs them elsewhere.
      const dropped = this.#held.drain();
      if (dropped.length > 0) {
        this.#log.warn("dropped the runs held for their instant: they were the lost worker's", {
          workerId: staleId,
          runs: dropped.map(({ assignment }) => assignment.runId),
        });
      }
      this.#registering = this.#register(this.#closed.signal, false)
        .then((session) => {
          this.#session = session;
          if (session) this.#log.info('worker registered again', { workerId: session.workerId });
        })
        .catch((err: unknown) => this.#crashed('registration', err))
        .finally(() => {
          this.#registering = null;
        });
    }
    return this.#registering;
  }

  /** The current worker id, after any registration in progress; null once closed. */
  async #workerId(): Promise<string | null> {
    while (this.#registering) await this.#registering;
    return this.#session?.workerId ?? null;
  }

  async #pollLoop(): Promise<void> {
    const signal = this.#stopPolling.signal;
    const backoff = new Backoff();
    let refused = false;
    while (!signal.aborted) {
      // Held runs whose instant came take the next free slots.
      const free = this.#options.concurrency - this.#running.size - this.#held.dueCount(monotonicNow());
      if (free <= 0) {
        await this.#slotFreed.wait(signal);
        continue;
      }
      const id = await this.#workerId();
      if (id === null || signal.aborted) return;
      const longest = Math.min(this.#options.pollWaitMs, this.#session?.pollWaitMs ?? 0);
      // A poll sized while runs are held ends when the next of them starts: the next poll asks
      // again for what it may hold then (else it would wait with the room of a full hold).
      const now = monotonicNow();
      const untilHeldStarts = this.#held.nextStart(now) - now;
      // Whole milliseconds, as the node takes them (instants are fractional on the monotonic clock).
      const waitMs = Math.max(0, Math.ceil(Math.min(longest, untilHeldStarts)));
      const request: PollRequest = { max: Math.min(free, MAX_POLL), waitMs };
      const ahead = this.#aheadRefused ? 0 : this.#options.prefetch - this.#held.size;
      if (ahead > 0) request.ahead = ahead;
      const seq = ++this.#pollSeq;
      if (!this.#seqRefused) request.seq = seq;
      // Reports of attempts that ended ride with the poll: one request where there were two.
      const reports = this.#pollReportsRefused ? [] : this.#reporter.take();
      if (reports.length > 0) request.reports = reports;
      const askedAt = monotonicNow();
      try {
        let answer: PollResponse;
        try {
          answer = await this.#nodes.call(
            (client, abort) => client.poll(id, request, abort, this.#nodes.pollTimeoutMs),
            signal,
          );
        } catch (err) {
          if (reports.length > 0) this.#reporter.giveBack(reports);
          throw err;
        } finally {
          // Answered or abandoned: whatever this poll claimed and did not hand over is not ours.
          // (On an answer, its runs are held before anything reads this.)
          if (seq > this.#polledSeq) this.#polledSeq = seq;
        }
        if (reports.length > 0) this.#reporter.carried(reports, answer?.results);
        backoff.reset();
        refused = false;
        const runs = answer?.runs ?? [];
        // `startInMs` counts from the node's clock, mapped to ours (node-clock.ts).
        const answeredAt = monotonicNow();
        this.#nodeClock.sample(askedAt, answer?.nodeClock, answeredAt);
        for (const assignment of runs) {
          const startAt =
            assignment.startInMs === undefined
              ? answeredAt
              : this.#nodeClock.startAt(assignment.startInMs, answer?.nodeClock, askedAt, answeredAt);
          this.#held.add(assignment, startAt);
        }
        this.#startDue();
        if (runs.length === 0 && waitMs === longest && monotonicNow() - askedAt < QUICK_EMPTY_POLL_MS) {
          await sleep(EMPTY_POLL_PAUSE_MS, signal);
        } else if (runs.length > 0) {
          // Handlers that end at once report before the next poll, which then carries their reports.
          await new Promise((resolve) => setImmediate(resolve));
        }
      } catch (err) {
        if (signal.aborted) return;
        if (isWorkerNotFound(err)) {
          await this.#reregister(id);
          continue;
        }
        // An older node refuses the field it does not know; without a name, the newest goes first.
        if (reports.length > 0 && isUnknownField(err, 'reports')) {
          this.#pollReportsRefused = true;
          this.#log.warn('the node does not take reports with polls; they go in requests of their own', {
            err: errorField(err),
          });
          continue;
        }
        // A report the node refused (invalid, or the body too large) is the reporter's to resolve,
        // alone: it went back there; the poll goes again without it.
        if (reports.length > 0 && refusesReports(err)) continue;
        // Only a refusal that names the field as unknown turns it off: any other (a bad value) is
        // a refused poll, logged and retried, never a feature silently lost.
        if (request.seq !== undefined && isUnknownField(err, 'seq')) {
          this.#seqRefused = true;
          this.#log.warn(
            'the node does not take poll numbers; it cannot give back runs whose answer was lost',
            {
              err: errorField(err),
            },
          );
          continue;
        }
        if (request.ahead !== undefined && isUnknownField(err, 'ahead')) {
          this.#aheadRefused = true;
          this.#log.warn('the node does not hand out runs ahead of their instant; prefetch is off', {
            err: errorField(err),
          });
          continue;
        }
        refused = this.#noteRefusal('poll', err, refused);
        await sleep(backoff.next(), signal);
      }
    }
  }

  async #heartbeatLoop(): Promise<void> {
    const signal = this.#closed.signal;
    const backoff = new Backoff();
    let refused = false;
    let wait = this.#session?.heartbeatMs ?? 1000;
    while (!signal.aborted) {
      await sleep(wait, signal);
      const id = await this.#workerId();
      if (id === null || signal.aborted) return;
      const session = this.#session;
      const every = session?.heartbeatMs ?? wait;
      const request = this.#heartbeatRequest();
      const sentAt = this.#lease.mark();
      const askedAt = monotonicNow();
      try {
        const answer = await this.#nodes.call((client) => client.heartbeat(id, request));
        this.#nodeClock.sample(askedAt, answer?.nodeClock, monotonicNow());
        backoff.reset();
        refused = false;
        wait = every;
        if (session !== null && session === this.#session) {
          this.#lease.renewed(sentAt, session.leaseMs, session.heartbeatMs);
        }
        for (const ref of answer?.cancel ?? []) this.#cancel(ref);
        // Held runs that waited for a live lease, and were not taken back just now.
        this.#startDue();
      } catch (err) {
        if (signal.aborted) return;
        if (isWorkerNotFound(err)) {
          await this.#reregister(id);
          wait = 0;
          continue;
        }
        if (request.load !== undefined && isValidationFailed(err) && namesField(err, 'load')) {
          this.#loadRefused = true;
          wait = 0;
          continue;
        }
        if (request.polled !== undefined && isValidationFailed(err)) {
          this.#seqRefused = true;
          wait = 0;
          continue;
        }
        refused = this.#noteRefusal('heartbeat', err, refused);
        // Retry sooner than the next beat: the lease is running out.
        wait = Math.min(backoff.next(), every);
      }
    }
  }

  /**
   * The attempts this worker holds: handlers running, held ones, and those whose report is not
   * acknowledged yet; with the last poll settled when the list is whole, so that the node gives
   * back what it claimed for this worker and never handed over.
   */
  #heartbeatRequest(): HeartbeatRequest {
    const refs: AttemptRef[] = [];
    for (const running of this.#running.values()) if (!running.abandoned) refs.push(running.ref);
    refs.push(...this.#ending.values());
    refs.push(...this.#held.refs());
    refs.push(...this.#reporter.pending());
    const load = this.#loadRefused ? {} : { load: hostLoad() };
    if (refs.length > MAX_HEARTBEAT) return { running: refs.slice(0, MAX_HEARTBEAT), ...load };
    return this.#seqRefused
      ? { running: refs, ...load }
      : { running: refs, polled: this.#polledSeq, ...load };
  }

  /** Starts held attempts whose instant came, in order, while slots are free and the lease is live. */
  #startDue(): void {
    if (this.#held.dueCount(monotonicNow()) === 0) return;
    if (!this.#lease.live()) {
      if (!this.#waitingForLease) {
        this.#waitingForLease = true;
        this.#log.warn('held runs wait: no heartbeat acknowledged within the lease', {
          due: this.#held.dueCount(monotonicNow()),
        });
      }
      return;
    }
    this.#waitingForLease = false;
    for (;;) {
      const free = this.#options.concurrency - this.#running.size;
      if (free <= 0) return;
      // As many as the free slots in one take; then again, for those whose instant came meanwhile.
      const due = this.#held.takeDue(monotonicNow(), free);
      if (due.length === 0) return;
      for (const assignment of due) this.#startAttempt(assignment);
    }
  }

  #startAttempt(assignment: Assignment): void {
    const ref: AttemptRef = { runId: assignment.runId, attempt: assignment.attempt };
    const key = keyOf(ref);
    if (this.#running.has(key)) return;
    const handler = this.#handlers.get(assignment.handler);
    if (!handler) {
      const message = `worker ${this.#options.name} has no handler named '${assignment.handler}'`;
      this.#log.error(message, { ...ref, job: assignment.jobName });
      this.#reporter.add({
        ...ref,
        outcome: 'failed',
        error: { name: 'UnknownHandler', message },
        retryable: false,
      });
      return;
    }
    const startedAt = Date.now();
    const abort = new LazyAbort();
    const span = startAttemptSpan(assignment, this.#options.name);
    // A longer limit than a timer can hold is left to the node, which cancels the attempt at its deadline.
    const limitAt = assignment.timeout <= MAX_TIMER_MS ? startedAt + assignment.timeout : null;
    const running: RunningAttempt = {
      ref,
      key,
      timeoutMs: assignment.timeout,
      abort,
      limitAt,
      timedOut: false,
      abandoned: false,
      done: Promise.resolve(),
      span,
    };
    if (limitAt !== null) this.#limits.add(running, limitAt, startedAt);
    this.#running.set(key, running);
    const ctx = createRunContext(assignment, abort, startedAt, this.#log, this.#logs, span.trace);
    running.done = this.#run(running, handler, ctx);
  }

  /** Runs the handler and ends the attempt. */
  async #run(running: RunningAttempt, handler: Handler, ctx: RunContext): Promise<void> {
    // Awaited even when the handler threw at once: the attempt ends in a later microtask, never
    // inside #startDue's loop, which would start the next runs ahead of those it took already.
    // The attempt's span is active while the handler runs: spans the handler makes are its children.
    const settlement = await context.with(running.span.context, settle, undefined, handler, ctx);
    this.#clearLimit(running);
    this.#running.delete(running.key);
    this.#startDue();
    this.#slotFreed.notify();
    if (running.abandoned) {
      endAttemptSpan(running.span.span, 'abandoned');
      return;
    }
    const report = classifyOutcome(running.ref, settlement, running);
    endAttemptSpan(running.span.span, report, settlement.ok ? undefined : settlement.error);
    // The run's log lines reach the node before its end, so that a follower sees them all. Until
    // its report is queued, heartbeats still list the attempt: it is this worker's.
    if (this.#logs.unsent > 0) {
      this.#ending.set(running.key, running.ref);
      await this.#logs.flush(LOG_FLUSH_BEFORE_REPORT_MS);
      this.#ending.delete(running.key);
    }
    this.#reporter.add(report);
  }

  #timedOut(running: RunningAttempt): void {
    running.limitAt = null;
    running.timedOut = true;
    const { ref, timeoutMs } = running;
    running.abort.abort(
      new TimeoutError(
        `attempt ${ref.attempt} of run ${ref.runId} passed its time limit of ${formatDuration(timeoutMs)}`,
        timeoutMs,
      ),
    );
  }

  #clearLimit(running: RunningAttempt): void {
    if (running.limitAt === null) return;
    this.#limits.remove(running, running.limitAt);
    running.limitAt = null;
  }

  /** The node says the attempt is no longer this worker's: stop it, and do not report it. */
  #cancel(ref: AttemptRef): void {
    if (this.#held.remove(ref)) {
      this.#log.info('attempt cancelled by the node before it started', { ...ref });
      return;
    }
    const running = this.#running.get(keyOf(ref));
    if (!running || running.abandoned) return;
    running.abandoned = true;
    this.#clearLimit(running);
    this.#log.info('attempt cancelled by the node', { ...ref });
    running.abort.abort(
      new CancelledError(
        `attempt ${ref.attempt} of run ${ref.runId} was cancelled or handed to another worker`,
      ),
    );
  }

  /**
   * At the end of the grace period: abort what still runs and report it, so that it is retried at
   * once; report held runs that did not start, so that they are retried from their instant on.
   */
  #abandonRunning(): void {
    for (const { assignment, startAt } of this.#held.drain()) {
      this.#reporter.add({
        runId: assignment.runId,
        attempt: assignment.attempt,
        outcome: 'failed',
        error: { name: 'WorkerShutdown', message: 'the worker shut down before the run started' },
        retryAfterMs: Math.max(0, Math.ceil(startAt - monotonicNow())),
      });
    }
    for (const running of this.#running.values()) {
      if (running.abandoned) continue;
      running.abandoned = true;
      this.#clearLimit(running);
      running.abort.abort(new CancelledError('the worker is shutting down'));
      const { ref } = running;
      this.#reporter.add(
        running.timedOut
          ? classifyOutcome(ref, { ok: false, error: undefined }, running)
          : {
              ...ref,
              outcome: 'failed',
              error: { name: 'WorkerShutdown', message: 'the worker shut down before the handler finished' },
              retryAfterMs: 0,
            },
      );
    }
  }

  /** Sends one batch of reports; registers again (once) when the node forgot this worker. */
  async #sendReports(reports: Report[]): Promise<ReportResponse> {
    for (let tries = 0; ; tries++) {
      const id = await this.#workerId();
      if (id === null) throw new Error('the worker is not registered');
      try {
        return await this.#nodes.call((client) => client.report(id, { reports }));
      } catch (err) {
        if (!isWorkerNotFound(err) || tries > 0) throw err;
        await this.#reregister(id);
      }
    }
  }

  readonly #onSignal = (signal: NodeJS.Signals): void => {
    // Ours only once: a second signal gets Node's default (exit), to force a stuck shutdown.
    this.#removeSignalHandlers();
    this.#log.info(`${signal} received; stopping the worker`);
    void this.stop();
  };

  #installSignalHandlers(): void {
    if (!this.#options.handleSignals) return;
    process.on('SIGTERM', this.#onSignal);
    process.on('SIGINT', this.#onSignal);
  }

  #removeSignalHandlers(): void {
    process.off('SIGTERM', this.#onSignal);
    process.off('SIGINT', this.#onSignal);
  }

  /** Logs a refusal by the node (not a connection error: the pool logs those) once per streak. */
  #noteRefusal(what: string, err: unknown, refused: boolean): boolean {
    if (isConnectionError(err)) return refused;
    if (!refused) this.#log.error(`${what} refused by the node; retrying`, { err: errorField(err) });
    return true;
  }

  #crashed(loop: string, err: unknown): void {
    this.#log.error(`worker ${loop} loop failed unexpectedly`, { err: errorField(err) });
  }
}

/** Runs a handler and captures how it ended; a synchronous throw counts as a throw. */
async function settle(handler: Handler, ctx: RunContext): Promise<Settlement> {
  try {
    return { ok: true, value: await handler(ctx) };
  } catch (error) {
    return { ok: false, error };
  }
}

function keyOf(ref: AttemptRef): string {
  return `${ref.runId}:${ref.attempt}`;
}

function positive(value: number, fallback: number): number {
  return Number.isFinite(value) && value > 0 ? value : fallback;
}

/** The host's load as a heartbeat reports it (`least-loaded` routing weighs it). */
function hostLoad(): { loadAverage: number; cpus: number; freeMemory: number; totalMemory: number } {
  return {
    loadAverage: Math.round(loadavg()[0]! * 100) / 100,
    cpus: availableParallelism(),
    freeMemory: freemem(),
    totalMemory: totalmem(),
  };
}

/** A poll refused for the reports it carried: one of them invalid, or the body too large. */
function refusesReports(err: unknown): boolean {
  if (!(err instanceof KairosApiError)) return false;
  return err.status === 413 || (isValidationFailed(err) && namesField(err, 'reports'));
}
