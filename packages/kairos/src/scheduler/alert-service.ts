import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  type AlertSignal,
  type AlertSnapshot,
  type AlertStateRecord,
  conditionSignals,
  decideAlert,
  eventSignals,
} from '../core/alert-engine.ts';
import { type AlertRuleRecord, EVENT_KINDS, ruleCovers } from '../core/alert-rule.ts';
import type { DeliveryRecord, NewDelivery, SilenceRecord } from '../store/alerts.ts';
import { type Lease, LeaseLostError, type Store } from '../store/store.ts';
import { type AlertSender, createAlertSender } from './alert-channels.ts';
import { BackgroundLoop } from './background-loop.ts';
import type { Clock } from './clock.ts';

/** The lease whose holder evaluates and delivers alerts for the whole cluster. */
export const ALERTS_LEASE = 'alerts';

export interface AlertServiceOptions {
  store: Store;
  clock: Clock;
  /** This process's lease owner name (the node's instance). */
  owner: string;
  logger: Logger;
  /** Between evaluations. Default 1 s. */
  intervalMs?: number;
  /**
   * How often the state rules (`no-success`, `run-queued`, `fire-late`, `node-lost`) read the jobs
   * of their scopes; events are decided every evaluation. Default 5 s.
   */
  conditionsEveryMs?: number;
  /** The `alerts` lease. Default 5 s, renewed every evaluation. */
  leaseMs?: number;
  /** Retries of a failed sending attempt: `baseMs` doubled each time up to `maxMs`, `attempts` in all. */
  retry?: { baseMs?: number; maxMs?: number; attempts?: number };
  /** Deliveries are kept this long. Default 30 days. */
  historyMs?: number;
  sender?: AlertSender;
  /** The id of a new alert; random by default. */
  newEventId?: () => string;
  /** Called with each delivery after a sending attempt (metrics). */
  onDelivery?: (delivery: DeliveryRecord) => void;
}

const EVENT_BATCH = 500;
const SEND_BATCH = 20;
const PRUNE_EVERY_MS = 60_000;

/**
 * Evaluates alert rules and delivers alerts, on one node of the cluster at a time: the holder of
 * the `alerts` lease. Each evaluation reads the outbox (changes the store wrote in their own
 * transaction) and the state rules' facts, decides with the pure engine (core/alert-engine.ts),
 * and commits the decisions, the consumed outbox rows and the deliveries in one transaction fenced
 * by the lease: a node that lost the lease mid-evaluation commits nothing, and the next holder
 * decides the same rows again. Deliveries stay pending until a sending attempt succeeds, so a node
 * that dies mid-delivery leaves them to the next holder, which sends them again with the same
 * event id (at least once; receivers deduplicate by the id).
 */
export class AlertService {
  private readonly loop = new BackgroundLoop(() => this.run());
  private lease: Lease | null = null;
  private prunedAt = Number.NEGATIVE_INFINITY;
  private conditionsAt = Number.NEGATIVE_INFINITY;
  private readonly sender: AlertSender;

  constructor(private readonly options: AlertServiceOptions) {
    this.sender = options.sender ?? createAlertSender();
  }

  /** Whether this node holds the `alerts` lease now. */
  get leading(): boolean {
    return this.lease !== null;
  }

  start(): void {
    this.loop.start();
  }

  /** Stops and hands the lease over at once (a crash leaves it to expire). */
  async stop(): Promise<void> {
    await this.loop.stop();
    if (this.lease) await this.options.store.releaseLeases([this.lease]).catch(() => undefined);
    this.lease = null;
  }

  private async run(): Promise<void> {
    const { clock, logger } = this.options;
    while (this.loop.running) {
      try {
        await this.tick();
      } catch (error) {
        logger.warn({ err: error }, 'alert evaluation failed; retrying');
      }
      await clock.sleep(this.options.intervalMs ?? 1000, this.loop.signal);
    }
  }

  /** One round: hold the lease, evaluate, send what is due, prune the history. */
  async tick(): Promise<void> {
    if (!(await this.holdLease())) return;
    try {
      for (;;) {
        const consumed = await this.evaluate();
        if (consumed < EVENT_BATCH || !this.loop.running) break;
      }
      await this.deliver();
      await this.prune();
    } catch (error) {
      if (!(error instanceof LeaseLostError)) throw error;
      this.options.logger.info('alerts lease lost; another node evaluates alerts');
      this.lease = null;
    }
  }

