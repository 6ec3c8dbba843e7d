import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CheckOptions, checkChaos, formatVerdict, type Verdict } from './checker.ts';
import { appendEvent, readEvents } from './history-log.ts';
import { formatLatency, latencyByFault } from './latency.ts';
import { FAULTS, type FaultKind, Nemesis, planFaults } from './nemesis.ts';
import { startLoadSampler, startStallProbe } from './stall-probe.ts';
import { readPostgresSnapshot, readSqliteSnapshot } from './store-reader.ts';
import { ADMIN_TOKEN, System, sleep, TIMINGS } from './system.ts';

/** The nodes' misfire grace: they run with the default (`KAIROS_MISFIRE_GRACE` unset). */
const MISFIRE_GRACE_MS = 60_000;

/** A chaos run: which system, which faults, for how long. */
export interface Profile {
  name: string;
  store: 'postgres' | 'sqlite';
  nodes: number;
  workers: number;
  /** How long the nemesis injects faults. */
  durationMs: number;
  faults: FaultKind[];
  /** Time between two fault starts (faults overlap when one lasts longer). */
  gapMs: [number, number];
  /** Manual runs enqueued per second through the API. */
  enqueueRate: number;
}

/** Every fault a PostgreSQL cluster can be given (the SQLite ones need the SQLite profile). */
const POSTGRES_FAULTS = (Object.keys(FAULTS) as FaultKind[]).filter(
  (kind) => !(FAULTS[kind].needs as readonly string[]).includes('sqlite'),
);

/**
 * `quick` runs in CI on every `npm test`; `long` is the 30-minute run of docs/reliability.md;
 * `latency` injects one fault at a time, far enough apart that each run's delay is charged to one
 * fault only: what each fault costs in latency.
 */
export const PROFILES: Record<string, Profile> = {
  quick: {
    name: 'quick',
    store: 'postgres',
    nodes: 3,
    workers: 3,
    durationMs: 60_000,
    faults: POSTGRES_FAULTS,
    gapMs: [2000, 5000],
    enqueueRate: 10,
  },
  long: {
    name: 'long',
    store: 'postgres',
    nodes: 3,
    workers: 3,
    durationMs: 30 * 60_000,
    faults: POSTGRES_FAULTS,
    gapMs: [2000, 6000],
    enqueueRate: 10,
  },
  latency: {
    name: 'latency',
    store: 'postgres',
    nodes: 3,
    workers: 3,
    // Two rounds of every kind, one at a time: the longest fault (15 s) and its recovery fit a gap.
    durationMs: 2 * POSTGRES_FAULTS.length * 30_000,
    faults: POSTGRES_FAULTS,
    gapMs: [30_000, 30_000],
    enqueueRate: 10,
  },
  sqlite: {
    name: 'sqlite',
    store: 'sqlite',
    nodes: 1,
    workers: 2,
    durationMs: 60_000,
    faults: [
      'node-kill',
      'node-stop',
      'rolling-restart',
      'worker-kill',
      'worker-stop',
      'disk-full',
      'poison',
    ],
    gapMs: [3000, 7000],
    enqueueRate: 10,
  },
};

export interface ChaosResult {
  seed: number;
  profile: string;
  verdict: Verdict;
  report: string;
  dir: string;
}

