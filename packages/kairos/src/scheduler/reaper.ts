import type { Logger } from 'pino';
import { RUN_LOG_LIMITS } from '../core/log-limits.ts';
import type { Store } from '../store/store.ts';
import type { AttemptEnder } from './attempts.ts';
import { type Clock, yieldToEventLoop } from './clock.ts';

/** Stopped and lost workers stay listed this long after their lease ended, then go. */
export const WORKER_RETENTION_MS = 24 * 60 * 60 * 1000;

export interface ReaperOptions {
  store: Store;
  clock: Clock;
  ender: AttemptEnder;
  logger: Logger;
  intervalMs: number;
}

/**
 * Every sweep: attempts whose worker lease expired are `lost` and attempts past their deadline are
 * `timed_out` (each retried or ended by its run's policy), queued runs past their job's
 * schedule-to-start timeout fail, log lines past their retention go, workers whose lease
 * expired are marked lost, and stopped or lost workers go a day after their lease ended. With the defaults (heartbeat 1 s, lease 5 s, sweep 1 s) a dead worker's runs are
 * back in the queue within 6 s.
 */
export class Reaper {
  private running = false;
  private stopSignal = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(private readonly options: ReaperOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopSignal = new AbortController();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopSignal.abort();
    await this.loop;
  }

  /** One sweep; returns the number of attempts it ended. */
  async tick(): Promise<number> {
    const { store, clock, ender, logger } = this.options;
    let ended = 0;
    for (;;) {
      const count = await ender.expire(clock.now(), 500);
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
    await store.pruneRunLogs(clock.now() - RUN_LOG_LIMITS.retentionMs, 1000);
    const lost = await store.markLostWorkers(clock.now());
    if (lost.length > 0) logger.warn({ workers: lost }, 'workers lost: no heartbeat within their lease');
    await store.pruneWorkers(clock.now() - WORKER_RETENTION_MS, 1000);
    if (ended > 0) logger.info({ attempts: ended }, 'reaper ended expired attempts');
    return ended;
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        await this.tick();
      } catch (error) {
        this.options.logger.warn({ err: error }, 'reaper sweep failed; retrying');
      }
      await this.options.clock.sleep(this.options.intervalMs, this.stopSignal.signal);
    }
  }
}
