import { clearImmediate, clearTimeout, setImmediate, setTimeout } from 'node:timers';
import type { Assignment, AttemptRef } from '@kairos/client';
import { monotonicNow, Wakeup } from './timing.ts';

/** One claimed attempt whose handler has not started. */
export interface HeldRun {
  assignment: Assignment;
  /** When its handler may start, on this process's monotonic clock ({@link monotonicNow}). */
  startAt: number;
}

/**
 * The attempts a worker claimed and has not started: runs handed out ahead of their instant (fire
 * ahead), and ready runs waiting for a free slot. Kept in start order with one timer, for the
 * earliest instant still to come.
 *
 * States of a held run: `waiting` (its instant is later) → `due` (its instant came; it starts
 * when a slot is free) → taken by the worker, which starts its handler. A cancel by the node or
 * the end of a shutdown removes it from either state without starting it.
 */
export class HeldRuns {
  #runs: HeldRun[] = [];
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  readonly #emptied = new Wakeup();

  /** `onDue` is called when a waiting run's instant comes (the worker then takes the due ones). */
  constructor(
    private readonly onDue: () => void,
    /** This process's monotonic clock; tests pass their own. */
    private readonly now: () => number = monotonicNow,
  ) {}

  /** Held attempts, due or waiting. */
  get size(): number {
    return this.#runs.length;
  }

  /** Holds an attempt until `startAt` (at or before `now`: due at once). */
  add(assignment: Assignment, startAt: number): void {
    let i = this.#runs.length;
    while (i > 0 && this.#runs[i - 1]!.startAt > startAt) i--;
    this.#runs.splice(i, 0, { assignment, startAt });
    this.#arm(this.now());
  }

  /** How many held attempts may start now (they wait for a slot). */
  dueCount(now: number): number {
    // Binary search: the runs are in start order.
    let low = 0;
    let high = this.#runs.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.#runs[mid]!.startAt <= now) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** The earliest instant still to come among the held attempts (infinity when none). */
  nextStart(now: number): number {
    return this.#runs[this.dueCount(now)]?.startAt ?? Number.POSITIVE_INFINITY;
  }

  /** Removes and answers, in start order, up to `max` of the attempts whose instant has come. */
  takeDue(now: number, max: number): Assignment[] {
    const taken: Assignment[] = [];
    for (let run = this.#runs[0]; run && run.startAt <= now && taken.length < max; run = this.#runs[0]) {
      // shift() is O(1) here: V8 moves the start of a long array rather than its elements.
      this.#runs.shift();
      taken.push(run.assignment);
    }
    // Once per take, not per run: the timer and the empty notice.
    this.#changed(now);
    return taken;
  }

  /** Removes a held attempt; false when it is not held. */
  remove(ref: AttemptRef): boolean {
    const i = this.#runs.findIndex(
      (run) => run.assignment.runId === ref.runId && run.assignment.attempt === ref.attempt,
    );
    if (i < 0) return false;
    this.#runs.splice(i, 1);
    this.#changed(this.now());
    return true;
  }

  refs(): AttemptRef[] {
    return this.#runs.map(({ assignment }) => ({ runId: assignment.runId, attempt: assignment.attempt }));
  }

  /** Removes and answers every held attempt, and stops the timer. */
  drain(): HeldRun[] {
    const runs = this.#runs;
    this.#runs = [];
    this.#changed(this.now());
    return runs;
  }

  /** Resolves when nothing is held any more, or when `signal` aborts. */
  async whenEmpty(signal: AbortSignal): Promise<void> {
    while (this.#runs.length > 0 && !signal.aborted) await this.#emptied.wait(signal);
  }

  #changed(now: number): void {
    if (this.#runs.length === 0) this.#emptied.notify();
    this.#arm(now);
  }

  /**
   * One timer, for the earliest instant still to come (none when every held run is due, or none is
   * held). A Node timer counts from the event loop's cached time, so it may fire early (the loop was
   * busy when it was set), and it fires up to a millisecond late on its own: it is set a millisecond
   * short, and the last millisecond is checked on each turn of the event loop (`setImmediate`), so
   * that held runs start within the millisecond of their instant, never before it.
   */
  #arm(now: number): void {
    const next = this.nextStart(now);
    if (next === this.#timerAt) return;
    this.#disarm();
    this.#timerAt = next;
    if (next === Number.POSITIVE_INFINITY) return;
    const due = () => {
      // Read before the call: a run whose instant comes while onDue runs is armed again below (with
      // a later reading it would count as due, and nothing would call back for it).
      const at = this.now();
      this.#timer = undefined;
      this.#immediate = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
      this.onDue();
      // Early, the run is still waiting: set again for what is left.
      this.#arm(at);
    };
    if (next - now <= 1) this.#immediate = setImmediate(due);
    else this.#timer = setTimeout(due, next - now - 1);
  }

  #disarm(): void {
    clearTimeout(this.#timer);
    clearImmediate(this.#immediate);
    this.#timer = undefined;
    this.#immediate = undefined;
  }
}
