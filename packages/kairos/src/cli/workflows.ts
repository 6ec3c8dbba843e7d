import type { KairosClient, SkippedFires, Workflow, WorkflowInstance, WorkflowStart } from '@kairos/client';
import type { Command } from 'commander';
import { readDefinitionsFile } from './apply.ts';
import { printPlan } from './change.ts';
import {
  compactJson,
  elapsed,
  formatTime,
  formatTrigger,
  keyValues,
  printJson,
  table,
  truncate,
  zoneOf,
} from './format.ts';
import { clientFrom, type GlobalFlags, parseIntFlag, parseJsonObject } from './options.ts';
import { checkWorkflows, planWorkflows, putWorkflows } from './workflow-plan.ts';

type Step = Workflow['steps'][number];
type InstanceStep = WorkflowInstance['steps'][number];

/**
 * Registers `kairos workflows …` (docs/workflows.md#cli): definitions (list, get, apply, delete),
 * their trigger (pause-trigger, resume-trigger, skipped), instances (start, instances, instance)
 * and the actions on an instance (cancel, pause, resume, retry, rerun-step, skip-step).
 */
export function registerWorkflows(program: Command): void {
  const workflows = program
    .command('workflows')
    .description('define workflows, start them, and watch and repair their instances');

  workflows
    .command('list')
    .description('list workflows')
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const client = clientFrom(flags);
      const items: Workflow[] = [];
      let cursor: string | undefined;
      do {
        const page = await client.listWorkflows({ limit: 500, cursor });
        items.push(...page.items);
        cursor = page.nextCursor ?? undefined;
      } while (cursor);
      if (flags.json) return printJson(items);
      if (items.length === 0)
        return console.log('no workflows yet: define one with `kairos workflows apply -f FILE`');
      console.log(
        table(
          ['NAME', 'VERSION', 'STEPS', 'UPDATED', 'DESCRIPTION'],
          items.map((w) => [
            w.name,
            String(w.version),
            String(w.steps.length),
            formatTime(w.updatedAt),
            truncate(w.description, 48),
          ]),
        ),
      );
    });

  workflows
    .command('get')
    .argument('<name>', 'workflow name')
    .description('show a workflow and its steps')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const workflow = await clientFrom(flags).getWorkflow(name);
      if (flags.json) return printJson(workflow);
      const manual = workflow.trigger.kind === 'manual';
      console.log(
        keyValues([
          ['name', workflow.name],
          ['description', workflow.description || undefined],
          ['version', String(workflow.version)],
          ['trigger', formatTrigger(workflow.trigger)],
          ['overlap', manual ? undefined : workflow.schedule.overlap],
          ['paused', manual ? undefined : workflow.paused ? 'yes (pause-trigger)' : 'no'],
          ['next fire', manual ? undefined : formatTime(workflow.nextFireAt, zoneOf(workflow.trigger))],
          ['created', formatTime(workflow.createdAt)],
          ['updated', formatTime(workflow.updatedAt)],
        ]),
      );
      console.log('');
      const maps = workflow.steps.some((step) => step.map !== undefined);
      console.log(
        table(
          ['STEP', 'RUNS', 'AFTER', 'JOIN', ...(maps ? ['MAP'] : [])],
          workflow.steps.map((step) => [
            step.id,
            runsOf(step),
            step.after.map(formatEdge).join(', ') || '-',
            step.after.length > 1 ? step.join : '-',
            ...(maps ? [formatMap(step)] : []),
          ]),
        ),
      );
    });

  workflows
    .command('apply')
    .description('create or replace workflows from a file: a diff first, then the changes')
    .requiredOption(
      '-f, --file <file>',
      'one workflow ({ name, steps }) or a list of them: .yaml, .yml, .json, .js, .mjs or .ts',
    )
    .option('--dry-run', 'print the diff, change nothing')
    .action(async (options: { file: string; dryRun?: boolean }, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const value = await readDefinitionsFile(options.file);
      const specs = checkWorkflows(Array.isArray(value) ? value : [value], options.file);
      const client = clientFrom(flags);
      const plan = await planWorkflows(client, specs);
      if (!options.dryRun) await putWorkflows(client, specs, plan);
      if (flags.json) return printJson({ dryRun: options.dryRun === true, changes: plan });
      printPlan(plan, options.dryRun === true);
    });

  workflows
    .command('delete')
    .argument('<name>', 'workflow name')
    .description('delete a workflow with its instances')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      await clientFrom(flags).deleteWorkflow(name);
      if (flags.json) return printJson({ deleted: name });
      console.log(`deleted workflow ${name}`);
    });

  const triggerAction = (name: string, description: string, paused: boolean) =>
    workflows
      .command(name)
      .argument('<name>', 'workflow name')
      .description(description)
      .action(async (workflowName: string, _options: unknown, cmd: Command) => {
        const flags = cmd.optsWithGlobals<GlobalFlags>();
        const client = clientFrom(flags);
        const workflow = paused
          ? await client.pauseWorkflow(workflowName)
          : await client.resumeWorkflow(workflowName);
        if (flags.json) return printJson(workflow);
        console.log(
          `workflow ${workflow.name}: trigger ${workflow.paused ? 'paused' : 'resumed'}` +
            (workflow.trigger.kind === 'manual' ? ' (it is manual: it never fires)' : ''),
        );
      });
  triggerAction(
    'pause-trigger',
    "stop a workflow's trigger from firing (starts by hand still work; instances go on)",
    true,
  );
  triggerAction(
    'resume-trigger',
    "let a workflow's trigger fire again; the fires missed meanwhile go to its ledger",
    false,
  );

  workflows
    .command('skipped')
    .argument('<name>', 'workflow name')
    .description("fires of a workflow's trigger that started no instance, with the reason, newest first")
    .option('--limit <n>', 'the most entries to show (default 50)')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags & { limit?: string }>();
      const limit =
        flags.limit === undefined ? 50 : parseIntFlag(flags.limit, '--limit', { min: 1, max: 500 });
      const page = await clientFrom(flags).listWorkflowSkipped(name, { limit });
      if (flags.json) return printJson(page.items);
      if (page.items.length === 0) return console.log(`no skipped fires for workflow ${name}`);
      console.log(
        table(
          ['REASON', 'FIRST FIRE', 'LAST FIRE', 'COUNT', 'RECORDED'],
          page.items.map((entry: SkippedFires) => [
            entry.reason,
            formatTime(entry.firstFireTime),
            formatTime(entry.lastFireTime),
            entry.count === null ? 'many' : String(entry.count),
            formatTime(entry.recordedAt),
          ]),
        ),
      );
    });

  workflows
    .command('start')
    .argument('<name>', 'workflow name')
    .description('start an instance; prints its id')
    .option('--context <json>', 'a JSON object every step receives as $workflow.context')
    .option(
      '--idempotency-key <key>',
      'a second start with the same key answers the instance the first started',
    )
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags & { context?: string; idempotencyKey?: string }>();
      const request: WorkflowStart = {};
      if (flags.context !== undefined) request.context = parseJsonObject(flags.context, '--context');
      if (flags.idempotencyKey !== undefined) request.idempotencyKey = flags.idempotencyKey;
      const instance = await clientFrom(flags).startWorkflow(name, request);
      if (flags.json) return printJson(instance);
      console.log(instance.id);
      if (process.stderr.isTTY)
        console.error(
          `instance ${instance.id} ${instance.state}; watch it with: kairos workflows instance ${instance.id}`,
        );
    });

  workflows
    .command('instances')
    .argument('<name>', 'workflow name')
    .description("list a workflow's instances, newest first")
    .option('--limit <n>', 'page size (default 50)')
    .option('--cursor <cursor>', 'the page after this cursor, as printed by the previous page')
    .action(async (name: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags & { limit?: string; cursor?: string }>();
      const limit =
        flags.limit === undefined ? undefined : parseIntFlag(flags.limit, '--limit', { min: 1, max: 1000 });
      const page = await clientFrom(flags).listWorkflowInstances(name, { limit, cursor: flags.cursor });
      if (flags.json) return printJson(page);
      if (page.items.length === 0)
        return console.log(`no instances of ${name} yet: start one with \`kairos workflows start ${name}\``);
      console.log(
        table(
          ['ID', 'STATE', 'VERSION', 'STEPS ENDED', 'STARTED', 'DURATION'],
          page.items.map((instance) => [
            String(instance.id),
            instance.state,
            String(instance.version),
            `${instance.steps.filter(ended).length}/${instance.steps.length}`,
            formatTime(instance.startedAt),
            elapsed(instance.startedAt, instance.finishedAt),
          ]),
        ),
      );
      if (page.nextCursor)
        console.log(`\nmore: kairos workflows instances ${name} --cursor ${page.nextCursor}`);
    });

  workflows
    .command('instance')
    .argument('<id>', 'instance id')
    .description('show an instance and the state and run of each step')
    .action(async (id: string, _options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      showInstance(flags, await clientFrom(flags).getWorkflowInstance(parseInstanceId(id)));
    });

  const action = (
    name: string,
    description: string,
    call: (client: KairosClient, id: number) => Promise<WorkflowInstance>,
  ) =>
    workflows
      .command(name)
      .argument('<id>', 'instance id')
      .description(description)
      .action(async (id: string, _options: unknown, cmd: Command) => {
        const flags = cmd.optsWithGlobals<GlobalFlags>();
        const instance = await call(clientFrom(flags), parseInstanceId(id));
        if (flags.json) return printJson(instance);
        console.log(`instance ${instance.id} of ${instance.workflow}: ${instance.state}`);
      });
  action('cancel', 'cancel a running instance and its queued and running step runs', (c, id) =>
    c.cancelWorkflowInstance(id),
  );
  action('pause', 'pause a running instance: no further step is queued until it is resumed', (c, id) =>
    c.pauseWorkflowInstance(id),
  );
  action('resume', 'resume a paused instance', (c, id) => c.resumeWorkflowInstance(id));
  action('retry', 'run the failed and cancelled steps of a failed or cancelled instance again', (c, id) =>
    c.retryWorkflowInstance(id),
  );

  const stepAction = (
    name: string,
    description: string,
    call: (client: KairosClient, id: number, step: string) => Promise<WorkflowInstance>,
  ) =>
    workflows
      .command(name)
      .argument('<id>', 'instance id')
      .argument('<step>', 'step id')
      .description(description)
      .action(async (id: string, stepId: string, _options: unknown, cmd: Command) => {
        const flags = cmd.optsWithGlobals<GlobalFlags>();
        const instance = await call(clientFrom(flags), parseInstanceId(id), stepId);
        if (flags.json) return printJson(instance);
        const step = instance.steps.find((s) => s.id === stepId);
        const run = step?.runId ? `, run ${step.runId}` : '';
        console.log(
          `step ${stepId} of instance ${instance.id}: ${step ? stateOf(step) : '-'}${run}; instance ${instance.state}`,
        );
      });
  stepAction('rerun-step', 'run an ended step again, and the steps after it', (c, id, step) =>
    c.rerunWorkflowStep(id, step),
  );
  stepAction(
    'skip-step',
    'end a step as a success with no result, by hand: its children go on',
    (c, id, step) => c.skipWorkflowStep(id, step),
  );
}

