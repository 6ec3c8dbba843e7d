import type { Command } from 'commander';
import { formatTime, printJson, table, truncate } from './format.ts';
import { clientFrom, type GlobalFlags } from './options.ts';

/** Registers `kairos workers list` (drain and resume are in fleet.ts). */
export function registerWorkers(program: Command): void {
  const workers = program.command('workers').description('inspect the workers connected to the cluster');

  workers
    .command('list')
    .description('list active and draining workers with their load and last heartbeat')
    .option('--all', 'lost and stopped workers too')
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags & { all?: boolean }>();
      const { items } = await clientFrom(flags).listWorkers({ all: flags.all });
      if (flags.json) return printJson(items);
      if (items.length === 0)
        return console.log(
          flags.all
            ? 'no workers: start one with `kairos worker --handlers FILE`'
            : 'no live workers (`--all` lists lost and stopped ones): start one with `kairos worker --handlers FILE`',
        );
      console.log(
        table(
          ['ID', 'NAME', 'GROUP', 'STATUS', 'RUNNING/CAPACITY', 'HANDLERS', 'LAST HEARTBEAT'],
          items.map((worker) => [
            worker.id,
            worker.name,
            worker.group,
            worker.status,
            `${worker.running}/${worker.capacity}`,
            truncate(worker.handlers.join(','), 40),
            formatTime(worker.lastHeartbeatAt),
          ]),
        ),
      );
    });
}
