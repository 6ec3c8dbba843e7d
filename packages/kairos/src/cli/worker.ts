import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Worker } from '@kairos/worker';
import type { Command } from 'commander';
import { parseResourcesFlag } from './dispatch-flags.ts';
import { type GlobalFlags, parseIntFlag, parseUrls, resolveToken, UsageError } from './options.ts';

/** A handler function as `Worker.handle` takes it. */
export type HandlerFn = Parameters<Worker['handle']>[1];

interface WorkerFlags extends GlobalFlags, WorkerTaskFlags {
  handlers?: string;
  group: string;
  concurrency: string;
  name?: string;
  label?: string[];
  resources?: string;
}

/** Flags that enable built-in task kinds. */
export interface WorkerTaskFlags {
  shell?: boolean;
  shellAllow?: string[];
  httpAllow?: string[];
}

const repeat = (value: string, all: string[] = []) => [...all, value];

/** Registers `kairos worker --handlers FILE`. */
export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run a worker with the handlers a module exports')
    .option(
      '--handlers <file>',
      'a .ts or .js module: `export default { name: fn }` or named function exports',
    )
    .option('--group <group>', 'worker group to serve', 'default')
    .option('--concurrency <n>', 'runs at the same time', '4')
    .option('--name <name>', 'how the worker shows in `kairos workers list` (routing orders by it)')
    .option('--label <key=value>', 'a label job selectors match, e.g. region=eu (repeat for several)', repeat)
    .option(
      '--resources <list>',
      'what it has for runs that request resources, e.g. gpu=2 or cpu=8,memory=32Gi (cpu and memory default to the host; also KAIROS_WORKER_RESOURCES)',
    )
    .option('--shell', 'run shell tasks: any command')
    .option('--shell-allow <command>', 'run shell tasks: only this command (repeat for several)', repeat)
    .option('--http-allow <url-prefix>', 'run http tasks under this URL prefix (repeat for several)', repeat)
    .addHelpText(
      'after',
      '\nNodes: --url takes every node of the cluster, comma-separated or repeated; the worker moves to the\n' +
        'next one when a node cannot be reached.\n' +
        'Token: --token, else KAIROS_WORKER_TOKEN, else workerToken of <data-dir>/credentials.json.',
    )
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<WorkerFlags>();
      const urls = parseUrls(flags.url);
      const concurrency = parseIntFlag(flags.concurrency, '--concurrency', { min: 1, max: 1000 });
      const token = resolveToken(flags, 'worker');
      if (!token) {
        throw new UsageError(
          'no worker token: pass --token, set KAIROS_WORKER_TOKEN, or run where <data-dir>/credentials.json exists',
        );
      }
      const tasks = workerTasksFromFlags(flags);
      if (flags.handlers === undefined && !tasks) {
        throw new UsageError('nothing to run: pass --handlers FILE, --shell, --shell-allow or --http-allow');
      }
      const handlers = flags.handlers === undefined ? {} : await loadHandlers(flags.handlers);
      const labels = Object.fromEntries(
        (flags.label ?? []).map((pair) => {
          const at = pair.indexOf('=');
          if (at < 1) throw new UsageError(`--label: expected key=value, got ${JSON.stringify(pair)}`);
          return [pair.slice(0, at), pair.slice(at + 1)];
        }),
      );
      const { Worker } = await import('@kairos/worker');
      const worker = new Worker({
        url: urls,
        token,
        ...(flags.namespace ? { namespace: flags.namespace } : {}),
        group: flags.group,
        concurrency,
        labels,
        ...(flags.name === undefined ? {} : { name: flags.name }),
        ...(tasks ? { tasks } : {}),
        ...(flags.resources === undefined
          ? {}
          : { resources: parseResourcesFlag(flags.resources, '--resources') }),
      });
      for (const [name, fn] of Object.entries(handlers)) worker.handle(name, fn);
      console.error(
        `worker: connecting to ${urls.join(', ')} (group ${flags.group}, concurrency ${concurrency})…`,
      );
      await worker.start();
      const names = [
        ...Object.keys(handlers),
        ...(tasks?.shell ? ['kairos:shell'] : []),
        ...(tasks?.http ? ['kairos:http'] : []),
      ];
      console.error(`worker ${worker.id} ready; handlers: ${names.join(', ')}. Ctrl+C stops it.`);
    });
}

/** The `tasks` option of the worker from its flags; undefined when no kind is enabled. */
export function workerTasksFromFlags(
  flags: WorkerTaskFlags,
): { shell?: true | { allow: string[] }; http?: { allow: string[] } } | undefined {
  const tasks: { shell?: true | { allow: string[] }; http?: { allow: string[] } } = {};
  if (flags.shell && flags.shellAllow)
    throw new UsageError('choose --shell (any command) or --shell-allow, not both');
  if (flags.shell) tasks.shell = true;
  if (flags.shellAllow) tasks.shell = { allow: flags.shellAllow };
  if (flags.httpAllow) tasks.http = { allow: flags.httpAllow };
  return Object.keys(tasks).length > 0 ? tasks : undefined;
}

/**
 * Imports a handlers module and answers its handlers by name: the functions of its default
 * export object, or else its named function exports.
 */
export async function loadHandlers(file: string): Promise<Record<string, HandlerFn>> {
  const path = resolve(file);
  if (!existsSync(path)) throw new UsageError(`--handlers: no such file ${path}`);
  const module = await importModule(path, file);
  const source = isObject(module.default)
    ? module.default
    : Object.fromEntries(Object.entries(module).filter(([key]) => key !== 'default'));
  const handlers: Record<string, HandlerFn> = {};
  for (const [name, value] of Object.entries(source)) {
    if (typeof value === 'function') handlers[name] = value as HandlerFn;
  }
  if (Object.keys(handlers).length === 0) {
    throw new UsageError(
      `--handlers: ${file} exports no handler functions; use \`export default { 'my.handler': async (ctx) => … }\``,
    );
  }
  return handlers;
}

/**
 * Imports a module. A TypeScript module needs a loader: the workspace runs the CLI under tsx; the
 * installed CLI is plain JavaScript, so it registers tsx when the user's project has it.
 */
export async function importModule(
  path: string,
  file: string,
  flag = '--handlers',
): Promise<Record<string, unknown>> {
  const url = pathToFileURL(path).href;
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw error;
    const tsx = await import('tsx/esm/api').catch(() => undefined);
    if (!tsx) {
      throw new UsageError(
        `${flag}: ${file} needs a TypeScript loader: install tsx in your project (npm install --save-dev tsx), or pass a JavaScript module`,
      );
    }
    tsx.register();
    return (await import(url)) as Record<string, unknown>;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
