import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type JobSpec, KairosClient } from '@kairos/client';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Receiver, verifyKairosWebhook } from './alert-receiver.ts';
import { tempDir } from './helpers.ts';
import { startTestProvider, TEST_CLIENT } from './oidc-provider.ts';
import { type Child, freePort, spawnKairos, spawnTs, waitFor } from './processes.ts';

/**
 * The web console in a real headless Chromium against a real `kairos start` and a worker process.
 * `KAIROS_SCREENSHOTS=1` also writes docs/images/console-*.png (CI leaves the tree clean).
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const WORKER = fileURLToPath(new URL('./fixtures/worker.ts', import.meta.url));
const CHROMIUM = process.env.KAIROS_CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOTS = process.env.KAIROS_SCREENSHOTS === '1';
const env = {
  KAIROS_ADMIN_TOKEN: 'console-admin-token',
  KAIROS_WORKER_TOKEN: 'console-worker-token',
  KAIROS_ADMIN_USER: 'ada',
  KAIROS_ADMIN_PASSWORD: 'ada-secret-1',
  KAIROS_LOG_LEVEL: 'warn',
  // A key for secret params (docs/security.md), 32 bytes in base64.
  KAIROS_SECRET_KEYS: `k1:${Buffer.alloc(32, 7).toString('base64')}`,
};

let url: string;
let node: Child;
let worker: Child;
/** A second worker, started for the Workers page to drain (the first keeps taking runs). */
let spare: Child | undefined;
let admin: KairosClient;
let browser: Browser;
/** The OpenID provider the node offers single sign-on with; `olga` is in the group mapped to operator. */
let provider: Awaited<ReturnType<typeof startTestProvider>> | undefined;

