import type { ClaimedRun, PollHandOff, Store, WaitingPoll } from '../store/store.ts';
import type { Clock } from './clock.ts';

export interface DispatcherOptions {
  store: Store;
  clock: Clock;
  pollWaitMs: number;
  /** Fire ahead: how far ahead a poll with `ahead` may claim runs that are not available yet (0: never). */
  fireAheadMs?: number;
  /** A waiting poll re-checks the store this often even without an event (runs made by other nodes). */
  backstopMs?: number;
  /** Seeds `random` routing; tests pass a fixed one. */
  random?: () => number;
}

/**
 * One wake travelling through the waiting polls of a group: each poll at most once, and only polls
 * begun before it (`upTo`): a later one claims after the event's change anyway.
 */
interface Wake {
  readonly upTo: number;
  readonly visited: Set<number>;
}

/** A poll listening for its group's events; `wake` null: every listener is woken (close, unknown group). */
interface Listener {
  readonly request: PollRequest;
  onEvent(wake: Wake | null): void;
  /** Takes the poll for a trigger's hand-off when it waits (see `Dispatcher.take`); null: it does not. */
  take(): ((runs: ClaimedRun[]) => void) | null;
}

/** Whose a poll is and what it asks for. */
interface PollRequest {
  /** The poll's number, in the order polls began. */
  readonly poll: number;
  readonly workerId: string;
  readonly max: number;
  readonly seq: number | null;
}

/**
 * Hands queued runs to workers' long polls. A poll claims at once when runs are ready; otherwise
 * it waits for a store event of its group (runs queued, retries due), the backstop, or the instant
 * the next queued run of its group becomes available (fired ahead, retried, jittered), then claims
 * again, until its wait is over. A poll with `ahead` that finds no run ready takes up to that many
 * runs that become available within `fireAheadMs`, which the worker holds until their instant
 * (a worker with ready runs has no use for them yet: it polls again as soon as it has a free slot).
 *
 * An event wakes one waiting poll of its group, not all of them: with many workers, one queued run
 * cost a claim per waiting poll. The woken poll passes the wake on to the next one that has not had
 * it when it took as many runs as it asked for (more may be ready), or when it took fewer and a
 * queued run of the group is available before the next backstop or within the fire-ahead window
 * (one that it may not take: another handler, a target, a limit, no room to hold it); and whenever
 * it leaves without a claim after the wake (aborted, closed, an error). A wake visits only polls
 * begun before it, each once. A run available later is found by every poll's backstop.
 *
 * A trigger hands its run to a waiting poll itself (`take`, see `Store.triggerRun`; SQLite): the
 * store claims for the poll's worker in the trigger's transaction and the poll answers what it was
 * given, with no wake and no claim of its own.
 */
export class Dispatcher implements PollHandOff {
  private readonly waiters = new Map<string, Set<Listener>>();
  private readonly groups = new Map<string, string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** The number of the last poll begun. */
  private polls = 0;
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(private readonly options: DispatcherOptions) {
    this.unsubscribe = options.store.subscribe((event) => {
      if (event.type === 'runs') this.wake(event.group);
    });
  }

  private get backstopMs(): number {
    return this.options.backstopMs ?? 2000;
  }

  /** Remembers a worker's group so its polls wait on that group's events only. */
  registered(workerId: string, group: string): void {
    this.groups.set(workerId, group);
  }

