import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Worker } from '@kairos/worker';
import type { Command } from 'commander';
import { type GlobalFlags, parseIntFlag, resolveToken, UsageError } from './options.ts';

/** A handler function as `Worker.handle` takes it. */
export type HandlerFn = Parameters<Worker['handle']>[1];

interface WorkerFlags extends GlobalFlags {
  handlers: string;
  group: string;
  concurrency: string;
}

/** Registers `kairos worker --handlers FILE`. */
export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run a worker with the handlers a module exports')
    .requiredOption(
      '--handlers <file>',
      'a .ts or .js module: `export default { name: fn }` or named function exports',
    )
    .option('--group <group>', 'worker group to serve', 'default')
    .option('--concurrency <n>', 'runs at the same time', '4')
    .addHelpText(
      'after',
      '\nToken: --token, else KAIROS_WORKER_TOKEN, else workerToken of <data-dir>/credentials.json.',
    )
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<WorkerFlags>();
      const concurrency = parseIntFlag(flags.concurrency, '--concurrency', { min: 1, max: 1000 });
      const token = resolveToken(flags, 'worker');
      if (!token) {
        throw new UsageError(
          'no worker token: pass --token, set KAIROS_WORKER_TOKEN, or run where <data-dir>/credentials.json exists',
        );
      }
      const handlers = await loadHandlers(flags.handlers);
      const { Worker } = await import('@kairos/worker');
      const worker = new Worker({ url: flags.url, token, group: flags.group, concurrency });
      for (const [name, fn] of Object.entries(handlers)) worker.handle(name, fn);
      console.error(`worker: connecting to ${flags.url} (group ${flags.group}, concurrency ${concurrency})…`);
      await worker.start();
      console.error(
        `worker ${worker.id} ready; handlers: ${Object.keys(handlers).join(', ')}. Ctrl+C stops it.`,
      );
    });
}

/**
 * Imports a handlers module and answers its handlers by name: the functions of its default
 * export object, or else its named function exports.
 */
export async function loadHandlers(file: string): Promise<Record<string, HandlerFn>> {
  const path = resolve(file);
  if (!existsSync(path)) throw new UsageError(`--handlers: no such file ${path}`);
  const module = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
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

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