/** Runs one profile with one seed and checks the whole history. */
export async function runChaos(
  profile: Profile,
  seed: number,
  log: (line: string) => void = (line) => console.log(line),
): Promise<ChaosResult> {
  const dir = mkdtempSync(join(tmpdir(), `kairos-chaos-${profile.name}-`));
  const history = join(dir, 'history.jsonl');
  log(
    `chaos: profile ${profile.name}, seed ${seed}, faults ${profile.faults.join(' ')}, ${profile.durationMs / 1000} s; files in ${dir}`,
  );
  const network = profile.faults.some((f) => (FAULTS[f].needs as readonly string[]).includes('network'));
  const system = new System({
    store: profile.store,
    nodes: profile.nodes,
    workers: profile.workers,
    network,
    slowLinks: network && profile.faults.includes('db-slow'),
    dir,
    history,
    log: (line) => log(`  ${line}`),
  });
  const nemesis = new Nemesis(system, history, log);
  // The machine as the harness sees it: its own stalls and the load, for the checker to tell the
  // machine's stalls from the nemesis's faults (every node and worker runs a probe of its own).
  const stopProbe = startStallProbe('harness', (stall) => appendEvent(history, stall));
  const stopSampler = startLoadSampler((sample) => appendEvent(history, sample));
  system.onWorkerCrash = (member) => {
    const now = Date.now();
    appendEvent(history, {
      t: 'fault',
      kind: 'worker-crash',
      targets: [`worker:${member.name}`],
      start: now,
      end: now,
    });
    log(`fault worker-crash worker:${member.name}`);
    setTimeout(() => {
      if (system.workers.get(member.slot) === member) system.startWorker(member.slot);
    }, 500);
  };
  try {
    await system.start();
    await createJobs(system.url('n1'));
    const from = Math.ceil((Date.now() + 2000) / 1000) * 1000;
    const plan = planFaults(seed, profile.faults, profile.durationMs, profile.gapMs);
    const producer = produce(system, history, profile.enqueueRate);
    const startedAt = Date.now();
    await Promise.race([nemesis.run(plan, startedAt), sleep(profile.durationMs)]);
    const remaining = startedAt + profile.durationMs - Date.now();
    if (remaining > 0) await sleep(remaining);
    await nemesis.healAll();
    const to = Math.floor(Date.now() / 1000) * 1000;
    producer.stop();
    await producer.done;
    log(`chaos: faults healed at ${new Date(to).toISOString()}; waiting for the system to drain`);
    await drain(system, profile, dir, history, scheduledFires(from, to));
    // The history before the store: every execution it holds is of a run the store then holds;
    // an execution that starts in between is a running run younger than the holder bound.
    const events = readEvents(history);
    const snapshot = await readStore(system, profile, dir);
    const options: CheckOptions = {
      scheduled: scheduledFires(from, to),
      workerLeaseMs: TIMINGS.workerLeaseMs,
      reaperIntervalMs: TIMINGS.reaperIntervalMs,
      slackMs: 3000,
      liveWorkers: system.liveWorkers(),
      allowedSkips: { 'cron-instant': ['overlap'] },
      misfireGraceMs: MISFIRE_GRACE_MS,
      partitionLeaseMs: TIMINGS.partitionLeaseMs,
      heartbeatMs: TIMINGS.heartbeatMs,
      nodes: system.nodeSlots(),
    };
    const verdict = checkChaos(events, snapshot, options);
    // A fault's effects are charged to it until lease + sweep + a partition renewal after it heals;
    // so are a machine stall's of a second or more (kind `machine-stall`), out of the baseline.
    const stallCauses = verdict.stalls
      .filter((s) => s.cause === 'machine' && s.ms >= 1000)
      .map((s) => ({
        t: 'fault' as const,
        kind: 'machine-stall',
        targets: [s.process],
        start: s.start,
        end: s.end,
      }));
    const latency = latencyByFault([...events, ...stallCauses], snapshot, {
      afterMs: TIMINGS.workerLeaseMs + TIMINGS.reaperIntervalMs + TIMINGS.partitionLeaseMs,
      from,
      to,
    });
    const counters = await nodeCounters(system);
    const report = [
      `chaos: profile ${profile.name}, seed ${seed}, ${(to - from) / 1000} s of fires checked`,
      formatVerdict(verdict),
      `node counters (live nodes since their last start): ${JSON.stringify(counters)}`,
      'latency by fault (ms; start: due → first execution, counted: due → the execution that counted):',
      formatLatency(latency),
      verdict.ok
        ? ''
        : `chaos: FAILED with seed ${seed}; reproduce with: npm run chaos -- --${profile.name} --seed ${seed}`,
    ].join('\n');
    writeFileSync(
      join(dir, 'verdict.json'),
      JSON.stringify({ seed, profile: profile.name, verdict, counters, latency }, null, 2),
    );
    writeFileSync(join(dir, 'verdict.txt'), report);
    return { seed, profile: profile.name, verdict, report, dir };
  } catch (error) {
    log(`chaos: the run with seed ${seed} broke: ${String(error)}`);
    for (const m of [...system.nodes.values(), ...system.workers.values()])
      log(`--- ${m.name}\n${m.output.join('').slice(-2000)}`);
    throw error;
  } finally {
    stopProbe();
    stopSampler();
    await nemesis.healAll().catch(() => undefined);
    await system.shutdown();
  }
}

/** The scheduled jobs of the system under test and the fires each owes in [from, to]. */
const SCHEDULED = [
  // Every second, fired ahead (overlap allow): workers hold the run and start it on the instant.
  { name: 'cron-ahead', handler: 'tick', trigger: { kind: 'cron', cron: '* * * * * *' }, every: 1000 },
  // Every second, fired at the instant (overlap skip: a fire while the last run is in flight is skipped and recorded).
  {
    name: 'cron-instant',
    handler: 'tick',
    trigger: { kind: 'cron', cron: '* * * * * *' },
    schedule: { overlap: 'skip' },
    every: 1000,
  },
  { name: 'rate-1s', handler: 'tick', trigger: { kind: 'every', every: '1s' }, every: 1000 },
  // Fixed rate with handlers of 1–6 s: several runs in flight per job at any time.
  { name: 'rate-slow', handler: 'slow', trigger: { kind: 'every', every: '2s' }, every: 2000 },
  // A handler that blocks its worker's event loop for 1.5 s.
  {
    name: 'blocker',
    handler: 'block',
    params: { ms: 1500 },
    trigger: { kind: 'every', every: '5s' },
    every: 5000,
  },
] as const;

