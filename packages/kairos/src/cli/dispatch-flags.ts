import type { JobPatch, RoutingSpec, TaskSpec } from '@kairos/client';
import type { Command } from 'commander';
import { parseDurationFlag, parseIntFlag, UsageError } from './options.ts';

/** The job flags of workers at scale, as commander hands them over. */
export interface DispatchFlags {
  routing?: string;
  routingKey?: string;
  selector?: string;
  maxConcurrency?: string;
  rate?: string;
  scheduleToStart?: string;
  resources?: string;
  shell?: string;
  arg?: string[];
  http?: string;
  method?: string;
  body?: string;
}

/** Adds the routing, limit and task flags to `jobs create|put|update`. */
export function addDispatchFlags(cmd: Command): Command {
  return cmd
    .option(
      '--routing <strategy>',
      'which worker runs each run: any, first, last, round-robin, random, consistent-hash, least-recently-used, least-frequently-used, least-loaded, failover, busy-over, broadcast',
    )
    .option('--routing-key <field>', 'consistent-hash: the params field to hash (default: the job name)')
    .option('--selector <labels>', 'only workers with these labels, e.g. region=eu,disk=ssd')
    .option('--max-concurrency <n>', 'the most runs of the job running at once, cluster-wide')
    .option('--rate <n/dur>', 'the most runs of the job started per period, e.g. 10/1m')
    .option('--schedule-to-start <dur>', 'fail a run no worker started within this time, e.g. 5m')
    .option(
      '--resources <list>',
      'what each run needs free on its worker, e.g. cpu=2,memory=4Gi,gpu=1 (docs/workers.md#resource-based-scheduling)',
    )
    .option('--shell <command>', 'task: run this command on a worker that enabled shell (no --handler)')
    .option(
      '--arg <value>',
      'an argument of --shell (repeat for several)',
      (value: string, all: string[] = []) => [...all, value],
    )
    .option('--http <url>', 'task: call this URL on a worker that allows it (no --handler)')
    .option('--method <method>', 'method of --http (default GET)')
    .option('--body <text>', 'body of --http');
}

/** The spec fields the flags set. @throws UsageError on a bad value. */
export function dispatchFromFlags(flags: DispatchFlags): JobPatch {
  const out: JobPatch = {};
  if (flags.routing !== undefined || flags.routingKey !== undefined || flags.selector !== undefined) {
    const routing: RoutingSpec = { strategy: (flags.routing ?? 'any') as RoutingSpec['strategy'] };
    if (flags.routingKey !== undefined) routing.key = flags.routingKey;
    if (flags.selector !== undefined) routing.selector = parseSelector(flags.selector);
    out.routing = routing;
  }
  if (flags.maxConcurrency !== undefined)
    out.maxConcurrency = parseIntFlag(flags.maxConcurrency, '--max-concurrency', { min: 1, max: 100_000 });
  if (flags.rate !== undefined) {
    const match = /^(\d+)\/(\S+)$/.exec(flags.rate.trim());
    if (!match)
      throw new UsageError(`--rate: expected N/DURATION like 10/1m, got ${JSON.stringify(flags.rate)}`);
    out.rateLimit = {
      limit: parseIntFlag(match[1]!, '--rate', { min: 1, max: 1_000_000 }),
      per: parseDurationFlag(match[2]!, '--rate'),
    };
  }
  if (flags.scheduleToStart !== undefined)
    out.scheduleToStartTimeout = parseDurationFlag(flags.scheduleToStart, '--schedule-to-start');
  if (flags.resources !== undefined) out.resources = parseResourcesFlag(flags.resources, '--resources');
  const task = taskFromFlags(flags);
  if (task) out.task = task;
  return out;
}

/**
 * `cpu=2,memory=4Gi,gpu=1` → `{ cpu: 2, memory: '4Gi', gpu: 1 }`: numbers as numbers, sizes as
 * strings; names and amounts are checked by the node (INVALID_RESOURCES).
 */
export function parseResourcesFlag(text: string, flag: string): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const part of text.split(',')) {
    if (part.trim() === '') continue;
    const at = part.indexOf('=');
    const name = part.slice(0, at).trim();
    const value = part.slice(at + 1).trim();
    if (at < 1 || value === '')
      throw new UsageError(
        `${flag}: expected name=amount pairs like cpu=2,memory=4Gi, got ${JSON.stringify(text)}`,
      );
    out[name] = /^\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  }
  return out;
}

function taskFromFlags(flags: DispatchFlags): TaskSpec | undefined {
  if (flags.shell !== undefined && flags.http !== undefined)
    throw new UsageError('choose --shell or --http, not both');
  if (flags.shell !== undefined) {
    if (flags.method !== undefined || flags.body !== undefined)
      throw new UsageError('--method and --body go with --http');
    return { kind: 'shell', command: flags.shell, args: flags.arg ?? [] };
  }
  if (flags.arg !== undefined) throw new UsageError('--arg goes with --shell');
  if (flags.http !== undefined) {
    const task: TaskSpec = { kind: 'http', url: flags.http };
    if (flags.method !== undefined)
      task.method = flags.method.toUpperCase() as NonNullable<typeof task.method>;
    if (flags.body !== undefined) task.body = flags.body;
    return task;
  }
  if (flags.method !== undefined || flags.body !== undefined)
    throw new UsageError('--method and --body go with --http');
  return undefined;
}

function parseSelector(value: string): Record<string, string> {
  const selector: Record<string, string> = {};
  for (const pair of value.split(',')) {
    const [label, labelValue, ...rest] = pair.split('=');
    if (!label || labelValue === undefined || rest.length > 0) {
      throw new UsageError(
        `--selector: expected label=value pairs separated by commas, got ${JSON.stringify(value)}`,
      );
    }
    selector[label.trim()] = labelValue.trim();
  }
  return selector;
}
