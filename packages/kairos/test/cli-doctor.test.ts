import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DoctorReport } from '@kairos/client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../src/cli/program.ts';
import { startTestNode, tempDir, testWorker } from './helpers.ts';

/** `kairos doctor` against a real node: the table, `--json`, and the exit code. */
describe('kairos doctor', async () => {
  // A long partition lease: a node row that stopped heartbeating stays listed for 5 of them.
  const { node, admin } = await startTestNode({}, { partitionLease: '60s' });
  const lines: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    lines.push(...args.map(String).join(' ').split('\n'));
  });
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(...String(chunk).trimEnd().split('\n'));
    return true;
  });
  afterEach(() => {
    lines.length = 0;
    process.exitCode = undefined;
  });
  const kairos = (...args: string[]) =>
    buildProgram().parseAsync(['node', 'kairos', '--url', node.url, '--token', 'admin-t', ...args]);
  const report = async (...args: string[]): Promise<DoctorReport> => {
    lines.length = 0;
    process.exitCode = undefined;
    await kairos('--json', 'doctor', ...args);
    return JSON.parse(lines.join('\n')) as DoctorReport;
  };
  const check = (r: DoctorReport, name: string) => r.checks.find((c) => c.name === name);

  it('a healthy node: store, schema, clocks and config pass, exit code 0', async () => {
    await kairos('doctor');
    const text = lines.join('\n');
    expect(text).toMatch(/^CHECK\s+STATUS\s+DETAIL/m);
    for (const name of [
      'config',
      'store',
      'schema',
      'store-space',
      'clock',
      'host-clock',
      'job-groups',
      'job-handlers',
      'worker-groups',
    ])
      expect(text).toMatch(new RegExp(`^${name}\\s+OK\\s`, 'm'));
    expect(text).toMatch(/all checks passed/);
    expect(process.exitCode ?? 0).toBe(0);
    const json = await report();
    expect(json).toMatchObject({ status: 'ok', store: 'sqlite', nodeId: node.config.nodeId });
    expect(json.schema.store).toBe(json.schema.code);
    expect(json.schema.code).toBeGreaterThan(0);
  });

  it('jobs no live worker can run fail (exit 1); an idle worker group warns', async () => {
    const worker = testWorker(node, 'idle').handle('x', async () => 'ok');
    await worker.start();
    try {
      await admin.createJob({ name: 'stranded', handler: 'h', group: 'nobody', trigger: { kind: 'manual' } });
      await admin.createJob({ name: 'unhandled', handler: 'h', group: 'idle', trigger: { kind: 'manual' } });
      await admin.createJob({
        name: 'resting',
        handler: 'h',
        group: 'nobody',
        trigger: { kind: 'manual' },
        paused: true,
      });
      await kairos('doctor');
      const text = lines.join('\n');
      expect(text).toMatch(/^job-groups\s+FAIL\s+jobs routed to a group with no live worker/m);
      expect(text).toMatch(/- stranded \(group nobody\)/);
      expect(text).toMatch(/^job-handlers\s+FAIL\s/m);
      expect(text).toMatch(/- unhandled \(group idle, handler h\)/);
      expect(text).not.toMatch(/resting/);
      expect(text).toMatch(/problems found/);
      expect(process.exitCode).toBe(1);

      await admin.deleteJob('unhandled');
      await admin.deleteJob('stranded');
      const json = await report();
      expect(check(json, 'worker-groups')).toMatchObject({ status: 'warn', items: ['idle'] });
      expect(json.status).toBe('warn');
      expect(process.exitCode ?? 0).toBe(0);
      await report('--strict');
      expect(process.exitCode).toBe(1);
    } finally {
      await worker.stop();
      await admin.deleteJob('resting');
    }
  });

  it('names nodes off the store’s clock at their heartbeat, and nodes that stopped heartbeating', async () => {
    const now = await node.store.databaseTime();
    const ghost = (id: string, clockSkewMs: number) => ({
      instance: `${id}:1`,
      id,
      address: 'http://127.0.0.1:1',
      version: '0.2.0',
      startedAt: now - 600_000,
      partitions: [],
      clockSkewMs,
    });
    // A live node whose clock was 5 s ahead, and one whose row expired a second ago (kept 5 minutes).
    await node.store.heartbeatNode(ghost('skewed', 5000), 600_000, now);
    await node.store.heartbeatNode(ghost('gone', 0), 60_000, now - 61_000);
    try {
      const json = await report();
      expect(check(json, 'clock')).toMatchObject({
        status: 'warn',
        items: [expect.stringMatching(/^skewed: \+5000 ms/)],
      });
      expect(check(json, 'nodes')).toMatchObject({
        status: 'warn',
        items: [expect.stringMatching(/^gone \(last heartbeat/)],
      });
      expect(check(json, 'nodes')?.message).toMatch(/^2 live;/);
    } finally {
      await node.store.removeNode('skewed:1');
      await node.store.removeNode('gone:1');
    }
  });

  it('--config checks a local config file as a node would read it', async () => {
    const dir = tempDir();
    const good = join(dir, 'good.json');
    const bad = join(dir, 'bad.json');
    writeFileSync(good, JSON.stringify({ partitions: 8, retentionFinished: '7d' }));
    writeFileSync(bad, JSON.stringify({ partitions: 0 }));
    expect(check(await report('--config', good), 'local-config')).toMatchObject({ status: 'ok' });
    const refused = await report('--config', bad);
    expect(check(refused, 'local-config')).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(/partitions: expected a whole number/),
    });
    expect(refused.status).toBe('fail');
    expect(process.exitCode).toBe(1);
  });

  it('needs a global admin (it reads every namespace): viewer and operator tokens are refused', async () => {
    for (const role of ['viewer', 'operator'] as const) {
      const token = await admin.createToken({ name: `doctor-${role}`, role });
      const response = await fetch(`${node.url}/v1/doctor`, {
        headers: { authorization: `Bearer ${token.token}` },
      });
      expect(response.status).toBe(403);
    }
  });
});
