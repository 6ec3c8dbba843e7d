import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import {
  type CalendarSpec,
  GroupLimitRequestSchema,
  type Job,
  type JobSpec,
  type JsonObject,
  type KairosClient,
  type Workflow,
  type WorkflowSpec,
} from '@kairos/client';
import { Value } from '@sinclair/typebox/value';
import type { Command } from 'commander';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { compileCalendar } from '../core/calendar.ts';
import { compileJob, minimalSpec, specFromJob, specOf } from '../core/job.ts';
import { replaceAtPaths, SECRET_MASK, valueAt } from '../core/secret-params.ts';
import { KairosError } from '../errors.ts';
import { type Change, diff, printPlan } from './change.ts';
import { printJson } from './format.ts';
import { clientFrom, type GlobalFlags, UsageError } from './options.ts';
import { importModule } from './worker.ts';
import { checkWorkflows, exportWorkflow, planWorkflows, putWorkflows } from './workflow-plan.ts';

export type { Change } from './change.ts';

/** A file of definitions: what `kairos apply` takes and `kairos export` writes. */
export interface Definitions {
  /** Who manages the jobs of this file (recorded on each job): `--prune` removes only this owner's jobs. */
  owner?: string;
  calendars?: CalendarSpec[];
  /** Group limits: `{ name, maxConcurrency?, rateLimit? }`. */
  groups?: GroupDefinition[];
  jobs?: JobSpec[];
  /** Workflows (docs/workflows.md), each the body of `PUT /v1/workflows/:name` with its name. */
  workflows?: WorkflowSpec[];
}

interface GroupDefinition {
  name: string;
  maxConcurrency?: number;
  rateLimit?: { limit: number; per: string | number };
}

interface ApplyFlags {
  file: string;
  dryRun?: boolean;
  owner?: string;
  prune?: boolean;
  takeOver?: boolean;
}

const OWNER = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

function checkOwner(value: unknown, where: string): string {
  if (typeof value !== 'string' || !OWNER.test(value))
    throw new UsageError(
      `${where}: an owner is a name: letters, digits and ._:-, starting with a letter or digit`,
    );
  return value;
}

/** Registers `kairos apply -f` and `kairos export`. */
export function registerApply(program: Command): void {
  program
    .command('apply')
    .description(
      'make the cluster match a file of jobs, workflows, calendars and group limits (YAML, JSON, or a JavaScript/TypeScript module): a diff first, then the changes',
    )
    .requiredOption('-f, --file <file>', 'the definitions: .yaml, .yml, .json, .js, .mjs or .ts')
    .option('--dry-run', 'print the diff, change nothing')
    .option('--owner <name>', "who manages the file's jobs, recorded on each (default: the file's owner key)")
    .option(
      '--prune',
      'delete the jobs of this owner that the file no longer lists (never jobs made by hand)',
    )
    .option('--take-over', 'manage jobs that another owner manages now')
    .action(async (options: ApplyFlags, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const definitions = await loadDefinitions(options.file);
      if (options.owner !== undefined) definitions.owner = checkOwner(options.owner, '--owner');
      if (options.prune && definitions.owner === undefined)
        throw new UsageError('--prune needs an owner: an owner key in the file, or --owner');
      const client = clientFrom(flags);
      const plan = await planApply(client, definitions, options);
      if (!options.dryRun) await carryOut(client, definitions, plan);
      if (flags.json) return printJson({ dryRun: options.dryRun === true, changes: plan });
      printPlan(plan, options.dryRun === true);
    });

  program
    .command('export')
    .description(
      'write every job, workflow, calendar and group limit as a file that `kairos apply -f` takes back unchanged',
    )
    .option('-o, --output <file>', 'write to this file (.yaml, .yml or .json) instead of standard output')
    .option('--job <name...>', 'only these jobs (and no workflows, calendars or groups)')
    .option('--owner <name>', 'only the jobs this owner manages, as its file (with its owner key)')
    .action(async (options: { output?: string; job?: string[]; owner?: string }, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const owner = options.owner === undefined ? undefined : checkOwner(options.owner, '--owner');
      const definitions = await exportDefinitions(clientFrom(flags), options.job, owner);
      const json = options.output ? extname(options.output) === '.json' : flags.json === true;
      const text = json ? `${JSON.stringify(definitions, null, 2)}\n` : stringifyYaml(definitions);
      if (options.output) writeFileSync(options.output, text);
      else process.stdout.write(text);
    });
}

/** Reads and checks a definitions file; every error names the entry. */
export async function loadDefinitions(file: string): Promise<Definitions> {
  return checkDefinitions(await readDefinitionsFile(file), file);
}

