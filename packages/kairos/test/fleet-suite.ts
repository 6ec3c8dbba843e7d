import { fileURLToPath } from 'node:url';
import { KairosClient, type Run } from '@kairos/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive } from '../../worker/src/process-probe.ts';
import { tempDir } from './helpers.ts';
import { type Child, freePort, spawnKairos, spawnTs, waitFor } from './processes.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

// One node and four worker processes, started once for every test of the file:
// a and b in region eu, c in region us, d in region ap.
/**
 * The fleet suite on one dialect: a node (`kairos start` on SQLite, `kairos server` on a schema of
 * the machine's PostgreSQL) and four worker processes, started once for every test.
 */
export function describeFleet(dialect: 'sqlite' | 'postgres'): void {
  describe(`fleet of workers on ${dialect}`, () => {
    const WORKER = fileURLToPath(new URL('./fixtures/fleet-worker.ts', import.meta.url));
    const env = {
      KAIROS_ADMIN_TOKEN: 'fleet-admin',
      KAIROS_WORKER_TOKEN: 'fleet-worker',
      KAIROS_LOG_LEVEL: 'warn',
    };
    const FLEET = {
      a: { region: 'eu' },
      b: { region: 'eu' },
      c: { region: 'us' },
      d: { region: 'ap' },
    } as const;

    let url: string;
    let node: Child;
    let admin: KairosClient;
    const workers: Child[] = [];
    const ids = new Map<string, string>();

    function cli(args: string[]): Child {
      return spawnKairos(['--url', url, '--token', env.KAIROS_ADMIN_TOKEN, ...args], env);
    }

    async function finished(id: number, timeoutMs = 20_000): Promise<Run> {
      return waitFor(
        async () => {
          const run = await admin.getRun(id);
          return ['succeeded', 'failed', 'timed_out', 'cancelled'].includes(run.status) ? run : undefined;
        },
        timeoutMs,
        `run ${id} to finish`,
      );
    }

    async function running(id: number): Promise<Run> {
      return waitFor(
        async () => {
          const run = await admin.getRun(id);
          return run.status === 'running' ? run : undefined;
        },
        20_000,
        `run ${id} to start`,
      );
    }

    /** Which worker ran each of `count` runs of a manual job, triggered at once. */
    async function whoRuns(job: string, params: Array<Record<string, string>>): Promise<string[]> {
      const { runIds } = await admin.triggerJobBatch(
        job,
        params.map((p) => ({ params: p })),
      );
      const runs = await Promise.all(runIds.map((id) => finished(id)));
      for (const run of runs) expect(run.status).toBe('succeeded');
      return runs.map((run) => (run.result as { worker: string }).worker);
    }

    beforeAll(async () => {
      const port = await freePort();
      url = `http://127.0.0.1:${port}`;
      node =
        dialect === 'sqlite'
          ? spawnKairos(['start', '--port', String(port), '--data-dir', tempDir()], env)
          : spawnKairos(['server', '--port', String(port)], {
              ...env,
              KAIROS_DATABASE_URL: `${testDatabaseUrl()}?schema=${testSchema('kairos_fleet')}`,
            });
      admin = new KairosClient({ url, token: env.KAIROS_ADMIN_TOKEN });
      await waitFor(() => admin.health(), 120_000, `kairos start on ${url}\n${node.output()}`);
      const deadUrl = `http://127.0.0.1:${await freePort()}`;
      // Built-in kinds: c runs shell commands, a may call the node's health route and nothing else.
      const tasks: Record<string, object> = {
        a: { http: { allow: [`${url}/v1/health`] } },
        c: { shell: { killGraceMs: 1000 } },
      };
      for (const [name, labels] of Object.entries(FLEET)) {
        workers.push(
          spawnTs(WORKER, [], {
            ...env,
            KAIROS_URL: url,
            WORKER_NAME: name,
            WORKER_LABELS: JSON.stringify(labels),
            WORKER_TASKS: JSON.stringify(tasks[name] ?? {}),
            // d knows a node that is down first: it fails over to the live one.
            ...(name === 'd' ? { KAIROS_URLS: JSON.stringify([deadUrl, url]) } : {}),
          }),
        );
      }
      const active = await waitFor(
        async () => {
          const items = (await admin.listWorkers()).items.filter((w) => w.status === 'active');
          return items.length === 4 ? items : undefined;
        },
        30_000,
        'four workers',
      );
      for (const w of active) ids.set(w.name, w.id);
    });

    afterAll(async () => {
      for (const w of workers) w.process.kill('SIGTERM');
      await Promise.all(workers.map((w) => w.exited));
      node.process.kill('SIGTERM');
      expect(await node.exited).toBe(0);
      await dropTestSchemas();
    });

    describe('routing over real worker processes', () => {
      it('round-robin gives each worker its turn', async () => {
        await admin.createJob({
          name: 'rr',
          handler: 'who',
          trigger: { kind: 'manual' },
          routing: { strategy: 'round-robin' },
        });
        const ran = await whoRuns(
          'rr',
          Array.from({ length: 8 }, () => ({})),
        );
        expect([...ran].sort()).toEqual(['a', 'a', 'b', 'b', 'c', 'c', 'd', 'd']);
      });

      it('first and last pick by worker name; a selector keeps to matching labels', async () => {
        await admin.createJob({
          name: 'first',
          handler: 'who',
          trigger: { kind: 'manual' },
          routing: { strategy: 'first' },
        });
        await admin.createJob({
          name: 'last',
          handler: 'who',
          trigger: { kind: 'manual' },
          routing: { strategy: 'last' },
        });
        await admin.createJob({
          name: 'last-eu',
          handler: 'who',
          trigger: { kind: 'manual' },
          routing: { strategy: 'last', selector: { region: 'eu' } },
        });
        expect(await whoRuns('first', [{}, {}, {}])).toEqual(['a', 'a', 'a']);
        expect(await whoRuns('last', [{}, {}])).toEqual(['d', 'd']);
        expect(await whoRuns('last-eu', [{}, {}])).toEqual(['b', 'b']);
      });

      it('least-recently-used, least-frequently-used and least-loaded spread a burst evenly', async () => {
        for (const strategy of ['least-recently-used', 'least-frequently-used', 'least-loaded'] as const) {
          await admin.createJob({
            name: `spread-${strategy}`,
            handler: 'who',
            trigger: { kind: 'manual' },
            routing: { strategy },
          });
          const ran = await whoRuns(
            `spread-${strategy}`,
            Array.from({ length: 8 }, () => ({})),
          );
          expect([...ran].sort(), strategy).toEqual(['a', 'a', 'b', 'b', 'c', 'c', 'd', 'd']);
        }
      });

      it('failover keeps to the first worker with a free slot; busy-over to workers not running the job', async () => {
        await admin.createJob({
          name: 'fo',
          handler: 'who',
          trigger: { kind: 'manual' },
          routing: { strategy: 'failover' },
        });
        expect(await whoRuns('fo', [{}, {}, {}])).toEqual(['a', 'a', 'a']);
        await admin.createJob({
          name: 'bo',
          handler: 'who',
          trigger: { kind: 'manual' },
          routing: { strategy: 'busy-over' },
        });
        // Four runs at once: each goes to a worker that is not already running one of them.
        expect([...(await whoRuns('bo', [{}, {}, {}, {}]))].sort()).toEqual(['a', 'b', 'c', 'd']);
      });

      it('random spreads runs over more than one worker', async () => {
        await admin.createJob({
          name: 'dice',
          handler: 'who',
          trigger: { kind: 'manual' },
          routing: { strategy: 'random' },
        });
        // Twelve runs on one of four workers by chance: 4 × (1/4)^12, about 2 in 10 million.
        const ran = await whoRuns(
          'dice',
          Array.from({ length: 12 }, () => ({})),
        );
        expect(new Set(ran).size).toBeGreaterThan(1);
      });

      it('consistent-hash sends one key to one worker', async () => {
        await admin.createJob({
          name: 'sticky',
          handler: 'who',
          trigger: { kind: 'manual' },
          routing: { strategy: 'consistent-hash', key: 'key' },
        });
        const keys = ['k1', 'k2', 'k3', 'k4', 'k5', 'k6'];
        const first = await whoRuns(
          'sticky',
          keys.map((key) => ({ key })),
        );
        const again = await whoRuns(
          'sticky',
          keys.map((key) => ({ key })),
        );
        expect(again).toEqual(first);
      });

      it('a run no worker can take waits, then fails with its schedule-to-start timeout', async () => {
        await admin.createJob({
          name: 'mars',
          handler: 'who',
          trigger: { kind: 'manual' },
          routing: { strategy: 'any', selector: { region: 'mars' } },
          scheduleToStartTimeout: '1s',
        });
        const { id } = await admin.triggerJob('mars');
        expect((await admin.getRun(id)).status).toBe('queued');
        const run = await finished(id);
        expect(run).toMatchObject({
          status: 'failed',
          attempt: 0,
          error: { name: 'ScheduleToStartTimeout' },
        });
      });
    });

    describe('cancel and logs', () => {
      it('a cancel from the CLI reaches the handler’s signal', async () => {
        await admin.createJob({
          name: 'wait',
          handler: 'waiter',
          trigger: { kind: 'manual' },
          retry: { maxAttempts: 1 },
        });
        const { id } = await admin.triggerJob('wait');
        await running(id);
        const cancel = cli(['runs', 'cancel', String(id)]);
        expect(await cancel.exited).toBe(0);
        expect((await admin.getRun(id)).status).toBe('cancelled');
        const lines = await waitFor(
          async () => {
            const page = await admin.runLogs(id);
            return page.items.some((l) => l.message.startsWith('aborted')) ? page.items : undefined;
          },
          10_000,
          'the handler to see its signal abort',
        );
        expect(lines.map((l) => l.message)).toEqual(['first', 'aborted: CancelledError']);
      });

      it('10,000 lines of a run arrive complete and in order', async () => {
        await admin.createJob({ name: 'chatty', handler: 'chatty', trigger: { kind: 'manual' } });
        const { id } = await admin.triggerJob('chatty', { params: { lines: 10_000 } });
        expect(await finished(id, 60_000)).toMatchObject({ status: 'succeeded' });
        const lines = [];
        let after: number | null = 0;
        while (after !== null) {
          const page = await admin.runLogs(id, { after, limit: 1000 });
          lines.push(...page.items);
          after = page.next;
        }
        expect(lines).toHaveLength(10_000);
        lines.forEach((line, i) => {
          expect(line.seq).toBe(i + 1);
          expect(line.message).toBe(`line ${i + 1}`);
        });
      });

      it('`kairos runs logs --follow` shows lines while the run is still running', async () => {
        const { id } = await admin.triggerJob('wait');
        await running(id);
        const follower = cli(['runs', 'logs', String(id), '--follow']);
        await waitFor(
          async () => follower.output().includes('first'),
          20_000,
          `the follower to print\n${follower.output()}`,
        );
        // The line was shown live: the run had not ended yet.
        expect((await admin.getRun(id)).status).toBe('running');
        await admin.cancelRun(id);
        expect(await follower.exited).toBe(0);
        expect(follower.output()).toContain(`run ${id} cancelled`);
      });
    });

    describe('built-in tasks', () => {
      it('a shell job runs on a worker that enabled shell, its output as the run log', async () => {
        await admin.createJob({
          name: 'shell',
          trigger: { kind: 'manual' },
          task: {
            kind: 'shell',
            command: 'sh',
            args: ['-c', 'echo "hello $WHO"; echo oops >&2'],
            env: { WHO: 'kairos' },
          },
        });
        const run = await finished((await admin.triggerJob('shell')).id);
        expect(run).toMatchObject({ status: 'succeeded', handler: 'kairos:shell', result: { exitCode: 0 } });
        expect(run.workerId).toBe(ids.get('c'));
        const lines = (await admin.runLogs(run.id)).items.map((l) => [l.level, l.message]);
        expect(lines).toContainEqual(['info', 'hello kairos']);
        expect(lines).toContainEqual(['warn', 'oops']);
      });

      it('an http job calls an allowed URL; one outside the worker’s allow-list fails at once', async () => {
        await admin.createJob({
          name: 'health',
          trigger: { kind: 'manual' },
          task: { kind: 'http', url: `${url}/v1/health` },
        });
        const run = await finished((await admin.triggerJob('health')).id);
        expect(run).toMatchObject({ status: 'succeeded', result: { status: 200, body: { status: 'ok' } } });
        expect(run.workerId).toBe(ids.get('a'));
        await admin.createJob({
          name: 'sneaky',
          trigger: { kind: 'manual' },
          task: { kind: 'http', url: `${url}/v1/jobs` },
        });
        const refused = await finished((await admin.triggerJob('sneaky')).id);
        expect(refused).toMatchObject({ status: 'failed', attempt: 1, error: { name: 'NonRetryableError' } });
      });

      it('a shell command that ignores SIGTERM is killed with its children at its time limit', async () => {
        await admin.createJob({
          name: 'stubborn',
          trigger: { kind: 'manual' },
          timeout: '2s',
          retry: { maxAttempts: 1 },
          task: {
            kind: 'shell',
            command: 'sh',
            args: ['-c', 'trap "" TERM; sleep 300 & echo "pid $!"; echo "pid $$"; wait'],
          },
        });
        const { id } = await admin.triggerJob('stubborn');
        const pids = await waitFor(
          async () => {
            const found = (await admin.runLogs(id)).items.filter((l) => l.message.startsWith('pid '));
            return found.length === 2 ? found.map((l) => Number(l.message.slice(4))) : undefined;
          },
          20_000,
          'the command to print its pids',
        );
        const run = await finished(id);
        expect(run.status).toBe('timed_out');
        // Time limit 2 s + kill grace 1 s, and an honest second of margin for a loaded machine.
        const deadline = Date.parse(run.startedAt!) + 2000 + 1000 + 1000;
        await waitFor(
          async () => pids.every((pid) => !alive(pid)),
          Math.max(0, deadline - Date.now()),
          'the process group to die',
        );
      });
    });

    describe('sharding broadcast', () => {
      it('one run per live worker with its shard index; a failed shard is retried alone', async () => {
        await admin.createJob({
          name: 'shards',
          handler: 'shard',
          trigger: { kind: 'manual' },
          routing: { strategy: 'broadcast' },
          retry: { delay: '100ms' },
        });
        await admin.triggerJob('shards', { params: { failShard: 2 } });
        const runs = await waitFor(
          async () => {
            const page = await admin.listRuns({ job: 'shards', include: 'params' });
            return page.items.length === 4 && page.items.every((r) => r.status === 'succeeded')
              ? page.items
              : undefined;
          },
          20_000,
          'four shards to succeed',
        );
        const byShard = runs
          .map((r) => ({
            ...(r.result as { worker: string; shard: { index: number; total: number } }),
            attempt: r.attempt,
          }))
          .sort((x, y) => x.shard.index - y.shard.index);
        expect(byShard.map((r) => r.shard)).toEqual([0, 1, 2, 3].map((index) => ({ index, total: 4 })));
        expect(byShard.map((r) => r.attempt)).toEqual([1, 1, 2, 1]);
        expect(runs.map((r) => r.shard?.index).sort()).toEqual([0, 1, 2, 3]);
        // First attempts in worker name order: shard i on the i-th worker.
        expect(byShard.filter((r) => r.attempt === 1).map((r) => r.worker)).toEqual(['a', 'b', 'd']);
      });
    });

    describe('isolated handlers', () => {
      it('a cancelled handler that ignores its signal is killed after the next heartbeat and the grace', {
        timeout: 120_000,
      }, async () => {
        await admin.createJob({ name: 'iso-hang', handler: 'iso-hang', trigger: { kind: 'manual' } });
        const { id } = await admin.triggerJob('iso-hang');
        const pid = await waitFor(
          async () => {
            const line = (await admin.runLogs(id)).items.find((l) => l.message.startsWith('pid '));
            return line ? Number(line.message.slice(4)) : undefined;
          },
          20_000,
          'the isolated process to start',
        );
        expect(alive(pid)).toBe(true);
        const cancelledAt = Date.now();
        await admin.cancelRun(id);
        // The cancel reaches the worker with its next heartbeat (1 s), the kill follows the grace (1 s):
        // about 2 s on a quiet machine (logged); the wait allows for a busy one.
        await waitFor(async () => !alive(pid), 30_000, 'the isolated process to be killed');
        console.log(
          `isolated handler ignoring its signal killed ${Date.now() - cancelledAt} ms after the cancel`,
        );
        expect((await admin.getRun(id)).status).toBe('cancelled');
      });

      it('a poison run that kills its process every time fails after its attempts; the worker lives on', {
        timeout: 120_000,
      }, async () => {
        await admin.createJob({
          name: 'poison',
          handler: 'iso-crash',
          trigger: { kind: 'manual' },
          retry: { maxAttempts: 2, delay: '100ms' },
        });
        // Two isolated processes start and crash: seconds each on a busy machine.
        const run = await finished((await admin.triggerJob('poison')).id, 90_000);
        expect(run).toMatchObject({
          status: 'failed',
          attempt: 2,
          error: { name: 'IsolatedProcessCrashed' },
        });
        expect(run.attempts?.map((a) => a.status)).toEqual(['failed', 'failed']);
        expect((await admin.listWorkers()).items.filter((w) => w.status === 'active')).toHaveLength(4);
        expect(await whoRuns('first', [{}])).toEqual(['a']);
      });
    });

    describe('draining', () => {
      it('a drained worker finishes nothing new: runs go to the others', async () => {
        const drain = cli(['workers', 'drain', ids.get('c')!]);
        expect(await drain.exited).toBe(0);
        expect((await admin.listWorkers()).items.find((w) => w.name === 'c')?.status).toBe('draining');
        expect(await whoRuns('last', [{}, {}])).toEqual(['d', 'd']);
        await admin.createJob({
          name: 'us-only',
          handler: 'who',
          trigger: { kind: 'manual' },
          routing: { strategy: 'any', selector: { region: 'us' } },
          scheduleToStartTimeout: '1s',
        });
        const { id } = await admin.triggerJob('us-only');
        expect(await finished(id)).toMatchObject({
          status: 'failed',
          error: { name: 'ScheduleToStartTimeout' },
        });
      });
    });
  });
}