  async poll(
    workerId: string,
    max: number,
    waitMs: number,
    signal: AbortSignal,
    ahead = 0,
    /** The worker's number of this poll, kept with what it claims (see `Store.heartbeat`). */
    seq: number | null = null,
  ): Promise<ClaimedRun[]> {
    const { store, clock } = this.options;
    const aheadMs = this.options.fireAheadMs ?? 0;
    const random = this.options.random ?? Math.random;
    const wait = Math.min(Math.max(0, waitMs), this.options.pollWaitMs);
    const deadline = clock.now() + wait;
    const group = this.groups.get(workerId);
    // This poll, as the wakes that reach it know it; the wakes it has not settled yet.
    const self = ++this.polls;
    const owed: Wake[] = [];
    try {
      for (;;) {
        // A worker that hung up gets nothing: runs claimed for it now would wait for its lease to end.
        if (signal.aborted || this.closed) return [];
        // Listen before claiming: an event that comes while the store is read is not lost.
        const listening = this.listen(group, { poll: self, workerId, max, seq }, owed);
        // The wakes that came before this claim, which it answers; later ones wait for the next.
        const answered = owed.length;
        let wakeInMs: number | undefined;
        try {
          // Job dispatch policies (routing, limits, draining) apply here: see Store.dispatchRuns.
          const now = clock.now();
          const { runs, nextAvailableAt } = await store.dispatchForPoll(workerId, max, now, random(), seq);
          if (runs.length > 0) {
            // Not awaited: the runs go to the worker while the store is asked (settle never throws).
            void this.settle(group, owed, owed.length, max > 0 && runs.length >= max);
            return runs;
          }
          // Nothing ready: the runs that become available next (fired ahead, retries, jitter) raise
          // no event then, so the wait ends at the next of them, on whichever node made it; those
          // within the fire-ahead window go now to a poll that holds runs ahead.
          const next = nextAvailableAt ?? Number.POSITIVE_INFINITY;
          if (ahead > 0 && aheadMs > 0 && next <= now + aheadMs) {
            const held = await store.dispatchAhead(workerId, ahead, now + aheadMs, now, seq);
            if (held.length > 0) {
              void this.settle(group, owed, owed.length, held.length >= ahead);
              return held;
            }
          }
          await this.settle(group, owed, answered, false);
          const remaining = deadline - clock.now();
          if (remaining <= 0 || signal.aborted || this.closed) return [];
          wakeInMs = Math.min(remaining, this.backstopMs, next - clock.now());
        } finally {
          if (wakeInMs === undefined) listening.stop();
        }
        const handed = await listening.wait(wakeInMs, signal);
        if (handed) {
          void this.settle(group, owed, owed.length, handed.length >= max);
          return handed;
        }
      }
    } finally {
      // Leaving with wakes no claim answered (aborted, closed, an error): the next poll takes them.
      if (group !== undefined) for (const wake of owed.splice(0)) this.passOn(group, wake);
    }
  }

  /**
   * The poll of `group` waiting longest since its last claim that asks for runs, taken from the waiting: no
   * event reaches it and its wait does not end until `give` (or its worker hangs up).
   */
  take(group: string): WaitingPoll | null {
    if (this.closed) return null;
    for (const listener of this.waiters.get(group) ?? []) {
      const give = listener.take();
      if (!give) continue;
      this.remove(group, listener);
      return { ...listener.request, random: (this.options.random ?? Math.random)(), give };
    }
    return null;
  }