/** The value a file of definitions holds: YAML, JSON, or a module's default export; unchecked. */
export async function readDefinitionsFile(file: string): Promise<unknown> {
  const path = resolve(file);
  if (!existsSync(path)) throw new UsageError(`-f: no such file ${file}`);
  const ext = extname(path);
  let value: unknown;
  if (ext === '.yaml' || ext === '.yml' || ext === '.json') {
    const text = readFileSync(path, 'utf8');
    try {
      value = ext === '.json' ? JSON.parse(text) : parseYaml(text);
    } catch (error) {
      throw new UsageError(`-f: ${file} does not parse: ${(error as Error).message}`);
    }
  } else if (['.js', '.mjs', '.cjs', '.ts', '.mts'].includes(ext)) {
    const module = await importModule(path, file, '-f');
    value = module.default ?? module;
  } else throw new UsageError(`-f: ${file}: expected .yaml, .yml, .json, .js, .mjs or .ts`);
  return value;
}

function checkDefinitions(value: unknown, file: string): Definitions {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new UsageError(`-f: ${file}: expected an object with jobs, workflows, calendars and groups`);
  const {
    jobs = [],
    workflows = [],
    calendars = [],
    groups = [],
    owner,
    ...rest
  } = value as Record<string, unknown>;
  const unknown = Object.keys(rest);
  if (unknown.length > 0)
    throw new UsageError(
      `-f: ${file}: unknown key ${unknown[0]} (expected owner, jobs, workflows, calendars, groups)`,
    );
  for (const [key, list] of Object.entries({ jobs, workflows, calendars, groups }))
    if (!Array.isArray(list)) throw new UsageError(`-f: ${file}: ${key} must be a list`);
  const definitions = { jobs, workflows, calendars, groups } as Required<Definitions>;
  if (owner !== undefined) definitions.owner = checkOwner(owner, `-f: ${file}: owner`);
  for (const job of definitions.jobs as Array<JobSpec | undefined>)
    if (job && 'owner' in job)
      throw new UsageError(`-f: ${file}: job ${job.name}: a job's owner is the file's (its owner key)`);
  const seen = (kind: string, names: string[]) => {
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) throw new UsageError(`-f: ${file}: ${kind} ${dup} is listed twice`);
  };
  seen(
    'job',
    definitions.jobs.map((j) => j?.name),
  );
  seen(
    'calendar',
    definitions.calendars.map((c) => c?.name),
  );
  seen(
    'group',
    definitions.groups.map((g) => g?.name),
  );
  // Every entry compiles before anything is sent: a file with an invalid entry changes nothing.
  const at = (kind: string, name: unknown, error: unknown) => {
    if (error instanceof KairosError)
      return new UsageError(`-f: ${file}: ${kind} ${String(name)}: ${error.code}: ${error.message}`);
    return error;
  };
  for (const job of definitions.jobs) {
    try {
      compileJob(job);
    } catch (error) {
      throw at('job', job?.name, error);
    }
  }
  checkWorkflows(definitions.workflows, file);
  for (const calendar of definitions.calendars) {
    try {
      compileCalendar(calendar);
    } catch (error) {
      throw at('calendar', calendar?.name, error);
    }
  }
  for (const group of definitions.groups) {
    const { name, ...limits } = group ?? ({} as GroupDefinition);
    if (typeof name !== 'string' || !Value.Check(GroupLimitRequestSchema, limits))
      throw new UsageError(
        `-f: ${file}: group ${String(name)}: expected { name, maxConcurrency?, rateLimit?: { limit, per } }`,
      );
  }
  return definitions;
}