  private async holdLease(): Promise<boolean> {
    const { store, clock, owner } = this.options;
    const ttl = this.options.leaseMs ?? 5000;
    // A lease that expired (this node stood still) is taken again if nobody else took it.
    const [renewed] = this.lease ? await store.renewLeases([this.lease], ttl, clock.now()) : [];
    const [held] = renewed ? [renewed] : await store.acquireLeases([ALERTS_LEASE], owner, ttl, clock.now());
    this.lease = held ?? null;
    return this.lease !== null;
  }

  /** Decides one batch of outbox rows and the state rules; answers how many rows it consumed. */
  async evaluate(): Promise<number> {
    const { store, clock } = this.options;
    const lease = this.lease;
    if (!lease) return 0;
    const now = clock.now();
    const rules = await store.alerts.listRules();
    const byId = new Map(rules.map((rule) => [rule.id, rule]));
    const events = await store.alerts.pendingEvents(EVENT_BATCH);
    const signals: AlertSignal[] = [];
    for (const event of events) {
      if (event.type === 'gone') continue;
      if (event.type === 'run-ended' && event.status !== 'succeeded') {
        const counting = rules.filter(
          (r) =>
            r.enabled &&
            r.kind === 'consecutive-failures' &&
            r.namespace === event.namespace &&
            ruleCovers(r, { job: event.job, group: event.group }),
        );
        if (counting.length > 0) {
          const max = Math.max(...counting.map((r) => r.count ?? 0));
          event.failuresInRow = await store.alerts.failuresInRow(event.runId, max);
        }
      }
      signals.push(...eventSignals(rules, event));
    }
    const stored = await store.alerts.firingAlerts();
    const states = new Map<string, AlertStateRecord>(stored.map((s) => [key(s.ruleId, s.subject), s]));
    const stateRules = rules.filter((r) => r.enabled && !EVENT_KINDS.has(r.kind));
    const conditionsDue = now - this.conditionsAt >= (this.options.conditionsEveryMs ?? 5000);
    if (stateRules.length > 0 && conditionsDue) {
      this.conditionsAt = now;
      const snapshot = await this.snapshot(stateRules, now);
      for (const rule of stateRules) {
        const firing = stored.filter((s) => s.ruleId === rule.id).map((s) => s.subject);
        signals.push(...conditionSignals(rule, snapshot, firing, now));
      }
    }
    if (events.length === 0 && signals.length === 0) return 0;

    const silences = await store.alerts.listSilences(now);
    const changed = new Map<string, AlertStateRecord>();
    const deliveries: NewDelivery[] = [];
    for (const signal of signals) {
      const rule = byId.get(signal.ruleId);
      if (!rule) continue;
      const k = key(signal.ruleId, signal.subject);
      const decision = decideAlert(states.get(k), signal, rule.windowMs, now);
      if (!decision) continue;
      states.set(k, decision.state);
      changed.set(k, decision.state);
      if (!decision.notify) continue;
      const eventId = this.options.newEventId?.() ?? randomUUID();
      const silenced = isSilenced(silences, rule, now);
      for (const channel of rule.channels) {
        deliveries.push({
          namespace: rule.namespace,
          eventId,
          rule: rule.name,
          channel,
          subject: signal.subject,
          state: decision.notify,
          title: signal.title,
          text: signal.text,
          details: { ...signal.details, rule: rule.name, kind: rule.kind, occurrences: decision.state.count },
          status: silenced ? 'silenced' : 'pending',
        });
      }
    }
    await store.alerts.commitAlerts(
      lease,
      { consumed: events.map((e) => e.id), states: [...changed.values()], deliveries },
      now,
    );
    return events.length;
  }

  private async snapshot(rules: readonly AlertRuleRecord[], now: number): Promise<AlertSnapshot> {
    const { store } = this.options;
    const jobRules = rules.filter((r) => r.kind !== 'node-lost');
    // One read of every job when a rule covers a whole namespace; otherwise one read per scope.
    // Each scope is of its rule's namespace: a rule never reads another namespace's jobs.
    let jobs: AlertSnapshot['jobs'] = [];
    if (jobRules.some((r) => r.job === null && r.group === null)) {
      jobs = await store.alerts.jobFacts(null, now);
    } else if (jobRules.length > 0) {
      const scopes = new Map<string, { namespace: string; job?: string; group?: string }>();
      for (const r of jobRules)
        scopes.set(
          JSON.stringify([r.namespace, r.job !== null ? 'j' : 'g', r.job ?? r.group]),
          r.job !== null
            ? { namespace: r.namespace, job: r.job }
            : { namespace: r.namespace, group: r.group ?? '' },
        );
      const seen = new Set<string>();
      const all = [];
      for (const scope of scopes.values()) {
        for (const facts of await store.alerts.jobFacts(scope, now)) {
          const id = `${facts.namespace}\u0000${facts.name}`;
          if (seen.has(id)) continue;
          seen.add(id);
          all.push(facts);
        }
      }
      jobs = all;
    }
    const needsWorkers = rules.some((r) => r.kind === 'run-queued');
    const workers = needsWorkers ? await store.listWorkers() : [];
    const nodes = rules.some((r) => r.kind === 'node-lost') ? await store.listNodes() : [];
    return { jobs, workers, nodes: nodes.map((n) => ({ name: n.id, expiresAt: n.expiresAt })) };
  }

