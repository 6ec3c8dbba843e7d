import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type JobSpec, KairosApiError, KairosClient } from '@kairos/client';
import { Worker } from '@kairos/worker';
import type { KairosNode } from './node.ts';

/** The demo jobs of `kairos start --demo`; each job's handler has the job's name. */
export const DEMO_JOBS: readonly JobSpec[] = [
  {
    name: 'demo.hello',
    handler: 'demo.hello',
    description: 'greets every 5 seconds, on Shanghai time',
    trigger: { kind: 'cron', cron: '*/5 * * * * *', timezone: 'Asia/Shanghai' },
  },
  {
    name: 'demo.flaky',
    handler: 'demo.flaky',
    description: 'fails half the time; retried with exponential backoff',
    trigger: { kind: 'every', every: '15s' },
    retry: { maxAttempts: 3, backoff: 'exponential', delay: '1s' },
  },
  {
    name: 'demo.slow',
    handler: 'demo.slow',
    description: 'waits params.ms (default 3000); trigger it by hand, cancel it, or let it time out',
    trigger: { kind: 'manual' },
    params: { ms: 3000 },
    timeout: '10s',
    retry: { maxAttempts: 1 },
  },
  {
    name: 'demo.report',
    handler: 'demo.report',
    description: 'weekday report at 09:00 Berlin time',
    trigger: { kind: 'cron', cron: '0 9 * * 1-5', timezone: 'Europe/Berlin' },
    params: { to: 'team@example.com' },
  },
];

/**
 * Upserts the demo jobs on `node` and runs an in-process worker (group `default`, concurrency 4)
 * with their handlers. Stop the returned handle before stopping the node.
 */
export async function startDemo(node: KairosNode): Promise<{ stop(): Promise<void> }> {
  const client = new KairosClient({ url: node.url, token: node.config.adminToken });
  for (const spec of DEMO_JOBS) await client.putJob(spec);

  const worker = new Worker({
    url: node.url,
    token: node.config.workerToken,
    group: 'default',
    concurrency: 4,
    handleSignals: false, // `kairos start` stops the demo, then the node
  })
    .handle('demo.hello', (ctx) => {
      const at = ctx.fireTime ?? new Date();
      const local = at.toLocaleTimeString('en-GB', { timeZone: 'Asia/Shanghai' });
      return { greeting: `Hello from Kairos, it is ${local} in Shanghai`, fireTime: at.toISOString() };
    })
    .handle('demo.flaky', async (ctx) => {
      if (Math.random() < 0.5) throw new Error(`bad luck on attempt ${ctx.attempt}`);
      return { ok: true, attempt: ctx.attempt };
    })
    .handle('demo.slow', async (ctx) => {
      const ms = typeof ctx.params.ms === 'number' ? ctx.params.ms : 3000;
      await sleep(ms, undefined, { signal: ctx.signal });
      return { sleptMs: ms };
    })
    .handle('demo.report', async (ctx) => {
      const to = typeof ctx.params.to === 'string' ? ctx.params.to : 'nobody';
      ctx.log.info(`sending the daily report to ${to}`);
      return { sentTo: to, lines: 42 };
    });
  await worker.start();
  return { stop: () => worker.stop() };
}

/** The console login of the demo: user `admin`, kept with the other credentials of the data dir. */
export interface DemoLogin {
  user: string;
  /** Null when the user existed before this data dir recorded a demo password. */
  password: string | null;
}

/**
 * Makes sure the demo has a console admin: creates `admin` with a random password the first time
 * (kept in `<dataDir>/demo-login.json`, mode 0600) and answers the same login on later starts.
 */
export async function ensureDemoLogin(node: KairosNode): Promise<DemoLogin> {
  const path = join(node.config.dataDir, 'demo-login.json');
  if (existsSync(path)) {
    const saved = JSON.parse(readFileSync(path, 'utf8')) as DemoLogin;
    if (await node.store.getUser(saved.user)) return saved;
  }
  const client = new KairosClient({ url: node.url, token: node.config.adminToken });
  const login: DemoLogin = { user: 'admin', password: randomBytes(9).toString('base64url') };
  try {
    await client.createUser({ name: login.user, role: 'admin', password: login.password! });
  } catch (error) {
    if (error instanceof KairosApiError && error.code === 'USER_NAME_TAKEN')
      return { user: login.user, password: null };
    throw error;
  }
  writeFileSync(path, JSON.stringify(login, null, 2) + '\n', { mode: 0o600 });
  return login;
}
