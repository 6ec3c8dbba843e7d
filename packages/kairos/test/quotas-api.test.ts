import { type KairosApiError, KairosClient } from '@kairos/client';
import { beforeAll, describe, expect, it } from 'vitest';
import type { KairosNode } from '../src/node.ts';
import { apiError, startTestNode } from './helpers.ts';

/**
 * Namespace quotas through the HTTP API of a real node on SQLite (docs/tenancy.md#quotas): set by a
 * global admin, each quota refusing with QUOTA_EXCEEDED and its limit, nothing written on refusal,
 * concurrent creates never past maxJobs, refusals counted in /metrics. The store's part runs on both
 * dialects in the conformance suite (test/conformance/namespaces.ts).
 */

let node: KairosNode;
let admin: KairosClient;

beforeAll(async () => {
  ({ node, admin } = await startTestNode());
});

/** A fresh namespace with these quotas, and a global admin's client acting in it. */
async function namespaceWith(name: string, quotas: Parameters<KairosClient['putNamespaceQuotas']>[1]) {
  await admin.createNamespace({ name });
  await admin.putNamespaceQuotas(name, quotas);
  return new KairosClient({ url: node.url, token: 'admin-t', namespace: name });
}

const manual = (name: string) => ({ name, handler: 'h', trigger: { kind: 'manual' as const } });
const every = (name: string, interval: string) => ({
  name,
  handler: 'h',
  trigger: { kind: 'every' as const, every: interval },
});

