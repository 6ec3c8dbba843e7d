import { readFileSync } from 'node:fs';
import { KairosApiError } from '@kairos/client';
import { Command, CommanderError, Option } from 'commander';
import { KairosError } from '../errors.ts';
import { registerAlerts, registerChannels } from './alerts.ts';
import { registerApply } from './apply.ts';
import { registerCalendars } from './calendars.ts';
import { registerCompletion } from './completion.ts';
import { registerDoctor } from './doctor.ts';
import { registerFleet } from './fleet.ts';
import { registerImport } from './import.ts';
import { registerJobs } from './jobs.ts';
import { registerNamespaces } from './namespaces.ts';
import { DEFAULT_URL, UsageError } from './options.ts';
import { registerRuns } from './runs.ts';
import { registerSecrets } from './secrets.ts';
import { registerServer } from './server.ts';
import { registerUsers } from './users.ts';
import { registerWorker } from './worker.ts';
import { registerWorkers } from './workers.ts';
import { registerWorkflows } from './workflows.ts';

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ETIMEDOUT',
]);

/** Builds the `kairos` program. Commands throw; {@link reportError} turns errors into exit codes. */
export function buildProgram(): Command {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  const program: Command = new Command('kairos')
    .description('Kairos: a distributed task scheduler')
    .version(pkg.version)
    .exitOverride()
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .showHelpAfterError('(add --help for usage)')
    .addOption(
      new Option(
        '--url <url>',
        'URL of a Kairos node (`kairos worker`: several, comma-separated or repeated)',
      )
        .env('KAIROS_URL')
        .default(DEFAULT_URL)
        // A repeated --url adds to the list instead of replacing it (the default and KAIROS_URL do not).
        .argParser((value: string, previous: string): string =>
          program.getOptionValueSource('url') === 'cli' ? `${previous},${value}` : value,
        ),
    )
    .addOption(
      new Option(
        '--token <token>',
        'API token (env KAIROS_TOKEN, else adminToken of <data-dir>/credentials.json)',
      ),
    )
    .addOption(
      new Option('-n, --namespace <name>', "namespace to act in (default: the node's default)").env(
        'KAIROS_NAMESPACE',
      ),
    )
    .addOption(new Option('--data-dir <dir>', 'data folder (default .kairos)').env('KAIROS_DATA_DIR'))
    .option('--json', 'print raw JSON instead of tables');
  registerServer(program);
  registerWorker(program);
  registerJobs(program);
  registerRuns(program);
  registerWorkflows(program);
  registerWorkers(program);
  registerCalendars(program);
  registerAlerts(program);
  registerChannels(program);
  registerUsers(program);
  registerNamespaces(program);
  registerSecrets(program);
  registerFleet(program);
  registerDoctor(program);
  registerImport(program);
  registerApply(program);
  registerCompletion(program);
  return program;
}

/** Prints an error for humans and answers the exit code: 2 for bad usage, 1 for the rest. */
export function reportError(error: unknown, url: string): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2; // commander printed it
  if (error instanceof UsageError) {
    console.error(`error: ${error.message}`);
    return 2;
  }
  if (error instanceof KairosApiError || error instanceof KairosError) {
    console.error(`error ${error.code}: ${error.message}`);
    if (error.details !== undefined && error.details !== null) {
      console.error(JSON.stringify(error.details, null, 2));
    }
    if (error instanceof KairosApiError && error.status === 401) {
      console.error('hint: pass --token, set KAIROS_TOKEN, or run where <data-dir>/credentials.json exists');
    }
    return 1;
  }
  const network = networkCode(error);
  if (network) {
    console.error(
      `error: cannot reach a Kairos node at ${url} (${network}). Is it running? Start one with \`kairos start\`.`,
    );
    return 1;
  }
  if (error instanceof Error && error.name === 'TimeoutError') {
    console.error(`error: the node at ${url} did not answer in time`);
    return 1;
  }
  const message = error instanceof Error ? error.message : String(error);
  console.error(`error: ${message}`);
  if (error instanceof Error && error.stack) {
    console.error(process.env.KAIROS_DEBUG ? error.stack : '(set KAIROS_DEBUG=1 for the stack trace)');
  }
  return 1;
}

/** Why a `fetch` failed (`TypeError: fetch failed` with a cause), e.g. `ECONNREFUSED`; undefined for other errors. */
function networkCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const { code, errors, cause } = e as { code?: unknown; errors?: unknown; cause?: unknown };
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    e = Array.isArray(errors) ? errors[0] : cause;
  }
  if (error instanceof TypeError && error.message === 'fetch failed') {
    return error.cause instanceof Error ? error.cause.message : 'fetch failed';
  }
  return undefined;
}
