import { setTimeout as sleep } from 'node:timers/promises';
import type { KairosClient, Run, RunFilter, RunStatus, RunSummary } from '@kairos/client';
import type { Command } from 'commander';
import {
  compactJson,
  elapsed,
  formatDuration,
  formatError,
  formatTime,
  keyValues,
  printJson,
  table,
  truncate,
} from './format.ts';
import {
  clientFrom,
  durationFlagMs,
  type GlobalFlags,
  parseIntFlag,
  parseRunId,
  parseRunStatus,
  RUN_STATUSES,
} from './options.ts';

const FINAL: ReadonlySet<RunStatus> = new Set(['succeeded', 'failed', 'timed_out', 'cancelled']);

interface ListFlags extends GlobalFlags {
  job?: string;
  status?: string;
  worker?: string;
  limit?: string;
  cursor?: string;
}

/** Registers `kairos runs …`: list, get, cancel, wait. */
export function registerRuns(program: Command): void {
  const runs = program.command('runs').description('inspect, cancel and wait for runs');

  runs
    .command('list')
    .description('list runs, newest first')
    .option('--job <name>', 'only the runs of this job')
    .option('--status <status>', `only runs in this state: ${RUN_STATUSES.join(', ')}`)
    .option('--worker <id>', 'only the runs of this worker')
    .option('--limit <n>', 'page size (default: the server decides)')
    .option('--cursor <cursor>', 'the page after this cursor, as printed by the previous page')
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<ListFlags>();
      // With params and results, for the result column (a page ends early at the node's size bound).
      const filter: RunFilter = {
        job: flags.job,
        worker: flags.worker,
        cursor: flags.cursor,
        include: 'params',
      };
      if (flags.status !== undefined) filter.status = parseRunStatus(flags.status);
      if (flags.limit !== undefined)
        filter.limit = parseIntFlag(flags.limit, '--limit', { min: 1, max: 1000 });
      const page = await clientFrom(flags).listRuns(filter);
      if (flags.json) return printJson(page);
      if (page.items.length === 0) return console.log('no runs');
      console.log(
        table(
          ['ID', 'JOB', 'STATUS', 'ATTEMPT', 'WORKER', 'CREATED', 'STARTED', 'DURATION', 'RESULT/ERROR'],
          page.items.map((run) => [
            String(run.id),
            run.jobName,
            run.status,
            `${run.attempt}/${run.maxAttempts}`,
            run.workerId ? truncate(run.workerId, 16) : '-',
            formatTime(run.createdAt),
            formatTime(run.startedAt),
            elapsed(run.startedAt, run.finishedAt),
            truncate(outcome(run), 48),
          ]),
        ),
      );
      if (page.nextCursor) console.log(`\nmore: kairos runs list --cursor ${page.nextCursor}`);
    });

  runs
    .command('get')
    .argument('<id>', 'run id')
    .description('show a run with its attempts, result and error')
    .action(async (id: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const run = await clientFrom(flags).getRun(parseRunId(id));
      if (flags.json) return printJson(run);
      showRun(run);
    });

  runs
    .command('cancel')
    .argument('<id>', 'run id')
    .description('cancel a queued or running run')
    .action(async (id: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const run = await clientFrom(flags).cancelRun(parseRunId(id));
      if (flags.json) return printJson(run);
      console.log(`run ${run.id} of ${run.jobName}: ${run.status}`);
    });

  runs
    .command('wait')
    .argument('<id>', 'run id')
    .description('wait until a run is final; exit code 0 if it succeeded, 1 otherwise')
    .option('--timeout <dur>', 'give up after this long, e.g. 30s (default: wait forever)')
    .action(async (id: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags & { timeout?: string }>();
      const runId = parseRunId(id);
      const limitMs =
        flags.timeout === undefined ? Number.POSITIVE_INFINITY : durationFlagMs(flags.timeout, '--timeout');
      const client = clientFrom(flags);
      const run =
        process.stderr.isTTY && !flags.json
          ? await waitWithProgress(client, runId, limitMs, (text) => process.stderr.write(text))
          : await waitForRun(client, runId, limitMs);
      if (flags.json) printJson(run);
      else if (!FINAL.has(run.status))
        console.error(`run ${run.id} still ${run.status} after ${formatDuration(limitMs)}`);
      else showRun(run);
      process.exitCode = run.status === 'succeeded' ? 0 : 1;
    });
}