/** What applying would change, entry by entry, from what the node holds now. */
export async function planApply(
  client: KairosClient,
  definitions: Definitions,
  options: { prune?: boolean; takeOver?: boolean } = {},
): Promise<Change[]> {
  const owner = definitions.owner ?? null;
  const changes: Change[] = [];
  const calendars = new Map((await client.listCalendars()).items.map((c) => [c.name, c]));
  for (const spec of definitions.calendars ?? []) {
    const desired = compileCalendar(spec);
    const current = calendars.get(spec.name);
    const now = current && compileCalendar({ ...current, cron: current.cron ?? undefined });
    changes.push(diff('calendar', spec.name, now, desired));
  }
  const groups = new Map((await client.listGroups()).items.map((g) => [g.group, g]));
  for (const { name, ...limits } of definitions.groups ?? []) {
    const current = groups.get(name);
    const now = current && {
      maxConcurrency: current.maxConcurrency ?? undefined,
      rateLimit: current.rateLimit ?? undefined,
    };
    const desired = {
      maxConcurrency: limits.maxConcurrency,
      rateLimit: limits.rateLimit && { limit: limits.rateLimit.limit, per: perMs(limits.rateLimit.per) },
    };
    changes.push(diff('group', name, now, desired));
  }
  const calendarNames = new Set([...calendars.keys(), ...(definitions.calendars ?? []).map((c) => c.name)]);
  const fileJobs = new Set((definitions.jobs ?? []).map((j) => j.name));
  for (const spec of definitions.jobs ?? []) {
    for (const calendar of spec.schedule?.calendars ?? [])
      if (!calendarNames.has(calendar))
        throw new UsageError(`job ${spec.name}: calendar ${calendar} is neither in the file nor on the node`);
    const current = await getJob(client, spec.name);
    if (current && current.owner !== null && current.owner !== owner && !options.takeOver)
      throw new UsageError(
        `job ${spec.name} is managed by ${current.owner}; pass --take-over to manage it from this file`,
      );
    if (
      spec.trigger.kind === 'after' &&
      !fileJobs.has(spec.trigger.job) &&
      !(await getJob(client, spec.trigger.job))
    )
      throw new UsageError(
        `job ${spec.name}: its parent ${spec.trigger.job} is neither in the file nor on the node`,
      );
    // A revision is the declaring code's: a file that gives none keeps it.
    const desired = specOf(
      compileJob({ ...spec, owner, revision: spec.revision ?? current?.revision ?? null }),
    );
    // A file that does not say whether a job is paused leaves an operator's pause alone.
    const now =
      current &&
      specOf(
        compileJob({
          ...specFromJob(current),
          ...(spec.paused === undefined ? { paused: desired.paused } : {}),
        }),
      );
    // A secret a file holds in plain text is compared and shown as the node answers it ("***"),
    // never printed; it is sent, and the node writes it only when it differs from what it keeps.
    const sent = desired.params === undefined ? [] : plainSecrets(desired.params, desired.secretParams ?? []);
    const shown = sent.length === 0 ? desired : { ...desired, params: maskSecretsAt(desired.params!, sent) };
    let change = diff('job', spec.name, now, shown);
    if (now && sent.length > 0) {
      change = {
        ...change,
        action: 'update',
        fields: [
          ...change.fields,
          `secret params sent: ${sent.join(', ')} (kept by the node where unchanged)`,
        ],
      };
    }
    changes.push(
      current === undefined ? change : { ...change, version: current.version, revision: current.revision },
    );
  }
  if (options.prune && owner !== null) {
    for (const job of await allJobs(client))
      if (job.owner === owner && !fileJobs.has(job.name))
        changes.push({ kind: 'job', name: job.name, action: 'delete', fields: [], version: job.version });
    const deleted = new Set(changes.filter((c) => c.action === 'delete').map((c) => c.name));
    for (const spec of definitions.jobs ?? [])
      if (spec.trigger.kind === 'after' && deleted.has(spec.trigger.job))
        throw new UsageError(
          `job ${spec.name} runs after ${spec.trigger.job}, which --prune would delete: keep ${spec.trigger.job} in the file, or change ${spec.name}`,
        );
  }
  // Workflows have no owner: they are created and replaced, never pruned.
  changes.push(...(await planWorkflows(client, definitions.workflows ?? [])));
  return changes;
}