beforeAll(async () => {
  // Builds the console when its build is missing or older than its sources.
  execFileSync(process.execPath, [`${ROOT}/packages/console/ensure-built.mjs`], { stdio: 'ignore' });
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (or set KAIROS_CHROMIUM)`);
  }
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  provider = await startTestProvider([`${url}/v1/auth/oidc/callback`], {
    olga: { preferred_username: 'olga', groups: ['kairos-ops'] },
  });
  node = spawnKairos(['start', '--port', String(port), '--data-dir', tempDir()], {
    ...env,
    KAIROS_OIDC_ISSUER: provider.issuer,
    KAIROS_OIDC_CLIENT_ID: TEST_CLIENT.id,
    KAIROS_OIDC_CLIENT_SECRET: TEST_CLIENT.secret,
    KAIROS_OIDC_REDIRECT_URL: `${url}/v1/auth/oidc/callback`,
    KAIROS_OIDC_SCOPES: 'openid profile groups',
    KAIROS_OIDC_ROLES: 'kairos-admins=admin,kairos-ops=operator',
    KAIROS_OIDC_PROVIDER_NAME: 'Test IdP',
  });
  admin = new KairosClient({ url, token: env.KAIROS_ADMIN_TOKEN });
  await waitFor(() => admin.health(), 120_000, `kairos start on ${url}\n${node.output()}`);
  worker = spawnTs(WORKER, [], { ...env, KAIROS_URL: url, WORKER_NAME: 'console-worker' });
  await waitFor(
    async () => (await admin.listWorkers()).items.some((w) => w.status === 'active'),
    20_000,
    'the worker to register',
  );
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  spare?.process.kill('SIGTERM');
  await spare?.exited;
  worker?.process.kill('SIGTERM');
  await worker?.exited;
  node?.process.kill('SIGTERM');
  expect(await node?.exited).toBe(0);
  await provider?.stop();
});

/** Script errors of every page: uncaught exceptions, React warnings, refused content (CSP). */
const scriptErrors: string[] = [];

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(20_000);
  page.on('pageerror', (error) => scriptErrors.push(`uncaught: ${error.message}`));
  page.on('console', (message) => {
    // Answers with an error status (401 before login, 400 of a refused preview, 404 of absent
    // run logs) are logged by the browser as failed loads: they are the API working, not bugs.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource'))
      scriptErrors.push(message.text());
  });
  return page;
}

async function login(page: Page, name: string, password: string): Promise<void> {
  await page.goto(`${url}/`);
  await page.getByLabel('User').fill(name);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('navigation', { name: 'main' }).waitFor();
}

async function shot(page: Page, name: string): Promise<void> {
  if (SCREENSHOTS) await page.screenshot({ path: `${ROOT}docs/images/console-${name}.png` });
}

describe('the web console in Chromium', () => {
  let page: Page;

  beforeAll(async () => {
    page = await newPage();
  });

  it('rejects a wrong password, then logs in and shows the overview', async () => {
    await page.goto(`${url}/`);
    await page.getByLabel('User').fill('ada');
    await page.getByLabel('Password').fill('wrong-password');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'LOGIN_FAILED' }).waitFor();
    await login(page, 'ada', env.KAIROS_ADMIN_PASSWORD);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.getByRole('region', { name: 'Workers online' }).getByText('1', { exact: true }).waitFor();
  });

  it('creates a cron job through the form, refusing an invalid cron with a visible message', async () => {
    await page.getByRole('link', { name: 'Jobs', exact: true }).click();
    await page.getByRole('link', { name: 'New job' }).click();
    await page.getByLabel('Name', { exact: true }).fill('browser-tick');
    await page.getByLabel('Handler').fill('echo');
    await page.getByLabel('Time zone').fill('Asia/Shanghai');
    await page.getByLabel('Cron expression').fill('61 * * * *');
    const problem = page.getByRole('alert', { name: 'Trigger error' });
    await problem.filter({ hasText: 'INVALID_CRON' }).waitFor();
    expect(await page.getByRole('button', { name: 'Create job' }).isDisabled()).toBe(true);

    await page.getByLabel('Cron expression').fill('* * * * * *');
    await problem.waitFor({ state: 'detached' });
    const fires = page.getByRole('list', { name: 'Next fire times' }).getByRole('listitem');
    await fires.nth(9).waitFor();
    expect(await fires.count()).toBe(10);
    await shot(page, 'job-form');
    await page.getByRole('button', { name: 'Create job' }).click();

    // The job page follows its runs live: scheduled runs appear and succeed without a reload.
    await page.getByRole('heading', { name: 'browser-tick' }).waitFor();
    expect(page.url()).toContain('#/jobs/browser-tick');
    const succeeded = page.getByRole('table', { name: 'Runs' }).locator('tr[data-status="succeeded"]');
    await succeeded.nth(2).waitFor();
    const job = await admin.getJob('browser-tick');
    expect(job.trigger).toEqual({ kind: 'cron', cron: '* * * * * *', timezone: 'Asia/Shanghai' });
    await shot(page, 'job-detail');
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.getByRole('button', { name: 'Resume' }).waitFor();
    expect((await admin.getJob('browser-tick')).paused).toBe(true);
    // A fire passes while the job is paused; on resume it shows among the fires that did not run.
    // The second fire from now: the first may have been made ahead of the pause and run anyway.
    const missed = Date.parse((await admin.previewJob('browser-tick', 2)).fires[1]!.fireTime);
    while (Date.now() <= missed + 100) await new Promise((resolve) => setTimeout(resolve, 50));
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.getByRole('button', { name: 'Pause' }).waitFor();
    await page.getByRole('table', { name: 'Skipped fires' }).getByText('paused').waitFor();
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.getByRole('button', { name: 'Resume' }).waitFor();

    // Open one of its runs from the list.
    const link = succeeded.first().getByRole('link', { name: /^#\d+$/ });
    const runId = Number((await link.textContent())!.slice(1));
    await link.click();
    await page.getByRole('heading', { name: `Run #${runId}` }).waitFor();
    await page.getByTestId('run-status').filter({ hasText: 'succeeded' }).waitFor();
    await page.getByRole('list', { name: 'Attempts' }).getByText('succeeded').waitFor();
    await page.getByText('"echo"').waitFor();
  });

  it('the job form opens and saves jobs that use every field without changing them', async () => {
    await admin.putCalendar({ name: 'holidays', timezone: 'Europe/Berlin', dates: ['2026-12-25'] });
    const specs: JobSpec[] = [
      {
        name: 'form-everything',
        description: 'every setting',
        group: 'reports',
        handler: 'send-report',
        params: { to: 'ops', nested: { a: [1, 2] }, apiKey: 'form-secret-first' },
        secretParams: ['apiKey'],
        trigger: { kind: 'cron', cron: '30 2 * * *', timezone: 'Europe/Berlin', dst: 'literal' },
        retry: {
          maxAttempts: 5,
          backoff: 'fixed',
          delay: '10s',
          maxDelay: '1m',
          jitter: false,
          nonRetryable: ['BadInput'],
        },
        timeout: '15m',
        priority: 7,
        paused: true,
        schedule: {
          misfire: { policy: 'catch-up', maxCatchUp: 3, catchUpWindow: '2h' },
          overlap: 'buffer-one',
          startAt: '2026-01-01T00:00:00.000Z',
          endAt: '2030-01-01T00:00:00.000Z',
          jitter: '5s',
          maxRuns: 1000,
          calendars: ['holidays'],
        },
        routing: { strategy: 'consistent-hash', key: 'to', selector: { region: 'eu', tier: 'gold' } },
        maxConcurrency: 2,
        rateLimit: { limit: 10, per: '1m' },
        scheduleToStartTimeout: '30s',
        resources: { cpu: 0.5, memory: '512Mi', gpu: 1 },
      },
      {
        name: 'form-shell',
        trigger: { kind: 'every', every: '90s', startAt: '2026-01-01T00:00:00.000Z' },
        paused: true,
        task: {
          kind: 'shell',
          command: '/bin/sh',
          args: ['-c', 'echo a\necho b', ' leading space', ''],
          env: { MODE: 'full', JAVA_OPTS: '-Xms1g,-Xmx2g' },
          cwd: '/tmp',
        },
      },
      {
        name: 'form-http',
        trigger: { kind: 'after', job: 'form-everything', on: 'failure' },
        task: {
          kind: 'http',
          method: 'POST',
          url: 'https://hooks.example.com/ping',
          headers: { 'x-team': 'ops' },
          body: '{"a":1}',
          timeout: '10s',
          expectStatus: [200, 204],
        },
      },
    ];
    for (const spec of specs) {
      const before = await admin.putJob(spec);
      await page.goto(`${url}/#/jobs/${spec.name}/edit`);
      await page.getByRole('heading', { name: `Edit ${spec.name}` }).waitFor();
      const save = page.getByRole('button', { name: 'Save changes' });
      await waitFor(async () => (await save.isEnabled()) || undefined, 10_000, `${spec.name}: Save enabled`);
      await save.click();
      await page.getByRole('heading', { name: spec.name, exact: true }).waitFor();
      // Not a field changed, not even the version: an edit that changes nothing writes nothing.
      expect(await admin.getJob(spec.name)).toEqual(before);
    }
    // A change keeps everything else: the DST rule stays literal.
    await page.goto(`${url}/#/jobs/form-everything/edit`);
    await page.getByLabel('Priority').fill('8');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('heading', { name: 'form-everything', exact: true }).waitFor();
    const changed = await admin.getJob('form-everything');
    expect(changed.priority).toBe(8);
    expect(changed.trigger).toMatchObject({ dst: 'literal' });
    expect(changed.schedule.calendars).toEqual(['holidays']);
    // The form shows a secret as "***" (kept when saved as it is); replacing it sets a new value,
    // which is never shown either.
    await page.goto(`${url}/#/jobs/form-everything/edit`);
    const params = page.getByLabel('Params (JSON)');
    await waitFor(
      async () => (await params.inputValue()).includes('"apiKey": "***"'),
      10_000,
      'the masked secret',
    );
    await params.fill(JSON.stringify({ to: 'ops', nested: { a: [1, 2] }, apiKey: 'form-secret-second' }));
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('heading', { name: 'form-everything', exact: true }).waitFor();
    const secretSet = await admin.getJob('form-everything');
    expect(secretSet.version).toBe(changed.version + 1);
    expect(secretSet.params.apiKey).toBe('***');
    expect(await page.content()).not.toContain('form-secret');
    // Resources per run: the job's page shows them; the form changes them and refuses a bad amount.
    await page.getByTestId('job-resources').filter({ hasText: 'cpu 0.5, memory 512 MiB, gpu 1' }).waitFor();
    await page.goto(`${url}/#/jobs/form-everything/edit`);
    await page.getByText('Routing and limits').click();
    const resources = page.getByLabel(/^Resources per run/);
    await waitFor(
      async () => (await resources.inputValue()) === 'cpu=0.5, memory=512Mi, gpu=1',
      10_000,
      'the resources field',
    );
    await resources.fill('cpu=1, memory=lots');
    await page.getByText('name=amount, separated by commas').waitFor();
    expect(await page.getByRole('button', { name: 'Save changes' }).isEnabled()).toBe(false);
    await resources.fill('cpu=1, memory=1Gi');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('heading', { name: 'form-everything', exact: true }).waitFor();
    await page.getByTestId('job-resources').filter({ hasText: 'cpu 1, memory 1 GiB' }).waitFor();
    expect((await admin.getJob('form-everything')).resources).toEqual({ cpu: 1, memory: 2 ** 30 });
    for (const spec of specs.reverse()) await admin.deleteJob(spec.name);
  });

  it('calendars: a page to add and change them; a backfill dialog on a job', async () => {
    await page.getByRole('link', { name: 'Calendars', exact: true }).click();
    await page.getByRole('button', { name: 'New calendar' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Name').fill('weekends');
    await dialog.getByLabel('Time zone').fill('Europe/Berlin');
    await dialog.getByLabel('Sat').check();
    await dialog.getByLabel('Sun').check();
    await dialog.getByLabel(/^Dates excluded/).fill('2026-12-24\nnot-a-date');
    await dialog.getByRole('alert').filter({ hasText: 'not a date (YYYY-MM-DD): not-a-date' }).waitFor();
    await dialog.getByLabel(/^Dates excluded/).fill('2026-12-24');
    await dialog.getByRole('button', { name: 'Save calendar' }).click();
    await page
      .getByRole('table', { name: 'Calendars' })
      .getByRole('row', { name: /weekends/ })
      .getByText('Sun, Sat · 1 date')
      .waitFor();
    expect(await admin.getCalendar('weekends')).toMatchObject({
      timezone: 'Europe/Berlin',
      weekdays: [0, 6],
      dates: ['2026-12-24'],
    });

    await admin.putJob({
      name: 'hourly-report',
      handler: 'echo',
      trigger: { kind: 'cron', cron: '0 * * * *' },
      paused: true,
    });
    await page.goto(`${url}/#/jobs/hourly-report`);
    await page.getByRole('button', { name: 'Backfill' }).click();
    const backfill = page.getByRole('dialog', { name: 'Backfill hourly-report' });
    const hour = 3_600_000;
    const end = Math.floor(Date.now() / hour) * hour;
    const local = (ms: number) => {
      const d = new Date(ms);
      const p = (n: number) => String(n).padStart(2, '0');
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
    };
    await backfill.getByLabel('From').fill(local(end - 2 * hour));
    await backfill.getByLabel('To').fill(local(end));
    await backfill.getByRole('button', { name: 'Create runs' }).click();
    await backfill
      .getByRole('status')
      .filter({ hasText: '3 runs created, 0 fire times already had a run' })
      .waitFor();
    expect((await admin.listRuns({ job: 'hourly-report' })).items).toHaveLength(3);
    await backfill.getByRole('button', { name: 'Close' }).click();
    await admin.deleteJob('hourly-report');
  });

  it('triggers a long run with params, opens it and cancels it', async () => {
    await admin.createJob({
      name: 'browser-sleep',
      handler: 'sleep',
      trigger: { kind: 'manual' },
      retry: { maxAttempts: 1 },
    });
    await page.goto(`${url}/#/jobs/browser-sleep`);
    await page.getByRole('button', { name: 'Trigger', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Trigger browser-sleep now' });
    await dialog.getByLabel('Params (JSON)').fill('{"ms": 120000}');
    await dialog.getByRole('button', { name: 'Trigger run' }).click();

    await page.getByRole('heading', { name: /^Run #\d+/ }).waitFor();
    const status = page.getByTestId('run-status');
    await page.getByTestId('run-status').filter({ hasText: 'running' }).waitFor();
    const runId = Number(page.url().split('/').pop());
    expect((await admin.getRun(runId)).params).toEqual({ ms: 120000 });
    await page
      .getByRole('list', { name: 'Attempts' })
      .getByText('console-worker', { exact: false })
      .or(page.getByRole('list', { name: 'Attempts' }).locator('code'))
      .first()
      .waitFor();
    // The log tail follows the handler's lines as they are written.
    const log = page.getByRole('log', { name: 'Run log' });
    await log.getByText('sleeping', { exact: false }).waitFor();
    await log.getByText('beat 2', { exact: false }).waitFor();
    await shot(page, 'run-detail');

    await page.getByRole('button', { name: 'Cancel run' }).click();
    await page
      .getByRole('dialog', { name: `Cancel run #${runId}?` })
      .getByRole('button', { name: 'Cancel run' })
      .click();
    await status.filter({ hasText: 'cancelled' }).waitFor();
    expect((await admin.getRun(runId)).status).toBe('cancelled');
    await page.getByRole('list', { name: 'Attempts' }).getByText('cancelled').first().waitFor();
  });

  it('lists runs, workers, nodes, and lets an admin add a viewer', async () => {
    await page.getByRole('link', { name: 'Runs', exact: true }).click();
    const runsTable = page.getByRole('table', { name: 'Runs' });
    await runsTable.locator('tr[data-status="cancelled"]').first().waitFor();
    await shot(page, 'runs');

    // A time range before any run: the empty state; then one around now: the runs again.
    const empty = page.getByText('No runs were created in this time range.');
    await page.getByLabel('Created after').fill('2001-01-01T00:00');
    await page.getByLabel('Created before').fill('2001-01-02T00:00');
    await page.getByRole('button', { name: 'Filter' }).click();
    await empty.waitFor();
    expect(page.url()).toContain('since=2001-01-0');
    expect(await runsTable.count()).toBe(0);
    const local = (ms: number) => {
      const d = new Date(ms);
      const p = (n: number) => String(n).padStart(2, '0');
      return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
    };
    await page.getByLabel('Created after').fill(local(Date.now() - 3_600_000));
    await page.getByLabel('Created before').fill(local(Date.now() + 3_600_000));
    await page.getByRole('button', { name: 'Filter' }).click();
    await runsTable.locator('tr[data-status="cancelled"]').first().waitFor();
    expect(await empty.count()).toBe(0);
    await page.getByRole('button', { name: 'Any time' }).click();
    await page.waitForURL((u) => !u.hash.includes('since='));

    // Drain a second worker from the Workers page; the first keeps its Drain button and its runs.
    spare = spawnTs(WORKER, [], { ...env, KAIROS_URL: url, WORKER_NAME: 'spare-worker' });
    await admin.setGroupLimits('console-etl', { maxConcurrency: 3, rateLimit: { limit: 10, per: '1m' } });
    await page.getByRole('link', { name: 'Workers', exact: true }).click();
    const workers = page.getByRole('table', { name: 'Workers' });
    await workers.getByText('console-worker').waitFor();
    // The group limits of the namespace shown, under its workers.
    const limit = page.getByRole('table', { name: 'Group limits' }).locator('tr[data-group="console-etl"]');
    await limit.getByText('10 per 1m0s').waitFor();
    expect(await limit.getByText('3', { exact: true }).count()).toBe(1);
    const spareRow = workers.locator('tr[data-worker="spare-worker"]');
    await spareRow.getByRole('button', { name: 'Drain' }).click();
    await page
      .getByRole('dialog', { name: 'Drain spare-worker?' })
      .getByRole('button', { name: 'Drain worker' })
      .click();
    await spareRow.getByText('draining').waitFor();
    expect(await spareRow.getByRole('button', { name: 'Drain' }).count()).toBe(0);
    expect((await admin.listWorkers()).items.find((w) => w.name === 'spare-worker')?.status).toBe('draining');
    const workerRow = workers.locator('tr[data-worker="console-worker"]');
    await workerRow.getByRole('button', { name: 'Drain' }).waitFor();
    // What the worker has (cpu and memory of its host) with what its running runs use of it, and
    // the host's load its heartbeats report.
    await workerRow
      .getByTestId('worker-resources')
      .locator('[data-resource="cpu"]')
      .filter({ hasText: /^cpu [\d.]+ \/ [\d.]+$/ })
      .waitFor();
    await workerRow
      .getByTestId('worker-resources')
      .locator('[data-resource="memory"]')
      .filter({ hasText: /^memory .+ \/ [\d.]+ [KMGT]iB$/ })
      .waitFor();
    await workerRow.getByTestId('worker-load').filter({ hasText: 'per CPU' }).waitFor();
    await shot(page, 'workers');

    await page.getByRole('link', { name: 'Cluster', exact: true }).click();
    await page
      .getByRole('table', { name: 'Nodes' })
      .getByText('alive')
      .or(page.getByRole('table', { name: 'Nodes' }).getByText('active'))
      .first()
      .waitFor();
    await shot(page, 'cluster');

    await page.getByRole('link', { name: 'Users & tokens' }).click();
    await page.getByLabel('New user name').fill('vera');
    await page.getByLabel('New user role').selectOption('viewer');
    await page.getByLabel('New user password').fill('vera-secret-1');
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.getByRole('table', { name: 'Users' }).getByText('vera').waitFor();
    await page.getByRole('table', { name: 'Audit log' }).getByText('users:vera').waitFor();
    await shot(page, 'users');

    // A failing run shows up in the overview's recent failures and in its chart.
    await admin.createJob({
      name: 'browser-fail',
      handler: 'fail',
      trigger: { kind: 'manual' },
      retry: { maxAttempts: 1 },
    });
    await admin.triggerJob('browser-fail');
    await page.getByRole('link', { name: 'Overview' }).click();
    await page.getByRole('region', { name: 'Success rate' }).getByText('%').waitFor();
    await page.getByRole('link', { name: 'browser-fail' }).waitFor();
    // browser-tick's scheduled runs started: their lateness is shown.
    await page
      .getByRole('region', { name: 'Fire lateness p50 / p99' })
      .getByText('scheduled starts, last hour')
      .waitFor();
    await shot(page, 'overview');

    // The last day: counts, lateness and the chart (10-minute bars) over 24 hours.
    const dayChart = page.waitForResponse((r) => {
      const since = new URL(r.url()).searchParams.get('since');
      return (
        r.url().includes('/v1/stats/runs-per-minute') &&
        !!since &&
        Date.parse(since) < Date.now() - 2 * 3_600_000
      );
    });
    const dayCounts = page.waitForResponse((r) => r.url().includes('/v1/stats/overview?window=24h'));
    await page.getByRole('button', { name: 'Last day' }).click();
    // Both of the day's questions are answered, not refused (a day back by the browser's clock is
    // more than a day back by the node's when the answer leaves).
    expect((await dayChart).status()).toBe(200);
    expect((await dayCounts).status()).toBe(200);
    await page.getByRole('heading', { name: 'Runs per 10 minutes, last day' }).waitFor();
    await page.getByRole('region', { name: 'Success rate' }).getByText('failed, last day').waitFor();
    await page
      .getByRole('region', { name: 'Fire lateness p50 / p99' })
      .getByText('scheduled starts, last day')
      .waitFor();
    expect(await page.getByRole('button', { name: 'Last day' }).getAttribute('aria-pressed')).toBe('true');
    expect(page.url()).toContain('window=24h');
    await page.getByRole('button', { name: 'Last hour' }).click();
    await page.getByRole('heading', { name: 'Runs per minute, last hour' }).waitFor();
  });

  it('a queued run tells why it waits; Settings → Retention shows the node’s retention and its pruner', async () => {
    await admin.createJob({
      name: 'browser-stranded',
      handler: 'nobody-runs-this',
      group: 'empty-group',
      trigger: { kind: 'manual' },
      retention: { keepLast: 10 },
    });
    const run = await admin.triggerJob('browser-stranded');
    await page.goto(`${url}/#/runs/${run.id}`);
    await page
      .getByTestId('run-waiting')
      .filter({ hasText: 'no live worker in group empty-group' })
      .waitFor();
    expect(await page.getByTestId('run-waiting').getAttribute('data-reason')).toBe('no_live_worker_in_group');
    await page.getByTestId('run-resources').filter({ hasText: 'none (a slot only)' }).waitFor();

    // A run bigger than every live worker: its page says no worker can take it, and what it lacks.
    await admin.createJob({
      name: 'browser-too-big',
      handler: 'echo',
      trigger: { kind: 'manual' },
      resources: { gpu: 4 },
    });
    const big = await admin.triggerJob('browser-too-big');
    await page.goto(`${url}/#/runs/${big.id}`);
    const waiting = page.getByTestId('run-waiting');
    // The page reads the run every second: on a busy machine a read may come while console-worker's
    // lease waits for its next heartbeat ('no live worker in group'); the next one says why.
    await page.locator('[data-testid="run-waiting"][data-reason="no_worker_with_resources"]').waitFor();
    await waiting.filter({ hasText: 'No live worker can take it' }).waitFor();
    expect(await waiting.textContent()).toContain('has gpu 4 in all');
    await page.getByTestId('run-missing').filter({ hasText: 'gpu 4' }).waitFor();
    await page.getByTestId('run-resources').filter({ hasText: 'gpu 4' }).waitFor();
    await shot(page, 'run-unplaceable');
    await admin.cancelRun(big.id);
    await admin.deleteJob('browser-too-big');

    await page.getByRole('link', { name: 'Settings', exact: true }).click();
    await page.getByRole('heading', { name: 'Settings · Retention' }).waitFor();
    await page.getByTestId('retention-finished').filter({ hasText: '30d' }).waitFor();
    await page.getByTestId('pruner-last-try').filter({ hasText: 'this node prunes' }).waitFor();
    await page.getByRole('table', { name: 'Rows pruned' }).getByText('run log lines').waitFor();
    await shot(page, 'settings-retention');
    await page
      .getByRole('list', { name: 'Jobs with their own retention' })
      .getByRole('link', { name: 'browser-stranded' })
      .click();
    await page
      .getByRole('heading', { name: /browser-stranded/ })
      .first()
      .waitFor();
    await page.getByText('the last 10', { exact: false }).waitFor();
    await page.getByRole('link', { name: "the node's retention" }).click();
    await page.getByRole('heading', { name: 'Settings · Retention' }).waitFor();
    await admin.deleteJob('browser-stranded');
  });

  it('workflows: lists them, draws the graph, follows an instance live to its end, opens a step run, cancels an instance', async () => {
    // A join (load after clean and stats) and a failure edge (page after load fails); report is
    // after load's success, so it is skipped, and the instance succeeds: the failure is handled.
    await admin.request('PUT', '/v1/workflows/browser-etl', {
      description: 'extract, two branches, a join that fails, the failure handled',
      steps: [
        { id: 'extract', handler: 'echo' },
        { id: 'clean', handler: 'echo', after: ['extract'] },
        { id: 'stats', handler: 'flaky', after: ['extract'], retry: { maxAttempts: 2, delay: 0 } },
        { id: 'load', handler: 'fail', after: ['clean', 'stats'], retry: { maxAttempts: 1 } },
        { id: 'page', handler: 'echo', after: [{ step: 'load', on: 'failure' }] },
        { id: 'report', handler: 'echo', after: ['load'] },
      ],
    });
    const ids = ['extract', 'clean', 'stats', 'load', 'page', 'report'];
    await page.getByRole('link', { name: 'Workflows', exact: true }).click();
    const listed = page
      .getByRole('table', { name: 'Workflows' })
      .getByRole('row')
      .filter({ hasText: 'browser-etl' });
    await listed.getByRole('cell', { name: '6', exact: true }).waitFor();
    await listed.getByRole('link', { name: 'browser-etl' }).click();
    await page.getByRole('heading', { name: 'browser-etl' }).waitFor();
    // The definition: a node per step, laid out by ELK, drawn by React Flow (each edge a path).
    const graph = page.getByRole('figure', { name: 'Workflow graph' });
    for (const id of ids) await graph.getByTestId(`step-${id}`).waitFor();
    expect(await graph.locator('.react-flow__edge').count()).toBe(6);
    await graph.getByText('on failure').waitFor();
    // ELK placed them: extract first, the join after both its parents.
    const x = async (id: string) => (await graph.getByTestId(`step-${id}`).boundingBox())!.x;
    expect(await x('extract')).toBeLessThan(await x('clean'));
    expect(await x('stats')).toBeLessThan(await x('load'));
    expect(await x('load')).toBeLessThan(await x('page'));

    await page.getByRole('button', { name: 'Start', exact: true }).click();
    const dialog = page.getByRole('dialog', { name: 'Start browser-etl' });
    await dialog.getByLabel('Context (JSON)').fill('[1]');
    await dialog.getByRole('alert').filter({ hasText: 'must be a JSON object' }).waitFor();
    await dialog.getByLabel('Context (JSON)').fill('{"day": "2026-12-05"}');
    await dialog.getByRole('button', { name: 'Start instance' }).click();
    await page.getByRole('heading', { name: /^Instance #\d+/ }).waitFor();
    const instanceId = Number(page.url().split('/').pop());
    expect(
      (await admin.request<{ context: unknown }>('GET', `/v1/workflow-instances/${instanceId}`)).context,
    ).toEqual({
      day: '2026-12-05',
    });

    // The states follow the worker without a reload, to the instance's end.
    const live = page.getByRole('figure', { name: 'Workflow graph' });
    const expected: Record<string, string> = {
      extract: 'succeeded',
      clean: 'succeeded',
      stats: 'succeeded',
      load: 'failed',
      page: 'succeeded',
      report: 'skipped',
    };
    for (const [id, state] of Object.entries(expected)) {
      await live.locator(`[data-testid="step-${id}"][data-state="${state}"]`).getByText(state).waitFor();
    }
    await page.getByTestId('instance-state').filter({ hasText: 'succeeded' }).waitFor();
    // The timeline: a bar per step that ran; stats took two attempts (flaky fails its first).
    const timeline = page.getByRole('list', { name: 'Step timeline' });
    expect(await timeline.locator('.timeline-bar').count()).toBe(5);
    await timeline.locator('li[data-step="stats"]').getByText('2 attempts').waitFor();
    expect(await page.getByRole('button', { name: 'Cancel', exact: true }).count()).toBe(0);
    await shot(page, 'workflow-instance');

    // One click from a step to its run.
    const steps = (
      await admin.request<{ steps: Array<{ id: string; runId: number | null }> }>(
        'GET',
        `/v1/workflow-instances/${instanceId}`,
      )
    ).steps;
    const loadRun = steps.find((s) => s.id === 'load')!.runId!;
    await live.getByRole('link', { name: `step load: run #${loadRun}` }).click();
    await page.getByRole('heading', { name: `Run #${loadRun}` }).waitFor();
    await page.getByTestId('run-status').filter({ hasText: 'failed' }).waitFor();
    await page.getByText('always fails').first().waitFor();

    await page.goto(`${url}/#/workflows/browser-etl`);
    const instances = page.getByRole('table', { name: 'Instances' });
    await instances.getByRole('link', { name: `#${instanceId}` }).waitFor();
    await instances.locator('tr[data-state="succeeded"]').first().waitFor();
    await page.getByRole('figure', { name: 'Workflow graph' }).getByTestId('step-report').waitFor();
    await shot(page, 'workflow');

    // Cancel from the console: a step that sleeps, and one waiting after it.
    await admin.request('PUT', '/v1/workflows/browser-slow', {
      steps: [
        { id: 'nap', handler: 'sleep', params: { ms: 120000 }, retry: { maxAttempts: 1 } },
        { id: 'wake', handler: 'echo', after: ['nap'] },
      ],
    });
    const slow = await admin.request<{ id: number }>('POST', '/v1/workflows/browser-slow/instances', {});
    await page.goto(`${url}/#/workflows/browser-slow/instances/${slow.id}`);
    await page.locator('[data-testid="step-nap"][data-state="ready"]').waitFor();
    await page.locator('[data-testid="step-wake"][data-state="waiting"]').waitFor();
    await page.getByRole('button', { name: 'Cancel', exact: true }).click();
    await page
      .getByRole('dialog', { name: `Cancel instance #${slow.id}?` })
      .getByRole('button', { name: 'Cancel instance' })
      .click();
    await page.getByTestId('instance-state').filter({ hasText: 'cancelled' }).waitFor();
    await page.locator('[data-testid="step-nap"][data-state="cancelled"]').waitFor();
    await page.locator('[data-testid="step-wake"][data-state="cancelled"]').waitFor();
    const cancelled = await admin.request<{ state: string; steps: Array<{ runId: number | null }> }>(
      'GET',
      `/v1/workflow-instances/${slow.id}`,
    );
    expect(cancelled.state).toBe('cancelled');
    expect((await admin.getRun(cancelled.steps[0]!.runId!)).status).toBe('cancelled');
  }, 120_000);

  it('alerts: adds a signed webhook channel, sends a test, adds a rule and shows its alert and deliveries', async () => {
    const receiver = await new Receiver().start();
    try {
      await page.getByRole('link', { name: 'Alerts', exact: true }).click();
      await page.getByRole('heading', { name: 'Alerts' }).waitFor();
      const channelForm = page.getByRole('form', { name: 'New channel' });
      await channelForm.getByLabel('Channel name').fill('ops');
      await channelForm.getByLabel('Channel type').selectOption('webhook');
      await channelForm.getByLabel('Channel URL').fill(`${receiver.url}/hook/token-123`);
      await channelForm.getByLabel('Signing secret').fill('browser-secret');
      await channelForm.getByRole('button', { name: 'Add channel' }).click();
      const row = page.getByRole('table', { name: 'Alert channels' }).locator('tr[data-channel="ops"]');
      await row.waitFor();
      // The page shows the URL's origin only, never its token or the secret.
      expect(await page.content()).not.toContain('token-123');
      await row.getByRole('button', { name: 'Send test' }).click();
      await page.getByRole('status').getByText('sent').waitFor();
      const [test] = await receiver.until(1);
      expect(verifyKairosWebhook(test!, 'browser-secret')).toBe(true);

      const ruleForm = page.getByRole('form', { name: 'New alert rule' });
      await ruleForm.getByLabel('Rule name').fill('browser-fail-alert');
      await ruleForm.getByLabel('Rule kind').selectOption('run-failed');
      await ruleForm.getByLabel('Rule scope').selectOption('job');
      await ruleForm.getByLabel('Scope name').fill('browser-fail');
      await ruleForm.getByRole('button', { name: 'Add rule' }).click();
      await page
        .getByRole('table', { name: 'Alert rules' })
        .locator('tr[data-rule="browser-fail-alert"]')
        .waitFor();
      await admin.triggerJob('browser-fail');
      await page.getByRole('table', { name: 'Firing alerts' }).getByText('job:browser-fail').waitFor();
      await page
        .getByRole('table', { name: 'Deliveries' })
        .getByText('Job browser-fail: run')
        .first()
        .waitFor();
      const firing = await receiver.until(2);
      expect(JSON.parse(firing[1]!.body)).toMatchObject({ state: 'firing', rule: 'browser-fail-alert' });
      await shot(page, 'alerts');
    } finally {
      await receiver.stop();
    }
  });

  it('a viewer sees everything and can change nothing', async () => {
    await admin.createJob({
      name: 'browser-after',
      handler: 'echo',
      trigger: { kind: 'after', job: 'browser-tick', on: 'always' },
    });
    const viewer = await newPage();
    await login(viewer, 'vera', 'vera-secret-1');
    await viewer.getByRole('link', { name: 'Jobs', exact: true }).click();
    await viewer.getByRole('link', { name: 'browser-tick' }).first().waitFor();
    // The jobs list: a dependency links its upstream job and says when it fires; a paused job says so.
    const afterRow = viewer
      .getByRole('row')
      .filter({ has: viewer.getByRole('link', { name: 'browser-after' }) });
    await afterRow.getByText('when browser-tick ends').waitFor();
    expect(await afterRow.getByRole('link', { name: 'browser-tick' }).getAttribute('href')).toBe(
      '#/jobs/browser-tick',
    );
    const tickRow = viewer
      .getByRole('row')
      .filter({ has: viewer.getByRole('link', { name: 'browser-tick', exact: true }) })
      .filter({ hasText: 'cron' });
    await tickRow.getByText('paused', { exact: true }).first().waitFor();
    expect(await viewer.getByRole('link', { name: 'New job' }).count()).toBe(0);
    expect(await viewer.getByRole('button', { name: 'Delete' }).count()).toBe(0);
    expect(await viewer.getByRole('link', { name: 'Users & tokens' }).count()).toBe(0);

    await viewer.getByRole('link', { name: 'Workers', exact: true }).click();
    await viewer.getByRole('table', { name: 'Workers' }).getByText('console-worker').waitFor();
    expect(await viewer.getByRole('button', { name: 'Drain' }).count()).toBe(0);
    await viewer.getByRole('link', { name: 'Jobs', exact: true }).click();
    await viewer.getByRole('link', { name: 'browser-tick' }).first().waitFor();

    await viewer.getByRole('link', { name: 'browser-tick' }).first().click();
    await viewer.getByRole('heading', { name: 'browser-tick' }).waitFor();
    expect(await viewer.getByRole('button', { name: 'Resume' }).count()).toBe(0);

    await viewer.getByRole('link', { name: 'Alerts', exact: true }).click();
    await viewer.getByRole('table', { name: 'Alert channels' }).getByText('ops').waitFor();
    expect(await viewer.getByRole('button', { name: 'Send test' }).count()).toBe(0);
    expect(await viewer.getByRole('form', { name: 'New alert rule' }).count()).toBe(0);

    await viewer.getByRole('link', { name: 'Workflows', exact: true }).click();
    await viewer.getByRole('link', { name: 'browser-etl' }).click();
    await viewer.getByRole('figure', { name: 'Workflow graph' }).getByTestId('step-load').waitFor();
    await viewer.getByRole('table', { name: 'Instances' }).getByRole('link').first().click();
    await viewer.getByTestId('instance-state').filter({ hasText: 'succeeded' }).waitFor();
    expect(await viewer.getByRole('button', { name: /Start|Retry|Re-run|Skip/ }).count()).toBe(0);

    await viewer.goto(`${url}/#/jobs/new`);
    await viewer.getByText('can look at jobs but not change them').waitFor();

    // The server refuses too, whatever the page shows.
    const answer = await viewer.evaluate(async () => {
      const me = (await (await fetch('/v1/auth/me')).json()) as { csrfToken: string };
      const response = await fetch('/v1/jobs/browser-tick/resume', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': me.csrfToken },
        body: '{}',
      });
      return { status: response.status, body: (await response.json()) as { error: { code: string } } };
    });
    expect(answer).toMatchObject({ status: 403, body: { error: { code: 'FORBIDDEN' } } });
    expect((await admin.getJob('browser-tick')).paused).toBe(true);

    // Deleting the user ends the session at once: the open page falls back to the login form.
    await viewer.goto(`${url}/#/overview`);
    await viewer.getByRole('heading', { name: 'Overview' }).waitFor();
    await admin.deleteUser('vera');
    await viewer.getByRole('button', { name: 'Log in' }).waitFor();
    await viewer.context().close();
  });

  it("signs in with the provider: the button, the provider's login and consent, the console as the mapped role", async () => {
    const sso = await newPage();
    await sso.goto(`${url}/`);
    await sso.getByRole('link', { name: 'Sign in with Test IdP' }).click();
    // The provider's own pages (oidc-provider's development login and consent).
    await sso.locator('input[name="login"]').fill('olga');
    await sso.locator('input[name="password"]').fill('any-password');
    await sso.getByRole('button', { name: 'Sign-in' }).click();
    await sso.getByRole('button', { name: 'Continue' }).click();
    await sso.getByRole('navigation', { name: 'main' }).waitFor();
    expect(new URL(sso.url()).origin).toBe(url);
    await sso.getByTitle('user:olga').getByText('operator', { exact: true }).waitFor();
    // An operator: may create jobs, may not manage users.
    await sso.getByRole('link', { name: 'Jobs', exact: true }).click();
    await sso.getByRole('link', { name: 'New job' }).waitFor();
    expect(await sso.getByRole('link', { name: 'Users & tokens' }).count()).toBe(0);
    await sso.context().close();
  });

  it('switches namespace: each shows only its own jobs, and a user sees only the namespaces granted', async () => {
    await admin.createNamespace({ name: 'teal', description: 'a second team' });
    const teal = new KairosClient({ url, token: env.KAIROS_ADMIN_TOKEN, namespace: 'teal' });
    await teal.createJob({ name: 'teal-only', handler: 'echo', trigger: { kind: 'manual' } });
    const ada = await newPage();
    await login(ada, 'ada', 'ada-secret-1');
    await ada.getByRole('link', { name: 'Jobs', exact: true }).click();
    await ada.getByRole('link', { name: 'browser-tick' }).first().waitFor();
    expect(await ada.getByRole('link', { name: 'teal-only' }).count()).toBe(0);
    await ada.getByLabel('namespace').selectOption('teal');
    await ada.getByRole('link', { name: 'teal-only' }).waitFor();
    expect(await ada.getByRole('link', { name: 'browser-tick' }).count()).toBe(0);
    await ada.getByLabel('namespace').selectOption('default');
    await ada.getByRole('link', { name: 'browser-tick' }).first().waitFor();
    expect(await ada.getByRole('link', { name: 'teal-only' }).count()).toBe(0);
    await ada.context().close();

    // A user with a role in teal only: the switch offers teal alone, and its pages show teal's jobs.
    await admin.createUser({ name: 'tom', role: 'viewer', password: 'tom-secret-1' });
    await teal.putGrant('tom', { role: 'viewer' });
    const tom = await newPage();
    await login(tom, 'tom', 'tom-secret-1');
    expect(await tom.getByLabel('namespace').locator('option').allTextContents()).toEqual(['teal']);
    await tom.getByRole('link', { name: 'Jobs', exact: true }).click();
    await tom.getByRole('link', { name: 'teal-only' }).waitFor();
    expect(await tom.getByRole('link', { name: 'browser-tick' }).count()).toBe(0);

    // A run of teal's, with a log line from a worker of teal: the run page's live log tail follows it.
    const run = await teal.triggerJob('teal-only');
    const { workerId } = await teal.register({ group: 'default', handlers: ['echo'], capacity: 1 });
    expect((await teal.poll(workerId, { max: 1, waitMs: 0 })).runs.map((r) => r.runId)).toEqual([run.id]);
    const time = new Date().toISOString();
    await teal.sendLogs(workerId, {
      logs: [{ runId: run.id, attempt: 1, time, level: 'info', message: 'teal says hello' }],
    });
    await tom.goto(`${url}/#/runs/${run.id}`);
    await tom.getByRole('log', { name: 'Run log' }).getByText('teal says hello').waitFor();
    await teal.report(workerId, { reports: [{ runId: run.id, attempt: 1, outcome: 'succeeded' }] });
    await teal.unregister(workerId);
    await tom.context().close();
  }, 90_000);

  it('ran without script errors', () => {
    expect(scriptErrors).toEqual([]);
  });
});

describe('the workflow repair buttons in Chromium', () => {
  let page: Page;
  type Instance = {
    id: number;
    state: string;
    steps: Array<{ id: string; state: string; runId: number | null; skipped?: boolean }>;
  };
  const getInstance = (id: number) => admin.request<Instance>('GET', `/v1/workflow-instances/${id}`);

  beforeAll(async () => {
    page = await newPage();
    await login(page, 'ada', env.KAIROS_ADMIN_PASSWORD);
  });

  it('pauses a running instance and resumes it: each button only when it applies', async () => {
    await admin.request('PUT', '/v1/workflows/browser-pause', {
      steps: [
        { id: 'nap', handler: 'sleep', params: { ms: 3000 }, retry: { maxAttempts: 1 } },
        { id: 'wake', handler: 'echo', after: ['nap'] },
      ],
    });
    const started = await admin.request<Instance>('POST', '/v1/workflows/browser-pause/instances', {});
    await page.goto(`${url}/#/workflows/browser-pause/instances/${started.id}`);
    await page.locator('[data-testid="step-nap"][data-state="ready"]').waitFor();
    expect(await page.getByRole('button', { name: 'Resume', exact: true }).count()).toBe(0);
    await page.getByRole('button', { name: 'Pause', exact: true }).click();
    await page.getByTestId('instance-state').filter({ hasText: 'paused' }).waitFor();
    expect((await getInstance(started.id)).state).toBe('paused');
    expect(await page.getByRole('button', { name: 'Pause', exact: true }).count()).toBe(0);
    await page.getByRole('button', { name: 'Resume', exact: true }).click();
    await page.getByTestId('instance-state').filter({ hasText: 'succeeded' }).waitFor({ timeout: 30_000 });
    await page.locator('[data-testid="step-wake"][data-state="succeeded"]').waitFor();
  }, 60_000);

  it('retries a failed instance after a confirm', async () => {
    await admin.request('PUT', '/v1/workflows/browser-retry', {
      steps: [{ id: 'once', handler: 'fail', retry: { maxAttempts: 1 } }],
    });
    const started = await admin.request<Instance>('POST', '/v1/workflows/browser-retry/instances', {});
    await page.goto(`${url}/#/workflows/browser-retry/instances/${started.id}`);
    await page.getByTestId('instance-state').filter({ hasText: 'failed' }).waitFor();
    const before = (await getInstance(started.id)).steps[0]!;
    await page.getByRole('button', { name: 'Retry', exact: true }).click();
    await page
      .getByRole('dialog', { name: `Retry instance #${started.id}?` })
      .getByRole('button', { name: 'Retry instance' })
      .click();
    // The step ran again (a new run, or another attempt of its run), and `fail` fails it again.
    await waitFor(
      async () => {
        const step = (await getInstance(started.id)).steps[0]!;
        return step.runId !== before.runId || (step as { attempts?: number }).attempts! > 1 || undefined;
      },
      20_000,
      'the step to run again',
    );
    await page.getByTestId('instance-state').filter({ hasText: 'failed' }).waitFor();
  }, 60_000);

  it('re-runs an ended step, and skips a waiting one by hand', async () => {
    // Re-run: extract of a finished browser-etl instance gets a new run.
    const { items } = await admin.request<{ items: Instance[] }>(
      'GET',
      '/v1/workflows/browser-etl/instances',
    );
    const done = items.find((i) => i.state === 'succeeded')!;
    const extract = done.steps.find((s) => s.id === 'extract')!;
    await page.goto(`${url}/#/workflows/browser-etl/instances/${done.id}`);
    await page
      .getByRole('table', { name: 'Steps' })
      .locator('tr[data-step="extract"]')
      .getByRole('button', { name: 'Re-run' })
      .click();
    await page
      .getByRole('dialog', { name: 'Re-run step extract?' })
      .getByRole('button', { name: 'Re-run step' })
      .click();
    await waitFor(
      async () =>
        (await getInstance(done.id)).steps.find((s) => s.id === 'extract')!.runId !== extract.runId ||
        undefined,
      20_000,
      'a new run of extract',
    );

    // Skip: the long step is skipped by hand, the step after it runs.
    await admin.request('PUT', '/v1/workflows/browser-skip', {
      steps: [
        { id: 'nap', handler: 'sleep', params: { ms: 120000 }, retry: { maxAttempts: 1 } },
        { id: 'wake', handler: 'echo', after: ['nap'] },
      ],
    });
    const started = await admin.request<Instance>('POST', '/v1/workflows/browser-skip/instances', {});
    await page.goto(`${url}/#/workflows/browser-skip/instances/${started.id}`);
    const wakeRow = page.getByRole('table', { name: 'Steps' }).locator('tr[data-step="wake"]');
    await wakeRow.getByRole('button', { name: 'Skip' }).waitFor();
    expect(await wakeRow.getByRole('button', { name: 'Re-run' }).count()).toBe(0);
    await page
      .getByRole('table', { name: 'Steps' })
      .locator('tr[data-step="nap"]')
      .getByRole('button', { name: 'Skip' })
      .click();
    await page
      .getByRole('dialog', { name: 'Skip step nap?' })
      .getByRole('button', { name: 'Skip step' })
      .click();
    await page
      .locator('[data-testid="step-nap"][data-state="hand-skipped"]')
      .getByText('skipped by hand')
      .waitFor();
    await page.locator('[data-testid="step-wake"][data-state="succeeded"]').waitFor();
    const skipped = await getInstance(started.id);
    expect(skipped.steps[0]).toMatchObject({ id: 'nap', state: 'succeeded', skipped: true });
    expect(skipped.state).toBe('succeeded');
  }, 90_000);

  it('ran without script errors', () => {
    expect(scriptErrors).toEqual([]);
  });
});