function scheduledFires(from: number, to: number): CheckOptions['scheduled'] {
  return SCHEDULED.map((job) => {
    const fires: number[] = [];
    for (let t = Math.ceil(from / job.every) * job.every; t <= to; t += job.every) fires.push(t);
    return { job: job.name, fires };
  });
}

async function createJobs(url: string): Promise<void> {
  const jobs = [
    ...SCHEDULED.map(({ every: _every, ...job }) => ({ ...job, retry: { maxAttempts: 5 } })),
    { name: 'manual', handler: 'tick', trigger: { kind: 'manual' }, retry: { maxAttempts: 5 } },
    { name: 'poison', handler: 'poison', trigger: { kind: 'manual' }, retry: { maxAttempts: 2 } },
  ];
  for (const job of jobs) {
    const response = await fetch(`${url}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(job),
    });
    if (!response.ok)
      throw new Error(`creating job ${job.name}: ${response.status} ${await response.text()}`);
  }
}

/** Enqueues manual runs at a steady rate through every node in turn; records each acknowledged one. */
function produce(system: System, history: string, perSecond: number) {
  let running = true;
  let inFlight = 0;
  const done = (async () => {
    let i = 0;
    const pending = new Set<Promise<void>>();
    while (running) {
      const slots = system.nodeSlots();
      const url = system.url(slots[i++ % slots.length]!);
      if (inFlight < 50) {
        inFlight++;
        const request = fetch(`${url}/v1/jobs/manual/trigger`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
          body: '{}',
          signal: AbortSignal.timeout(5000),
        })
          .then(async (response) => {
            if (response.ok) {
              const run = (await response.json()) as { id: number };
              appendEvent(history, { t: 'ack', runId: run.id, job: 'manual', at: Date.now() });
            }
          })
          .catch(() => undefined)
          .finally(() => {
            inFlight--;
            pending.delete(request);
          });
        pending.add(request);
      }
      await sleep(1000 / perSecond);
    }
    await Promise.all([...pending]);
  })();
  return { done, stop: () => (running = false) };
}

function readStore(system: System, profile: Profile, dir: string) {
  return profile.store === 'postgres'
    ? readPostgresSnapshot(system.postgres!.url, 'chaos')
    : Promise.resolve(readSqliteSnapshot(join(dir, 'data', 'kairos.db')));
}

/**
 * Waits, at most 90 s, until every acknowledged run ended and every fire due up to the heal has a
 * run that ended or a ledger entry: fires due while every node was cut off are fired late, within
 * the misfire grace, once the cluster takes its partitions back.
 */
async function drain(
  system: System,
  profile: Profile,
  dir: string,
  history: string,
  scheduled: CheckOptions['scheduled'],
) {
  const deadline = Date.now() + 90_000;
  const to = Math.max(...scheduled.flatMap((s) => s.fires));
  for (;;) {
    const snapshot = await readStore(system, profile, dir);
    const acked = new Set(readEvents(history).flatMap((e) => (e.t === 'ack' ? [e.runId] : [])));
    const open = snapshot.runs.filter(
      (r) =>
        (acked.has(r.id) || (r.fireTime !== null && r.fireTime <= to)) &&
        !['succeeded', 'failed', 'timed_out', 'cancelled'].includes(r.status),
    );
    const fired = new Set(snapshot.runs.map((r) => `${r.job}@${r.fireTime}`));
    const unfired = scheduled.flatMap(({ job, fires }) =>
      fires.filter(
        (t) =>
          !fired.has(`${job}@${t}`) &&
          !snapshot.skipped.some((s) => s.job === job && s.firstFire <= t && t <= s.lastFire),
      ),
    );
    if ((open.length === 0 && unfired.length === 0) || Date.now() > deadline) return;
    await sleep(1000);
  }
}

/** Fenced fires and stale reports as the live nodes count them (a restarted node starts from 0). */
async function nodeCounters(system: System): Promise<Record<string, number>> {
  const counters: Record<string, number> = { kairos_fenced_fires_total: 0, kairos_stale_reports_total: 0 };
  for (const slot of system.nodeSlots()) {
    const text = await fetch(`${system.url(slot)}/metrics`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      signal: AbortSignal.timeout(3000),
    })
      .then((r) => r.text())
      .catch(() => '');
    for (const line of text.split('\n')) {
      const [name, value] = line.split(' ');
      const base = name?.split('{')[0];
      if (base && base in counters) counters[base]! += Number(value) || 0;
    }
  }
  return counters;
}
