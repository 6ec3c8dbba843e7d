import type { Namespace, NamespaceQuotas } from '@kairos/client';
import type { Command } from 'commander';
import { formatTime, printJson, table } from './format.ts';
import { clientFrom, type GlobalFlags, UsageError } from './options.ts';

/** The quota flags of `kairos namespaces quotas`, each the name of a quota (docs/tenancy.md#quotas). */
const QUOTA_FLAGS: ReadonlyArray<{ flag: string; quota: keyof NamespaceQuotas; what: string }> = [
  { flag: 'max-jobs', quota: 'maxJobs', what: 'jobs in the namespace' },
  {
    flag: 'max-fires-per-second',
    quota: 'maxFiresPerSecond',
    what: "sum of its jobs' worst-case fire rates",
  },
  { flag: 'min-interval', quota: 'minInterval', what: "smallest gap between a job's fires, e.g. 10s" },
  { flag: 'max-queued-runs', quota: 'maxQueuedRuns', what: 'queued runs of its jobs' },
  { flag: 'max-params-bytes', quota: 'maxParamsBytes', what: "a job's or a trigger's params, JSON bytes" },
  { flag: 'max-backfill-runs', quota: 'maxBackfillRuns', what: 'runs one backfill may create' },
  { flag: 'requests-per-second', quota: 'requestsPerSecond', what: 'API requests per second, per node' },
];

/** Registers `kairos namespaces …`: list them, show or set a namespace's quotas (global admins set). */
export function registerNamespaces(program: Command): void {
  const namespaces = program.command('namespaces').description('namespaces and their quotas');

  namespaces
    .command('list')
    .description('list the namespaces you may see, with your role in each')
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const { items } = await clientFrom(flags).listNamespaces();
      if (flags.json) return printJson(items);
      console.log(
        table(
          ['NAME', 'ROLE', 'QUOTAS', 'CREATED'],
          items.map((n) => [n.name, n.role, quotasText(n), formatTime(n.createdAt)]),
        ),
      );
    });

  const quotas = namespaces
    .command('quotas <name>')
    .description(
      "show a namespace's quotas; with flags, replace them (global admin): a quota not given, or 'none', is unlimited",
    );
  for (const { flag, what } of QUOTA_FLAGS) quotas.option(`--${flag} <value>`, what);
  quotas.action(async (name: string, options: Record<string, string | undefined>, cmd: Command) => {
    const flags = cmd.optsWithGlobals<GlobalFlags>();
    const client = clientFrom(flags);
    const given = QUOTA_FLAGS.filter(({ quota }) => options[quota] !== undefined);
    const namespace =
      given.length === 0
        ? await client.getNamespace(name)
        : await client.putNamespaceQuotas(name, quotasFrom(options));
    if (flags.json) return printJson(namespace.quotas ?? null);
    console.log(
      table(
        ['QUOTA', 'LIMIT'],
        QUOTA_FLAGS.map(({ flag, quota }) => [flag, String(namespace.quotas?.[quota] ?? 'unlimited')]),
      ),
    );
  });
}

function quotasFrom(options: Record<string, string | undefined>): NamespaceQuotas {
  const quotas: Record<string, number | string | null> = {};
  for (const { flag, quota } of QUOTA_FLAGS) {
    const value = options[quota];
    if (value === undefined || value === 'none') continue;
    if (quota === 'minInterval') {
      quotas[quota] = /^\d+$/.test(value) ? Number(value) : value;
      continue;
    }
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0 || (quota !== 'maxFiresPerSecond' && !Number.isInteger(n))) {
      throw new UsageError(
        `--${flag}: expected a ${quota === 'maxFiresPerSecond' ? 'number' : 'whole number'} ≥ 0 or 'none', got ${JSON.stringify(value)}`,
      );
    }
    quotas[quota] = n;
  }
  return quotas as NamespaceQuotas;
}

function quotasText(namespace: Namespace): string {
  const set = QUOTA_FLAGS.filter(({ quota }) => (namespace.quotas?.[quota] ?? null) !== null);
  return set.length === 0
    ? '-'
    : set.map(({ flag, quota }) => `${flag}=${namespace.quotas![quota]}`).join(' ');
}