async function allJobs(client: KairosClient): Promise<Job[]> {
  const jobs: Job[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.listJobs({ limit: 500, ...(cursor ? { cursor } : {}) });
    jobs.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return jobs;
}

async function allWorkflows(client: KairosClient): Promise<Workflow[]> {
  const workflows: Workflow[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.listWorkflows({ limit: 500, cursor });
    workflows.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return workflows;
}

async function getJob(client: KairosClient, name: string): Promise<Job | undefined> {
  return client.getJob(name).catch((error: { code?: string }) => {
    if (error.code === 'JOB_NOT_FOUND') return undefined;
    throw error;
  });
}

/** The secret paths at which params hold a value other than the mask. */
function plainSecrets(params: JsonObject, paths: readonly string[]): string[] {
  return paths.filter((path) => {
    const value = valueAt(params, path);
    return value !== undefined && value !== SECRET_MASK;
  });
}

/** Params with the value at each path replaced by the mask. */
function maskSecretsAt(params: JsonObject, paths: readonly string[]): JsonObject {
  return replaceAtPaths(params, paths, () => SECRET_MASK);
}

function perMs(per: string | number): number {
  return typeof per === 'number'
    ? per
    : compileJob({ name: 'x', handler: 'x', trigger: { kind: 'manual' }, rateLimit: { limit: 1, per } })
        .dispatch.rateLimit!.perMs;
}

/**
 * Calendars and groups first (jobs name them), then jobs, parents before their `after` children,
 * then workflows (their `job` steps name jobs), then the prunes.
 */
export async function carryOut(
  client: KairosClient,
  definitions: Definitions,
  plan: Change[],
): Promise<void> {
  const todo = (kind: Change['kind'], name: string) =>
    plan.some((c) => c.kind === kind && c.name === name && c.action !== 'unchanged');
  for (const calendar of definitions.calendars ?? [])
    if (todo('calendar', calendar.name)) await client.putCalendar(calendar);
  for (const { name, ...limits } of definitions.groups ?? [])
    if (todo('group', name)) await client.setGroupLimits(name, limits);
  const jobs = [...(definitions.jobs ?? [])];
  const done = new Set<string>();
  while (jobs.length > 0) {
    const index = jobs.findIndex(
      (j) =>
        j.trigger.kind !== 'after' ||
        done.has(j.trigger.job) ||
        !jobs.some((o) => o.name === (j.trigger as { job: string }).job),
    );
    const [job] = jobs.splice(index === -1 ? 0 : index, 1);
    if (todo('job', job!.name)) {
      // An edit made since the diff was read is refused (409 VERSION_CONFLICT), never overwritten.
      const change = plan.find((c) => c.kind === 'job' && c.name === job!.name)!;
      const body = {
        ...job!,
        owner: definitions.owner ?? null,
        revision: job!.revision ?? change.revision ?? null,
      };
      // A job planned as new is created, never put: one made meanwhile (by hand, by a worker's
      // declaration) answers JOB_NAME_TAKEN instead of being taken over.
      if (change.action === 'create') await client.createJob(body);
      else await client.putJob(body, { ifMatch: change.version });
    }
    done.add(job!.name);
  }
  await putWorkflows(client, definitions.workflows ?? [], plan);
  // Only the version the plan read: a job edited or taken over since is not deleted.
  for (const change of plan)
    if (change.action === 'delete') await client.deleteJob(change.name, { ifMatch: change.version });
}

/** Every job (or the named ones), workflow, calendar and group limit, as `apply` takes them. */
export async function exportDefinitions(
  client: KairosClient,
  only?: string[],
  owner?: string,
): Promise<Definitions> {
  const jobs: Job[] = [];
  if (only) for (const name of only) jobs.push(await client.getJob(name));
  else jobs.push(...(await allJobs(client)).filter((job) => owner === undefined || job.owner === owner));
  const out: Definitions = owner === undefined ? {} : { owner };
  if (!only && owner === undefined) {
    // The file's owner is each of its jobs': one file holds the jobs of one owner (or of none).
    const owners = [...new Set(jobs.map((job) => job.owner))];
    if (owners.length > 1)
      throw new UsageError(
        `the jobs have several owners (${owners.map((o) => o ?? 'none').join(', ')}): export one file per owner with --owner, or name jobs with --job`,
      );
    if (owners[0]) out.owner = owners[0];
  }
  if (!only && owner === undefined) {
    const calendars = (await client.listCalendars()).items;
    if (calendars.length > 0)
      out.calendars = calendars.map((c) => {
        const d = compileCalendar({ ...c, cron: c.cron ?? undefined });
        return {
          name: d.name,
          ...(d.description ? { description: d.description } : {}),
          ...(d.timezone === 'UTC' ? {} : { timezone: d.timezone }),
          ...(d.dates.length ? { dates: d.dates } : {}),
          ...(d.periods.length ? { periods: d.periods } : {}),
          ...(d.weekdays.length ? { weekdays: d.weekdays } : {}),
          ...(d.cron ? { cron: d.cron } : {}),
        };
      });
    const groups = (await client.listGroups()).items.filter(
      (g) => g.maxConcurrency !== null || g.rateLimit !== null,
    );
    if (groups.length > 0)
      out.groups = groups.map((g) => ({
        name: g.group,
        ...(g.maxConcurrency === null ? {} : { maxConcurrency: g.maxConcurrency }),
        ...(g.rateLimit === null ? {} : { rateLimit: g.rateLimit }),
      }));
  }
  // A job's owner is the file's; the revision is its declaring code's.
  out.jobs = jobs
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((job) => {
      const { owner: _owner, revision: _revision, ...spec } = minimalSpec(specFromJob(job));
      return spec;
    });
  if (!only && owner === undefined) {
    const workflows = await allWorkflows(client);
    if (workflows.length > 0) out.workflows = workflows.map(exportWorkflow);
  }
  return out;
}
