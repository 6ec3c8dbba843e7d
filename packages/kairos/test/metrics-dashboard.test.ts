import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startTestNode, testWorker } from './helpers.ts';
import { waitFor } from './processes.ts';

const DASHBOARD = new URL('../../../docs/grafana-dashboard.json', import.meta.url);

/** PromQL words that are not metric names. */
const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset']);
const OPERATORS = new Set(['and', 'or', 'unless']);

/** The metric names a PromQL expression reads: identifiers that are not functions, labels or keywords. */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""') // strings (legend and label values)
    .replace(/\{[^}]*\}/g, '') // label matchers
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '') // label lists
    .replace(/\[[^\]]*\]/g, ''); // ranges
  const names = [...bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*(?!\s*\()/g)]
    .filter((m) => !/[a-zA-Z0-9_:(]/.test(bare[m.index! + m[0].length] ?? '')) // not a function name cut short
    .map((m) => m[0])
    .filter((name) => !KEYWORDS.has(name) && !OPERATORS.has(name));
  return [...new Set(names)];
}

/** The series a Prometheus exposition holds: sample names, and the names its TYPE lines declare. */
function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\w+)/.exec(line);
    if (type) {
      const [, name, kind] = type;
      names.add(name!);
      if (kind === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
      if (kind === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
    } else if (line && !line.startsWith('#')) {
      names.add(line.split(/[{ ]/)[0]!);
    }
  }
  return names;
}

describe('metrics and the Grafana dashboard', async () => {
  const { node, admin } = await startTestNode();
  const worker = testWorker(node, 'default').handle('h', async () => 'ok');
  await worker.start();
  await admin.createJob({ name: 'tick', handler: 'h', trigger: { kind: 'every', every: '1s' } });
  await waitFor(
    async () => (await admin.listRuns({ job: 'tick', status: 'succeeded' })).items.length > 0,
    30_000,
    'a scheduled run that succeeded',
  );
  await worker.stop();
  const exposition = await (await fetch(`${node.url}/metrics`)).text();
  const exposed = exposedNames(exposition);

  it('reads PromQL metric names', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le) (rate(kairos_fire_lateness_seconds_bucket{job="x"}[5m]))) / max(a_b) or c',
      ),
    ).toEqual(['kairos_fire_lateness_seconds_bucket', 'a_b', 'c']);
  });

  it('names follow Prometheus conventions: standard process and Node.js metrics, kairos_ for ours', () => {
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
    ])
      expect(exposed).toContain(name);
    const ours = [...exposed].filter((name) => !/^(process|nodejs)_/.test(name));
    for (const name of ours) expect(name).toMatch(/^kairos_/);
    expect([...exposed].filter((name) => name.includes('process_process'))).toEqual([]);
    const counters = [...exposition.matchAll(/^# TYPE (\S+) counter$/gm)].map((m) => m[1]!);
    for (const name of counters) expect(name).toMatch(/_total$/);
  });

  it('every series the dashboard queries is exported by a node', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
    };
    const queried = dashboard.panels.flatMap((panel) =>
      panel.targets.flatMap((target) =>
        metricNames(target.expr).map((name) => ({ panel: panel.title, name })),
      ),
    );
    expect(queried.length).toBeGreaterThan(15);
    expect(queried.filter(({ name }) => !exposed.has(name))).toEqual([]);
  });

  it('the cluster gauges and run outcomes have values', () => {
    expect(exposition).toMatch(/^kairos_nodes_online 1$/m);
    expect(exposition).toMatch(/^kairos_runs_ended_total\{status="succeeded"\} [1-9]/m);
  });

  it('the queue series show queued runs by group and job, the oldest age, and runs no live worker can take', async () => {
    const live = testWorker(node, 'busy').handle('h', async () => 'ok');
    await live.start();
    try {
      // A group with no worker at all, and a group whose live worker does not declare the handler.
      await admin.createJob({ name: 'stranded', handler: 'h', group: 'empty', trigger: { kind: 'manual' } });
      await admin.createJob({ name: 'orphan', handler: 'other', group: 'busy', trigger: { kind: 'manual' } });
      await admin.triggerJobBatch('stranded', [{}, {}]);
      await admin.triggerJob('orphan');
      // A scrape shares the store's answer with the scrapes of the next second: wait for a fresh one.
      let text = '';
      await waitFor(
        async () => {
          text = await (await fetch(`${node.url}/metrics`)).text();
          return /^kairos_runs_queued_by_job\{namespace="default",group="empty",job="stranded"\} 2$/m.test(
            text,
          );
        },
        30_000,
        'a scrape that counts the queued runs',
      );
      expect(text).toMatch(/^kairos_runs_queued_by_job\{namespace="default",group="busy",job="orphan"\} 1$/m);
      expect(text).toMatch(
        /^kairos_runs_queued_without_worker\{namespace="default",group="empty",reason="no_worker_in_group"\} 2$/m,
      );
      expect(text).toMatch(
        /^kairos_runs_queued_without_worker\{namespace="default",group="busy",reason="no_worker_for_handler"\} 1$/m,
      );
      expect(text).toMatch(/^kairos_runs_queued_oldest_age_seconds\{namespace="default",group="empty"\} \d/m);
    } finally {
      await live.stop();
    }
  });
});