/** Polls a run until it is final or `limitMs` passed; answers the last state seen. */
async function waitForRun(client: KairosClient, id: number, limitMs: number): Promise<Run> {
  const deadline = Date.now() + limitMs;
  let pause = 200;
  for (;;) {
    const run = await client.getRun(id);
    const left = deadline - Date.now();
    if (FINAL.has(run.status) || left <= 0) return run;
    await sleep(Math.min(pause, left));
    pause = Math.min(pause * 2, 2000);
  }
}

/**
 * As {@link waitForRun}, with one status line kept up to date on a terminal: the run's state, its
 * attempt, the time it has waited or run, and the handler's latest progress (`ctx.progress`), read
 * from the run's log stream. The line is cleared before the answer.
 */
export async function waitWithProgress(
  client: KairosClient,
  id: number,
  limitMs: number,
  write: (text: string) => void,
): Promise<Run> {
  const stop = new AbortController();
  let progress: { value: number; message: string | null } | null = null;
  let run: Run | undefined;
  const render = () => {
    if (!run) return;
    const since = run.startedAt ?? run.createdAt;
    const parts = [`run ${run.id} ${run.status}`];
    if (run.attempt > 0) parts.push(`attempt ${run.attempt}/${run.maxAttempts}`);
    parts.push(formatDuration(Date.now() - Date.parse(since)));
    if (progress)
      parts.push(`${Math.round(progress.value * 100)}%${progress.message ? ` ${progress.message}` : ''}`);
    write(`\r\x1b[K${truncate(parts.join(' · '), (process.stderr.columns || 100) - 1)}`);
  };
  // Progress arrives on the log stream; a stream that fails leaves the status line without it.
  const follow = (async () => {
    try {
      for await (const event of client.followRunLogs(id, { signal: stop.signal }))
        if (event.type === 'progress') {
          progress = { value: event.progress.value, message: event.progress.message };
          render();
        }
    } catch {
      // aborted, or no stream: polling below still ends the wait
    }
  })();
  try {
    const deadline = Date.now() + limitMs;
    for (;;) {
      run = await client.getRun(id);
      render();
      const left = deadline - Date.now();
      if (FINAL.has(run.status) || left <= 0) return run;
      await sleep(Math.min(500, left));
    }
  } finally {
    stop.abort();
    await follow;
    write('\r\x1b[K');
  }
}

function outcome(run: RunSummary): string {
  if (run.error) return formatError(run.error);
  return run.result === null || run.result === undefined ? '' : compactJson(run.result);
}

function showRun(run: Run): void {
  console.log(
    keyValues([
      ['id', String(run.id)],
      ['job', run.jobName],
      ['status', run.status],
      ['cause', run.cause],
      ['handler', `${run.handler} (group ${run.group})`],
      ['attempt', `${run.attempt} of ${run.maxAttempts}`],
      ['worker', run.workerId ?? '-'],
      ['assigned to', run.assignedWorkerId],
      ['shard', run.shard ? `${run.shard.index} of ${run.shard.total}` : undefined],
      ['params', compactJson(run.params)],
      ['fire time', run.fireTime ? formatTime(run.fireTime) : undefined],
      ['created', formatTime(run.createdAt)],
      ['available', run.status === 'queued' ? formatTime(run.availableAt) : undefined],
      ['started', formatTime(run.startedAt)],
      ['finished', formatTime(run.finishedAt)],
      ['duration', elapsed(run.startedAt, run.finishedAt)],
      ['result', run.result === null ? undefined : compactJson(run.result)],
      ['error', run.error ? formatError(run.error) : undefined],
    ]),
  );
  if (run.error?.stack) console.log('\n' + run.error.stack.replace(/^/gm, '  '));
  if (run.attempts && run.attempts.length > 0) {
    console.log('\nattempts:');
    console.log(
      table(
        ['#', 'WORKER', 'STATUS', 'STARTED', 'DURATION', 'ERROR'],
        run.attempts.map((a) => [
          String(a.attempt),
          a.workerId,
          a.status,
          formatTime(a.startedAt),
          elapsed(a.startedAt, a.finishedAt),
          a.error ? truncate(formatError(a.error), 60) : '',
        ]),
      ),
    );
  }
}
