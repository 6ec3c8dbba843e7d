import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { waitFor } from '../processes.ts';
import { referenceEvaluation } from '../workflow-reference.ts';
import { readEvents } from './history-log.ts';
import { rng } from './nemesis.ts';
import { System, sleep } from './system.ts';
import { chaosWorkflow, readWorkflowSnapshot, referenceSteps, request } from './workflows-chaos.ts';

// Workflows under kill -9 (docs/workflows.md, "How it is tested"): 3 nodes on a private PostgreSQL
// and 2 workers; 20 instances of a 50-step workflow (joins, failure, always and predicate edges)
// run while nodes and workers are killed and restarted. At the end every instance ended, each
// step had one run (attempts within its policy, each attempt's handler called once at most), and
// each instance's steps and outcome are the reference evaluation's of the steps' actual ends.
// Waits for events only: progress between faults, every instance's end.

const seed = Number(process.env.CHAOS_SEED ?? 20261205);
const INSTANCES = 20;
const STEPS = 50;
const FAULTS = 8;
const FINAL = ['succeeded', 'failed', 'timed_out', 'cancelled'];

it(`workflow instances end as the reference evaluation says while nodes and workers are killed (seed ${seed})`, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kairos-chaos-workflows-'));
  const history = join(dir, 'history.jsonl');
  const log: string[] = [];
  const system = new System({
    store: 'postgres',
    nodes: 3,
    workers: 2,
    network: false,
    slowLinks: false,
    dir,
    history,
    log: (line) => log.push(line),
  });
  const random = rng(seed);
  const steps = chaosWorkflow(seed, STEPS);
  const snapshot = () => readWorkflowSnapshot(system.postgres!.url, 'chaos');
  const endedRuns = async () => (await snapshot()).runs.filter((r) => FINAL.includes(r.status)).length;
  const faults: string[] = [];
  try {
    await system.start();
    await request(system, 'PUT', '/v1/workflows/chaos-flow', { steps });
    const start = (variant: number) =>
      request<{ id: number }>(system, 'POST', '/v1/workflows/chaos-flow/instances', {
        context: { variant },
        idempotencyKey: `variant-${variant}`,
      });
    // Half the instances start before the faults, the others two by two during them (a start whose
    // node dies is sent again, with its idempotency key, to another node).
    let started = 0;
    const startNext = async () => {
      if (started < INSTANCES) await start(started++);
    };
    while (started < INSTANCES / 2) await startNext();
    for (let f = 0; f < FAULTS; f++) {
      // Each fault once the cluster made progress since the last: step runs end between faults.
      // When every started instance ended meanwhile, the next one starts.
      const before = await endedRuns();
      const progressed = await waitFor(
        async () => {
          const s = await snapshot();
          if (s.instances.every((i) => i.state !== 'running')) return 'all-ended';
          return s.runs.filter((r) => FINAL.includes(r.status)).length >= before + 25
            ? 'progress'
            : undefined;
        },
        300_000,
        `progress before fault ${f + 1}`,
      );
      if (progressed === 'all-ended') {
        if (started === INSTANCES) break;
        await startNext();
      }
      const node = system.nodeSlots()[Math.floor(random() * 3)]!;
      const worker = system.workerSlots()[Math.floor(random() * 2)]!;
      const kind = ['node', 'worker', 'both'][f % 3]!;
      faults.push(`${kind}: ${kind === 'worker' ? worker : node}${kind === 'both' ? ` and ${worker}` : ''}`);
      const kills: Promise<void>[] = [];
      if (kind !== 'worker') kills.push(system.kill(system.nodes.get(node)!));
      if (kind !== 'node') kills.push(system.kill(system.workers.get(worker)!));
      await Promise.all(kills);
      await startNext();
      await sleep(300 + Math.floor(random() * 2000));
      if (kind !== 'worker') await system.startNode(node);
      if (kind !== 'node') system.startWorker(worker);
      await startNext();
    }
    while (started < INSTANCES) await startNext();

    // Honest time for the cluster: lost attempts wait out the worker lease, then retry.
    const end = await waitFor(
      async () => {
        const s = await snapshot();
        return s.instances.length === INSTANCES && s.instances.every((i) => i.state !== 'running')
          ? s
          : undefined;
      },
      300_000,
      'every instance to end',
    ).catch(async (error) => {
      const s = await snapshot();
      const stuck = s.instances.filter((i) => i.state === 'running');
      const open = s.steps.filter(
        (st) => stuck.some((i) => i.id === st.instanceId) && (st.state === 'ready' || st.state === 'waiting'),
      );
      throw new Error(
        `${String(error)}; stuck instances ${stuck.map((i) => i.id)}; their open steps: ${JSON.stringify(
          open.map((st) => ({ ...st, run: s.runs.find((r) => r.id === st.runId) })),
        ).slice(0, 4000)}`,
      );
    });

    // Handler calls per (instance, step) and per (run, attempt), as the workers recorded them.
    const calls = new Map<string, number>();
    const perAttempt = new Map<string, number>();
    for (const e of readEvents(history)) {
      if (e.t !== 'exec' || !e.workflow) continue;
      const key = `${e.workflow.instanceId}:${e.workflow.step}`;
      calls.set(key, (calls.get(key) ?? 0) + 1);
      perAttempt.set(`${e.runId}:${e.attempt}`, (perAttempt.get(`${e.runId}:${e.attempt}`) ?? 0) + 1);
    }
    const problems: string[] = [];
    for (const [attempt, n] of perAttempt)
      if (n > 1) problems.push(`run:attempt ${attempt} executed ${n} times`);
    const reference = referenceSteps(steps);
    const outcomes = { succeeded: 0, failed: 0 };
    let retried = 0;
    for (const instance of end.instances) {
      const rows = new Map(end.steps.filter((s) => s.instanceId === instance.id).map((s) => [s.step, s]));
      const runs = end.runs.filter((r) => r.instanceId === instance.id);
      for (const step of steps) {
        const stepRuns = runs.filter((r) => r.step === step.id);
        const where = `instance ${instance.id} (variant ${instance.variant}) step ${step.id}`;
        if (stepRuns.length > 1) problems.push(`${where}: ${stepRuns.length} runs`);
        const run = stepRuns[0];
        const n = calls.get(`${instance.id}:${step.id}`) ?? 0;
        if (run) {
          if (!FINAL.includes(run.status)) problems.push(`${where}: its run is ${run.status}`);
          if (run.attempt > run.maxAttempts || run.attempts > run.maxAttempts)
            problems.push(`${where}: attempt ${run.attempt}, ${run.attempts} rows, of ${run.maxAttempts}`);
          if (n > run.maxAttempts) problems.push(`${where}: its handler ran ${n} times`);
          if (run.status === 'succeeded' && n === 0) problems.push(`${where}: succeeded, never executed`);
          if (rows.get(step.id)?.runId !== run.id) problems.push(`${where}: the step names another run`);
          if (run.attempt > 1) retried++;
        } else if (n > 0) problems.push(`${where}: its handler ran ${n} times without a run`);
      }
      // The reference evaluation of the steps' actual ends: a step's run succeeded or it failed.
      const evaluation = referenceEvaluation(reference, (id) => {
        const run = runs.find((r) => r.step === id);
        if (!run) problems.push(`instance ${instance.id}: step ${id} should have run, has no run`);
        return run?.status === 'succeeded' ? { ok: true, result: run.result } : { ok: false };
      });
      for (const id of evaluation.ran) {
        const state = rows.get(id)?.state;
        const run = runs.find((r) => r.step === id);
        const expected = run?.status === 'succeeded' ? 'succeeded' : 'failed';
        if (state !== expected)
          problems.push(`instance ${instance.id}: step ${id} is ${state}, not ${expected}`);
      }
      for (const id of evaluation.skipped) {
        if (rows.get(id)?.state !== 'skipped')
          problems.push(`instance ${instance.id}: step ${id} is ${rows.get(id)?.state}, not skipped`);
        if (runs.some((r) => r.step === id))
          problems.push(`instance ${instance.id}: skipped step ${id} has a run`);
      }
      if (instance.state !== evaluation.outcome)
        problems.push(
          `instance ${instance.id}: ended ${instance.state}, the reference says ${evaluation.outcome}`,
        );
      if (instance.state === 'succeeded' || instance.state === 'failed') outcomes[instance.state]++;
    }
    console.log(
      `workflow chaos (seed ${seed}): ${end.instances.length} instances (${outcomes.succeeded} succeeded, ` +
        `${outcomes.failed} failed), ${end.runs.length} step runs (${retried} with a second attempt, ` +
        `${end.runs.reduce((n, r) => n + r.lost, 0)} attempts lost with a killed worker), ` +
        `${[...calls.values()].reduce((a, b) => a + b, 0)} handler calls; faults: ${faults.join('; ')}; files in ${dir}`,
    );
    expect(problems).toEqual([]);
    // The run did what it claims: faults while instances ran, both outcomes, planned retries.
    expect(faults.length).toBeGreaterThanOrEqual(4);
    expect(outcomes.succeeded).toBeGreaterThan(0);
    expect(outcomes.failed).toBeGreaterThan(0);
    expect(retried).toBeGreaterThan(0);
  } catch (error) {
    console.log(log.join('\n'));
    for (const m of [...system.nodes.values(), ...system.workers.values()])
      console.log(`--- ${m.name}\n${m.output.join('').slice(-2000)}`);
    throw error;
  } finally {
    await system.shutdown();
  }
}, 600_000);
