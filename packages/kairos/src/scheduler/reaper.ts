import type { Logger } from 'pino';
import type { Store } from '../store/store.ts';
import type { AttemptEnder } from './attempts.ts';
import { BackgroundLoop } from './background-loop.ts';
import { type Clock, yieldToEventLoop } from './clock.ts';

export interface ReaperOptions {
  store: Store;
  clock: Clock;
  ender: AttemptEnder;
  logger: Logger;
  intervalMs: number;
  /**
   * The worker lease. After this node stood still (a sweep later than `intervalMs` + half of it)
   * or its store failed, the reaper judges no lease and no deadline for one lease: workers could
   * not renew through a frozen node or a failed store, and deserve one lease to do it. 0: never.
   */
  workerLeaseMs?: number;
}

/**
 * Every sweep: attempts whose worker lease expired are `lost` and attempts past their deadline are
 * `timed_out` (each retried or ended by its run's policy), queued runs past their job's
 * schedule-to-start timeout fail, and workers whose lease expired are marked lost. With the
 * defaults (heartbeat 1 s, lease 5 s, sweep 1 s) a dead worker's runs are back in the queue within
 * 6 s. What retention deletes (old log lines, gone workers) is the pruner's (`pruner.ts`).
 *
 * A reaper judges leases only when workers could renew them. When its node just started (alone,
 * nobody took heartbeats while it was down), stood still (SIGSTOP, a VM freeze, an event loop
 * blocked for seconds) or its store failed, the heartbeats of that time could not land, and a sweep right after would end the attempts of live workers, which then run
 * twice. So after either, it holds: for one lease it ends no attempt and marks no worker lost
 * (deadlines wait too; the worker enforces its own time limit). Other nodes' reapers are not held.
 * Shorter stalls, many of them on an overloaded node, move the judgement back by their sum within
 * the last lease ({@link Reaper.stalledMs}).
 */
export class Reaper {
  private readonly loop = new BackgroundLoop(() => this.run());
  /** No lease or deadline is judged before this instant (see the class comment). */
  private holdUntil = Number.NEGATIVE_INFINITY;
  /** This node's own stalls, as its sweep timer saw them (how late it woke), newest last. */
  private stalls: Array<{ at: number; ms: number }> = [];

  constructor(private readonly options: ReaperOptions) {}

  start(): void {
    this.loop.start();
  }

  async stop(): Promise<void> {
    await this.loop.stop();
  }

  /**
   * How long this node itself stood still within the last lease: the sum of its sweep timer's
   * delays (a blocked event loop or a starved process wakes it late). Leases
   * are judged that much in the past: a heartbeat that waited in this node's queue meanwhile was
   * late by this node's doing, not its worker's. An overloaded node that answered slowly for a
   * while, without one stall long enough for a hold, could declare live workers lost.
   */
  stalledMs(now: number): number {
    const since = now - this.leaseMs();
    this.stalls = this.stalls.filter((stall) => stall.at > since);
    return this.stalls.reduce((sum, stall) => sum + stall.ms, 0);
  }

  /** One sweep; returns the number of attempts it ended. */
  async tick(): Promise<number> {
    const { store, clock, ender, logger } = this.options;
    let ended = 0;
    const holding = clock.now() < this.holdUntil;
    const stalled = this.stalledMs(clock.now());
    while (!holding) {
      const count = await ender.expire(clock.now() - stalled, 500);
      ended += count;
      if (count < 500) break;
      await yieldToEventLoop();
    }
    const expired = await store.expireQueuedRuns(clock.now(), 500);
    if (expired.length > 0)
      logger.warn(
        { runs: expired },
        'runs failed: no worker started them within their schedule-to-start timeout',
      );
    const lost = holding ? [] : await store.markLostWorkers(clock.now() - stalled);
    if (lost.length > 0) logger.warn({ workers: lost }, 'workers lost: no heartbeat within their lease');
    if (ended > 0) logger.info({ attempts: ended }, 'reaper ended expired attempts');
    return ended;
  }

  private async run(): Promise<void> {
    const { clock, intervalMs, logger } = this.options;
    let lastSweep = clock.now();
    // A node that just started was not there to take heartbeats (alone, nobody was).
    this.hold(lastSweep, { reason: 'this node just started' });
    while (this.loop.running) {
      const now = clock.now();
      const gap = now - lastSweep;
      lastSweep = now;
      if (gap > intervalMs * 1.5 + this.leaseMs() / 2)
        this.hold(now, { reason: 'this node stood still', gapMs: gap - intervalMs });
      try {
        await this.tick();
      } catch (error) {
        logger.warn({ err: error }, 'reaper sweep failed; retrying');
        this.hold(clock.now(), { reason: 'the store failed' });
      }
      const sleptAt = clock.now();
      await clock.sleep(intervalMs, this.loop.signal);
      // How late its timer woke: the time nothing on this node ran (its own sweep excluded: on
      // PostgreSQL a sweep's queries do not keep heartbeats from landing).
      const late = clock.now() - sleptAt - intervalMs;
      if (late > 0 && this.loop.running) this.stalls.push({ at: clock.now(), ms: late });
    }
  }

  private leaseMs(): number {
    return this.options.workerLeaseMs ?? 0;
  }

  private hold(now: number, why: Record<string, unknown>): void {
    if (this.leaseMs() <= 0) return;
    if (now >= this.holdUntil)
      this.options.logger.warn(
        { ...why, holdMs: this.leaseMs() },
        'reaper holds lease and deadline judgements for one lease: workers could not renew meanwhile',
      );
    this.holdUntil = Math.max(this.holdUntil, now + this.leaseMs());
  }
}
