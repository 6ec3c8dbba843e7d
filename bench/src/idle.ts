// Work that can share the machine with a scenario's idle time. In a per-minute schedule window, every
// schedule fires once, at the minute; once all have run, the rest of the window only watches for
// doubled fires, and the comparison's once-only sections that fit in it run there (see schedule.ts).
// Whatever no window took runs after the contestants.
import { now } from './util.ts';

/** A once-only section, with how long it takes at most (so that it ends inside the window). */
export interface IdleTask {
  name: string;
  seconds: number;
  run(): Promise<void>;
}

/** The queue of tasks waiting for idle time. */
export class IdleWork {
  private readonly tasks: IdleTask[] = [];

  constructor(tasks: IdleTask[] = []) {
    this.tasks.push(...tasks);
  }

  /** Runs, one after another, the queued tasks that end before `until` (epoch ms), in queue order. */
  async fill(until: number, where: string): Promise<void> {
    for (;;) {
      const i = this.tasks.findIndex((task) => now() + task.seconds * 1000 <= until);
      if (i < 0) return;
      const [task] = this.tasks.splice(i, 1);
      console.log(`    ${task!.name} runs in ${where}`);
      await task!.run();
    }
  }

  /** How long the queued tasks take together, by their estimates (seconds). */
  pendingSeconds(): number {
    return this.tasks.reduce((sum, task) => sum + task.seconds, 0);
  }

  /** The longest queued task, by its estimate (seconds; 0 when none is queued). */
  largestPending(): number {
    return Math.max(0, ...this.tasks.map((task) => task.seconds));
  }

  /** Runs the tasks that no idle time took. */
  async drain(): Promise<void> {
    for (const task of this.tasks.splice(0)) await task.run();
  }
}