async function refusalsCounted(namespace: string, quota: string): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`kairos_quota_refusals_total{namespace="${namespace}",quota="${quota}"}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('namespace quotas', () => {
  it('a global admin sets them; GET shows them; a namespace admin may not', async () => {
    await admin.createNamespace({ name: 'q-set' });
    expect((await admin.getNamespace('q-set')).quotas).toBeNull();
    const set = await admin.putNamespaceQuotas('q-set', { maxJobs: 5, minInterval: 30_000 });
    expect(set.quotas).toMatchObject({ maxJobs: 5, minInterval: '30s', maxQueuedRuns: null });
    expect((await admin.getNamespace('q-set')).quotas).toMatchObject({ maxJobs: 5, minInterval: '30s' });
    expect((await admin.listNamespaces()).items.find((n) => n.name === 'q-set')?.quotas).toMatchObject({
      maxJobs: 5,
    });
    expect(await apiError(admin.putNamespaceQuotas('q-set', { minInterval: 'often' }))).toMatchObject({
      status: 400,
      code: 'INVALID_DURATION',
    });
    expect(await apiError(admin.putNamespaceQuotas('q-none', { maxJobs: 1 }))).toMatchObject({
      status: 404,
      code: 'NAMESPACE_NOT_FOUND',
    });
    const scoped = new KairosClient({ url: node.url, token: 'admin-t', namespace: 'q-set' });
    const { token } = await scoped.createToken({ name: 'q-set-admin', role: 'admin', global: false });
    const namespaceAdmin = new KairosClient({ url: node.url, token, namespace: 'q-set' });
    expect(await apiError(namespaceAdmin.putNamespaceQuotas('q-set', { maxJobs: 500 }))).toMatchObject({
      status: 403,
    });
    expect((await namespaceAdmin.getNamespace('q-set')).quotas).toMatchObject({ maxJobs: 5 });
  });

  it('maxJobs: the job past it answers 422 with the limit, is not written, and is counted', async () => {
    const client = await namespaceWith('q-jobs', { maxJobs: 2 });
    await client.createJob(manual('qj-1'));
    await client.putJob(manual('qj-2'));
    // Replacing a job the namespace holds adds none.
    await client.putJob({ ...manual('qj-2'), description: 'again' });
    const refused = await apiError(client.createJob(manual('qj-3')));
    expect(refused).toMatchObject({
      status: 422,
      code: 'QUOTA_EXCEEDED',
      details: { quota: 'maxJobs', limit: 2, current: 2 },
    });
    expect(await apiError(client.putJob(manual('qj-3')))).toMatchObject({ status: 422 });
    expect(await apiError(client.getJob('qj-3'))).toMatchObject({ code: 'JOB_NOT_FOUND' });
    expect(await refusalsCounted('q-jobs', 'maxJobs')).toBe(2);
    // Another namespace is not bound by it.
    await admin.createJob(manual('qj-default'));
  });

  it('maxJobs holds under concurrent creates', async () => {
    const client = await namespaceWith('q-race', { maxJobs: 3 });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => client.createJob(manual(`race-${i}`))),
    );
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(3);
    for (const o of outcomes) {
      if (o.status === 'rejected') expect((o.reason as KairosApiError).code).toBe('QUOTA_EXCEEDED');
    }
    expect((await client.listJobs({ limit: 100 })).items).toHaveLength(3);
  });

  it('maxFiresPerSecond sums the worst-case rates of the namespace`s schedules, on create and on edit', async () => {
    const client = await namespaceWith('q-rate', { maxFiresPerSecond: 1.5 });
    await client.createJob(every('qr-1s', '1s'));
    // A cron whose seconds field fires every 2 seconds: 0.5/s, up to the quota exactly.
    await client.createJob({
      name: 'qr-cron',
      handler: 'h',
      trigger: { kind: 'cron', cron: '*/2 * * * * *' },
    });
    await client.createJob(manual('qr-manual'));
    expect(await apiError(client.createJob(every('qr-10s', '10s')))).toMatchObject({
      status: 422,
      code: 'QUOTA_EXCEEDED',
      details: { quota: 'maxFiresPerSecond', limit: 1.5, current: 1.5 },
    });
    expect(
      await apiError(client.updateJob('qr-manual', { trigger: { kind: 'every', every: '1m' } })),
    ).toMatchObject({ details: { quota: 'maxFiresPerSecond' } });
    expect((await client.getJob('qr-manual')).trigger).toEqual({ kind: 'manual' });
    // Slowing a job down frees rate for another.
    await client.updateJob('qr-1s', { trigger: { kind: 'every', every: '2s' } });
    await client.createJob(every('qr-2s', '2s'));
  });

  it('minInterval refuses triggers that fire more often, whatever their kind', async () => {
    const client = await namespaceWith('q-interval', { minInterval: '10s' });
    expect(await apiError(client.createJob(every('qi-5s', '5s')))).toMatchObject({
      status: 422,
      details: { quota: 'minInterval', limit: '10s', current: '5s' },
    });
    expect(
      await apiError(
        client.createJob({ name: 'qi-cron', handler: 'h', trigger: { kind: 'cron', cron: '* * * * * *' } }),
      ),
    ).toMatchObject({ details: { quota: 'minInterval', current: '1s' } });
    await client.createJob({ name: 'qi-minute', handler: 'h', trigger: { kind: 'cron', cron: '* * * * *' } });
    await client.createJob(every('qi-10s', '10s'));
  });

  it('maxParamsBytes on a job`s params and on a trigger`s; nothing queued on refusal', async () => {
    const client = await namespaceWith('q-params', { maxParamsBytes: 100 });
    const big = { blob: 'x'.repeat(200) };
    expect(await apiError(client.createJob({ ...manual('qp'), params: big }))).toMatchObject({
      status: 422,
      details: { quota: 'maxParamsBytes', limit: 100 },
    });
    await client.createJob({ ...manual('qp'), params: { small: 1 } });
    expect(await apiError(client.updateJob('qp', { params: big }))).toMatchObject({ status: 422 });
    expect(await apiError(client.triggerJob('qp', { params: big }))).toMatchObject({ status: 422 });
    expect(await apiError(client.triggerJobBatch('qp', [{}, { params: big }]))).toMatchObject({
      status: 422,
    });
    expect((await client.listRuns({ job: 'qp', limit: 10 })).items).toHaveLength(0);
    await client.triggerJob('qp', { params: { small: 2 } });
  });

  it('maxBackfillRuns refuses a backfill of more runs and creates none', async () => {
    const client = await namespaceWith('q-backfill', { maxBackfillRuns: 5 });
    await client.createJob(every('qb', '1m'));
    const to = new Date(Math.floor(Date.now() / 60_000) * 60_000);
    const from = new Date(to.getTime() - 9 * 60_000);
    expect(
      await apiError(client.backfill('qb', { from: from.toISOString(), to: to.toISOString() })),
    ).toMatchObject({ status: 422, details: { quota: 'maxBackfillRuns', limit: 5, current: 10 } });
    expect((await client.listRuns({ job: 'qb', limit: 20 })).items).toHaveLength(0);
    const fine = await client.backfill('qb', { from: from.toISOString(), to: to.toISOString(), max: 5 });
    expect(fine.runs).toHaveLength(5);
  });

  it('maxQueuedRuns answers 429 with Retry-After once the namespace has that many queued, and queues nothing', async () => {
    const client = await namespaceWith('q-queued', { maxQueuedRuns: 3 });
    await client.createJob(manual('qq'));
    await client.triggerJob('qq');
    await client.triggerJobBatch('qq', [{}, {}]);
    const refused = await apiError(client.triggerJob('qq'));
    expect(refused).toMatchObject({
      status: 429,
      code: 'QUOTA_EXCEEDED',
      details: { quota: 'maxQueuedRuns', limit: 3, current: 3 },
    });
    expect(await apiError(client.triggerJobBatch('qq', [{}]))).toMatchObject({ status: 429 });
    // A retry of a run queues a run too.
    const [first] = (await client.listRuns({ job: 'qq', limit: 10 })).items;
    expect(await apiError(client.retryRun(first!.id))).toMatchObject({
      status: 429,
      details: { quota: 'maxQueuedRuns' },
    });
    expect((await client.listRuns({ job: 'qq', limit: 10 })).items).toHaveLength(3);
    const answer = await fetch(`${node.url}/v1/jobs/qq/trigger`, {
      method: 'POST',
      headers: {
        authorization: 'Bearer admin-t',
        'kairos-namespace': 'q-queued',
        'content-type': 'application/json',
      },
      body: '{}',
    });
    expect(answer.status).toBe(429);
    expect(answer.headers.get('retry-after')).toBe('5');
    expect(await refusalsCounted('q-queued', 'maxQueuedRuns')).toBe(4);
  });

  it('maxQueuedRuns on workflows: a start and a repair that queue past it answer 429 and change nothing; a pause passes', async () => {
    const client = await namespaceWith('q-flows', { maxQueuedRuns: 1 });
    // A group no worker serves: step runs stay queued.
    await client.putWorkflow({ name: 'wf', steps: [{ id: 'a', handler: 'h', group: 'nobody' }] });
    const first = await client.startWorkflow('wf');
    const cancelled = await client.cancelWorkflowInstance(first.id);
    const second = await client.startWorkflow('wf');
    expect(await apiError(client.startWorkflow('wf'))).toMatchObject({
      status: 429,
      code: 'QUOTA_EXCEEDED',
      details: { quota: 'maxQueuedRuns', limit: 1, current: 1 },
    });
    for (const repair of [
      () => client.retryWorkflowInstance(first.id),
      () => client.rerunWorkflowStep(first.id, 'a'),
    ]) {
      expect(await apiError(repair())).toMatchObject({
        status: 429,
        code: 'QUOTA_EXCEEDED',
        details: { quota: 'maxQueuedRuns', limit: 1 },
      });
    }
    expect(await client.getWorkflowInstance(first.id)).toEqual(cancelled);
    const answer = await fetch(`${node.url}/v1/workflow-instances/${first.id}/retry`, {
      method: 'POST',
      headers: { authorization: 'Bearer admin-t', 'kairos-namespace': 'q-flows' },
    });
    expect(answer.status).toBe(429);
    expect(answer.headers.get('retry-after')).toBe('5');
    // A pause queues nothing; once the queue is under the quota, the retry goes through.
    expect((await client.pauseWorkflowInstance(second.id)).state).toBe('paused');
    await client.cancelWorkflowInstance(second.id);
    expect((await client.retryWorkflowInstance(first.id)).state).toBe('running');
    expect(await refusalsCounted('q-flows', 'maxQueuedRuns')).toBe(4);
  });

  it('requestsPerSecond answers 429 with Retry-After in its namespace only, counted', async () => {
    await namespaceWith('q-requests', { requestsPerSecond: 1 });
    const call = (namespace: string) =>
      fetch(`${node.url}/v1/jobs`, {
        headers: { authorization: 'Bearer admin-t', 'kairos-namespace': namespace },
      });
    let refused: Response | undefined;
    for (let i = 0; i < 500 && !refused; i++) {
      const answer = await call('q-requests');
      if (answer.status === 429) refused = answer;
      else expect(answer.status).toBe(200);
    }
    expect(refused).toBeDefined();
    expect(refused!.headers.get('retry-after')).toBe('1');
    expect(await refused!.json()).toMatchObject({
      error: { code: 'QUOTA_EXCEEDED', details: { quota: 'requestsPerSecond', limit: 1 } },
    });
    expect((await call('default')).status).toBe(200);
    expect(await refusalsCounted('q-requests', 'requestsPerSecond')).toBeGreaterThanOrEqual(1);
    // A global admin still changes the quota while the namespace is at it.
    await admin.putNamespaceQuotas('q-requests', {});
    expect((await call('q-requests')).status).toBe(200);
  });
});