  /** Wakes the polls of a group when a retry becomes available at `at`. */
  wakeAt(group: string, at: number): void {
    const ms = at - this.options.clock.now();
    if (ms <= 0) {
      this.wake(group);
      return;
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.wake(group);
    }, ms);
    timer.unref();
    this.timers.add(timer);
  }

  /** Ends every waiting poll with what it has (nothing), so that the server can close at once. */
  close(): void {
    this.closed = true;
    this.unsubscribe();
    for (const timer of this.timers) clearTimeout(timer);
    const all = [...this.waiters.values()].flatMap((set) => [...set]);
    this.waiters.clear();
    for (const listener of all) listener.onEvent(null);
  }

  /** An event of `group`: its first waiting poll, and every poll of a worker whose group is not known. */
  private wake(group: string): void {
    const unknown = this.waiters.get('*');
    if (unknown) {
      this.waiters.delete('*');
      for (const listener of unknown) listener.onEvent(null);
    }
    this.passOn(group, { upTo: this.polls, visited: new Set() });
  }

  /** Hands `wake` to the next waiting poll of `group` that has not had it, if any. */
  private passOn(group: string, wake: Wake): void {
    const listener = this.nextListener(group, wake);
    if (!listener) return;
    wake.visited.add(listener.request.poll);
    this.remove(group, listener);
    listener.onEvent(wake);
  }

  private nextListener(group: string, wake: Wake): Listener | undefined {
    for (const listener of this.waiters.get(group) ?? [])
      if (listener.request.poll <= wake.upTo && !wake.visited.has(listener.request.poll)) return listener;
    return undefined;
  }

  /**
   * Settles the first `count` wakes a poll owes after its claim (taken from `owed` at once, before
   * the first await): passed on when the claim was `full`, or when another poll could have them and
   * a queued run of the group is available before the next backstop or within the fire-ahead
   * window (a poll that holds runs ahead takes those now); else they end here. Never throws.
   */
  private async settle(group: string | undefined, owed: Wake[], count: number, full: boolean): Promise<void> {
    if (group === undefined || count === 0) return;
    const wakes = owed.splice(0, count);
    let pass = full;
    if (!pass && wakes.some((wake) => this.nextListener(group, wake))) {
      const until = this.options.clock.now() + Math.max(this.backstopMs, this.options.fireAheadMs ?? 0);
      try {
        pass = await this.options.store.hasQueuedRuns(group, until);
      } catch {
        // Not known: pass them on, as every waiting poll would have woken.
        pass = true;
      }
    }
    if (pass) for (const wake of wakes) this.passOn(group, wake);
  }

  private remove(key: string, listener: Listener): void {
    const set = this.waiters.get(key);
    if (!set?.delete(listener)) return;
    if (set.size === 0) this.waiters.delete(key);
  }

  /**
   * Listens for the next event of a group (any group when unknown) on behalf of a poll: `wait`
   * resolves at once when one came since `listen`, else at the next one, after `ms`, when `signal`
   * aborts, or with the runs a trigger handed to the poll. The wakes it receives go to `owed`.
   */
  private listen(
    group: string | undefined,
    request: PollRequest,
    owed: Wake[],
  ): {
    wait(ms: number, signal: AbortSignal): Promise<ClaimedRun[] | undefined>;
    stop(): void;
  } {
    const key = group ?? '*';
    let fired = false;
    // Set while the poll waits: ends the wait, with runs handed to it or without.
    let end: ((handed?: ClaimedRun[]) => void) | undefined;
    let taken = false;
    let timer: NodeJS.Timeout | undefined;
    const listener: Listener = {
      request,
      onEvent: (wake) => {
        fired = true;
        if (wake) owed.push(wake);
        end?.();
      },
      take: () => {
        if (!end || fired || taken || request.max <= 0 || group === undefined) return null;
        taken = true;
        const give = end;
        // The wait now lasts until the trigger's commit gives the runs (or the worker hangs up).
        clearTimeout(timer);
        return (runs) => give(runs.length > 0 ? runs : undefined);
      },
    };
    let set = this.waiters.get(key);
    if (!set) {
      set = new Set();
      this.waiters.set(key, set);
    }
    set.add(listener);
    const stop = () => this.remove(key, listener);
    return {
      stop,
      wait: (ms, signal) =>
        new Promise((resolve) => {
          if (fired || signal.aborted || this.closed) {
            stop();
            resolve(undefined);
            return;
          }
          const done = (handed?: ClaimedRun[]) => {
            if (!end) return;
            end = undefined;
            clearTimeout(timer);
            signal.removeEventListener('abort', abort);
            stop();
            resolve(handed);
          };
          const abort = () => done();
          end = done;
          timer = setTimeout(abort, ms);
          signal.addEventListener('abort', abort, { once: true });
        }),
    };
  }
}