function parseInstanceId(value: string): number {
  return parseIntFlag(value, 'instance id', { min: 1 });
}

function showInstance(flags: GlobalFlags, instance: WorkflowInstance): void {
  if (flags.json) {
    printJson(instance);
    return;
  }
  console.log(
    keyValues([
      ['id', String(instance.id)],
      ['workflow', `${instance.workflow} (version ${instance.version})`],
      ['state', instance.state],
      ['context', compactJson(instance.context)],
      ['started', formatTime(instance.startedAt)],
      ['finished', formatTime(instance.finishedAt)],
      ['duration', elapsed(instance.startedAt, instance.finishedAt)],
    ]),
  );
  console.log('');
  console.log(
    table(
      ['STEP', 'STATE', 'RUN'],
      instance.steps.map((step) => [step.id, stateOf(step), step.runId === null ? '-' : String(step.runId)]),
    ),
  );
}

const ENDED = new Set(['succeeded', 'failed', 'skipped', 'cancelled']);

function ended(step: InstanceStep): boolean {
  return ENDED.has(step.state);
}

/** A step's state; a step skipped by hand (a success with no result) says so. */
function stateOf(step: InstanceStep): string {
  return 'skipped' in step && step.skipped === true ? 'skipped by hand' : step.state;
}

/**
 * What a step runs: `handler extract (group etl)`, `shell pg_dump`, `http POST https://…` or
 * `job warehouse-load`.
 */
function runsOf(step: Step): string {
  if (step.job !== undefined) return `job ${step.job}`;
  const runs = step.task
    ? step.task.kind === 'shell'
      ? `shell ${step.task.command}`
      : `http ${step.task.method ?? 'GET'} ${step.task.url}`
    : `handler ${step.handler}`;
  return step.group === undefined || step.group === 'default' ? runs : `${runs} (group ${step.group})`;
}

/** A map step's settings: `from list.files, 5 parallel, at most 10000 items, 1 may fail`; `-` for others. */
function formatMap(step: Step): string {
  const map = step.map;
  if (!map) return '-';
  const from = map.path === undefined ? map.from : `${map.from}.${map.path}`;
  return `from ${from}, ${map.maxParallel} parallel, at most ${map.maxItems} items, ${map.tolerateFailures} may fail`;
}

/** An edge: `extract`, `load on failure`, `stats if kind = "big"`. */
function formatEdge(edge: Step['after'][number]): string {
  if (edge.on === 'success') return edge.step;
  if (typeof edge.on === 'string') return `${edge.step} on ${edge.on}`;
  return `${edge.step} if ${edge.on.path} = ${JSON.stringify(edge.on.equals)}`;
}