  /** Sends the deliveries that are due, each attempt recorded; a failure is retried with backoff. */
  async deliver(): Promise<number> {
    const { store, clock } = this.options;
    const due = await store.alerts.dueDeliveries(clock.now(), SEND_BATCH);
    if (due.length === 0) return 0;
    const channels = new Map((await store.alerts.listChannels()).map((c) => [c.name, c]));
    const retry = {
      baseMs: this.options.retry?.baseMs ?? 5000,
      maxMs: this.options.retry?.maxMs ?? 300_000,
      attempts: this.options.retry?.attempts ?? 6,
    };
    await Promise.all(
      due.map(async (delivery) => {
        const channel = channels.get(delivery.channel);
        let outcome: Parameters<Store['alerts']['recordDelivery']>[1];
        if (!channel) {
          outcome = { sent: false, error: 'the channel was deleted', retryAt: null };
        } else {
          try {
            await this.sender(channel, { ...delivery, at: clock.now() }, this.loop.signal);
            outcome = { sent: true };
          } catch (error) {
            // Cut short by a stop: left pending as it was, for the next holder of the lease.
            if (this.loop.signal.aborted) return;
            const attempts = delivery.attempts + 1;
            const retryAt =
              attempts >= retry.attempts
                ? null
                : clock.now() + Math.min(retry.maxMs, retry.baseMs * 2 ** (attempts - 1));
            outcome = { sent: false, error: (error as Error).message, retryAt };
          }
        }
        const recorded = await store.alerts.recordDelivery(delivery.id, outcome, clock.now());
        if (recorded) {
          this.options.onDelivery?.(recorded);
          if (recorded.status === 'failed')
            this.options.logger.warn(
              { delivery: recorded.id, channel: recorded.channel, error: recorded.lastError },
              'alert delivery failed for good',
            );
        }
      }),
    );
    return due.length;
  }

  private async prune(): Promise<void> {
    const { store, clock } = this.options;
    if (clock.now() - this.prunedAt < PRUNE_EVERY_MS) return;
    this.prunedAt = clock.now();
    await store.alerts.pruneDeliveries(
      clock.now() - (this.options.historyMs ?? 30 * 24 * 60 * 60 * 1000),
      1000,
    );
  }
}

/**
 * Sends a test message through a channel now, outside the lease (a person waits for the answer),
 * and records it in the history as sent or failed (no retry).
 */
export async function sendTestAlert(
  store: Store,
  clock: Clock,
  sender: AlertSender,
  channelName: string,
  actor: string,
): Promise<DeliveryRecord | null> {
  const channel = await store.alerts.getChannel(channelName);
  if (!channel) return null;
  const message = {
    eventId: randomUUID(),
    rule: null,
    subject: `channel:${channel.name}`,
    state: 'test' as const,
    title: `Test message from Kairos to ${channel.name}`,
    text: `${actor} sent this test message to check the ${channel.type} channel ${channel.name}.`,
    details: { channel: channel.name, type: channel.type, by: actor },
  };
  // Sent first, then recorded as it went: a pending row would be the lease holder's to send too.
  let error: string | undefined;
  try {
    await sender(channel, { ...message, at: clock.now() });
  } catch (caught) {
    error = (caught as Error).message;
  }
  const [delivery] = await store.alerts.addDeliveries(
    [
      {
        ...message,
        namespace: channel.namespace,
        channel: channel.name,
        status: error === undefined ? 'sent' : 'failed',
        ...(error === undefined ? {} : { error }),
      },
    ],
    clock.now(),
  );
  return delivery ?? null;
}

/** A silence covers the rules of its own namespace only (all of them when it names no rule). */
function isSilenced(silences: readonly SilenceRecord[], rule: AlertRuleRecord, now: number): boolean {
  return silences.some(
    (s) =>
      s.namespace === rule.namespace &&
      (s.rule === null || s.rule === rule.name) &&
      s.startsAt <= now &&
      now < s.endsAt,
  );
}

function key(ruleId: number, subject: string): string {
  return `${ruleId}\u0000${subject}`;
}
