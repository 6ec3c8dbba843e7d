// Once-only sections that wait for idle time: the scale section's wait for its storm, when nothing is
// measured (see scale.ts). No contestant's scenario shares its time with them: measurement windows run
// alone. Whatever the wait did not take runs after the scale section.
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

  /** Runs the tasks that no idle time took. */
  async drain(): Promise<void> {
    for (const task of this.tasks.splice(0)) await task.run();
  }
}
