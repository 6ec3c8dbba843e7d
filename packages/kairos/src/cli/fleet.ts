import { setTimeout as sleep } from 'node:timers/promises';
import type { GroupLimitRequest, KairosClient, RateLimitSpec, RunLogLine, RunProgress } from '@kairos/client';
import type { Command } from 'commander';
import { compactJson, formatTime, printJson, table } from './format.ts';
import {
  clientFrom,
  type GlobalFlags,
  parseDurationFlag,
  parseIntFlag,
  parseRunId,
  UsageError,
} from './options.ts';

/**
 * Registers the fleet commands: `kairos runs logs`, `kairos workers drain`,
 * `kairos groups list|set`. `runs` and `workers` must be registered first.
 */
export function registerFleet(program: Command): void {
  const runs = subcommand(program, 'runs');
  const workers = subcommand(program, 'workers');

  runs
    .command('logs')
    .argument('<id>', 'run id')
    .description("print a run's log; --follow prints lines as they are written, until the run ends")
    .option('-f, --follow', 'keep printing new lines until the run ends')
    .option('--after <seq>', 'only lines after this sequence number')
    .action(async (id: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags & { follow?: boolean; after?: string }>();
      const runId = parseRunId(id);
      const after = flags.after === undefined ? 0 : parseIntFlag(flags.after, '--after', { min: 0 });
      const client = clientFrom(flags);
      const print = flags.json
        ? (line: RunLogLine) => printJson(line)
        : (line: RunLogLine) => printLine(line);
      if (flags.follow) await follow(client, runId, after, print, Boolean(flags.json));
      else await printAll(client, runId, after, print);
    });

  workers
    .command('drain')
    .argument('<id>', 'worker id (see `kairos workers list`)')
    .description('stop giving runs to a worker; it finishes those it has and keeps heartbeating')
    .action(async (id: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const worker = await clientFrom(flags).drainWorker(id);
      if (flags.json) return printJson(worker);
      console.log(`worker ${worker.name} (${worker.id}): ${worker.status}, ${worker.running} running`);
    });

  workers
    .command('resume')
    .argument('<id>', 'worker id (see `kairos workers list`)')
    .description('give runs to a drained worker again')
    .action(async (id: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const worker = await clientFrom(flags).resumeWorker(id);
      if (flags.json) return printJson(worker);
      console.log(`worker ${worker.name} (${worker.id}): ${worker.status}, ${worker.running} running`);
    });

  const groups = program.command('groups').description('limits of worker groups, per namespace');
  groups
    .command('list')
    .description('groups of the namespace (--namespace) that have limits')
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const { items } = await clientFrom(flags).listGroups();
      if (flags.json) return printJson(items);
      if (items.length === 0)
        return console.log(`no group limits in namespace ${flags.namespace ?? 'default'}`);
      console.log(
        table(
          ['GROUP', 'MAX CONCURRENCY', 'RATE', 'UPDATED'],
          items.map((g) => [
            g.group,
            g.maxConcurrency === null ? '-' : String(g.maxConcurrency),
            g.rateLimit ? `${g.rateLimit.limit}/${g.rateLimit.per}ms` : '-',
            formatTime(g.updatedAt),
          ]),
        ),
      );
    });
  groups
    .command('set')
    .argument('<group>', 'group name')
    .option(
      '--max-concurrency <n>',
      "the most of the namespace's runs of the group running at once (default: no limit)",
    )
    .option(
      '--rate <n/dur>',
      "the most of the namespace's runs of the group started per period, e.g. 100/1m (default: no limit)",
    )
    .description(
      "replace a group's limits in the namespace (--namespace), across the cluster; other namespaces' groups of that name keep theirs; a limit not given is removed",
    )
    .action(async (group: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags & { maxConcurrency?: string; rate?: string }>();
      const limits: GroupLimitRequest = {};
      if (flags.maxConcurrency !== undefined)
        limits.maxConcurrency = parseIntFlag(flags.maxConcurrency, '--max-concurrency', {
          min: 1,
          max: 100_000,
        });
      if (flags.rate !== undefined) limits.rateLimit = parseRate(flags.rate);
      const info = await clientFrom(flags).setGroupLimits(group, limits);
      if (flags.json) return printJson(info);
      const rate = info.rateLimit ? `${info.rateLimit.limit} per ${info.rateLimit.per} ms` : 'none';
      console.log(
        `group ${info.group} of namespace ${info.namespace}: max concurrency ${info.maxConcurrency ?? 'none'}, rate ${rate}`,
      );
    });
}

/** `100/1m` → 100 runs per minute. */
function parseRate(value: string): RateLimitSpec {
  const match = /^(\d+)\/(\S+)$/.exec(value.trim());
  if (!match) throw new UsageError(`--rate: expected N/DURATION like 100/1m, got ${JSON.stringify(value)}`);
  return {
    limit: parseIntFlag(match[1]!, '--rate', { min: 1, max: 1_000_000 }),
    per: parseDurationFlag(match[2]!, '--rate'),
  };
}

function subcommand(program: Command, name: string): Command {
  const found = program.commands.find((c) => c.name() === name);
  if (!found) throw new Error(`registerFleet: register \`${name}\` first`);
  return found;
}

async function printAll(
  client: KairosClient,
  runId: number,
  after: number,
  print: (line: RunLogLine) => void,
): Promise<void> {
  let cursor: number | null = after;
  while (cursor !== null) {
    const page = await client.runLogs(runId, { after: cursor, limit: 1000 });
    for (const line of page.items) print(line);
    cursor = page.next;
  }
}

/** Follows the stream; a dropped connection resumes after the last line printed. */
async function follow(
  client: KairosClient,
  runId: number,
  after: number,
  print: (line: RunLogLine) => void,
  json: boolean,
): Promise<void> {
  let cursor = after;
  let failures = 0;
  for (;;) {
    try {
      for await (const event of client.followRunLogs(runId, { after: cursor })) {
        failures = 0;
        if (event.type === 'log') {
          print(event.line);
          cursor = event.line.seq;
        } else if (event.type === 'progress') {
          if (json) printJson({ progress: event.progress });
          else console.error(progressText(event.progress));
        } else {
          if (!json) console.error(`-- run ${runId} ${event.status}`);
          return;
        }
      }
    } catch (error) {
      // Refusals (no such run, bad token) are final; a cut connection is retried.
      if ((error as { status?: number }).status !== undefined) throw error;
      if (++failures > 10)
        throw new UsageError(`lost the log stream of run ${runId}: ${(error as Error).message}`);
    }
    await sleep(Math.min(200 * 2 ** failures, 5000));
  }
}

function printLine(line: RunLogLine): void {
  const fields = line.fields ? ` ${compactJson(line.fields)}` : '';
  console.log(
    `${line.time.slice(11, 23)} ${line.level.toUpperCase().padEnd(5)} #${line.attempt} ${line.message}${fields}`,
  );
}

function progressText(progress: RunProgress): string {
  const note = progress.message ? ` ${progress.message}` : '';
  return `-- progress ${Math.round(progress.value * 100)}%${note}`;
}
