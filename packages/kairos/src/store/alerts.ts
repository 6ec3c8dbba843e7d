import type { JsonObject } from '@kairos/client';
import type { AlertEvent, AlertJobFacts, AlertStateRecord } from '../core/alert-engine.ts';
import type { AlertRuleDefinition, AlertRuleRecord } from '../core/alert-rule.ts';
import type { Resources } from '../core/resources.ts';
import type { Lease } from './store.ts';

/** Channel types (`@kairos/client` CHANNEL_TYPES). */
export type ChannelType = 'webhook' | 'slack' | 'feishu' | 'dingtalk' | 'wecom' | 'email';

/** What of a channel the API may show. */
export interface ChannelConfig {
  /** The URL's origin (`https://hooks.slack.com`); the URL itself is a secret. */
  urlOrigin: string | null;
  smtp: {
    host: string;
    port: number;
    secure: boolean;
    user: string | null;
    from: string;
    to: string[];
  } | null;
}

/** What of a channel only the sender reads. */
export interface ChannelSecrets {
  url?: string;
  /** Webhook HMAC key, Feishu or DingTalk signing secret. */
  secret?: string;
  /** SMTP password. */
  password?: string;
}

export interface ChannelDefinition {
  name: string;
  type: ChannelType;
  config: ChannelConfig;
  secrets: ChannelSecrets;
}

export interface ChannelRecord extends ChannelDefinition {
  id: number;
  namespace: string;
  createdAt: number;
  updatedAt: number;
}

export interface SilenceRecord {
  id: number;
  /** The namespace it was made in: it silences that namespace's rules only. */
  namespace: string;
  /** Null: every rule. */
  rule: string | null;
  startsAt: number;
  endsAt: number;
  comment: string;
  createdBy: string;
  createdAt: number;
}

export type DeliveryStatus = 'pending' | 'sent' | 'failed' | 'silenced';

export interface NewDelivery {
  /** Its rule's namespace (a test message: its channel's). */
  namespace: string;
  eventId: string;
  rule: string | null;
  channel: string;
  subject: string;
  state: 'firing' | 'resolved' | 'test';
  title: string;
  text: string;
  details: JsonObject;
  /** `pending`: to send (at `now`); `silenced`: recorded only; `sent`/`failed`: sent once already (a test message). */
  status: 'pending' | 'silenced' | 'sent' | 'failed';
  /** `failed`: why. */
  error?: string;
}

export interface DeliveryRecord extends Omit<NewDelivery, 'status'> {
  id: number;
  status: DeliveryStatus;
  attempts: number;
  lastError: string | null;
  createdAt: number;
  sentAt: number | null;
  nextAttemptAt: number | null;
}

/** The outcome of one sending attempt: sent, or failed with the time of the next attempt (null: give up). */
export type DeliveryOutcome = { sent: true } | { sent: false; error: string; retryAt: number | null };

/**
 * An outbox row with the names it concerns, or `gone`: a row whose job was deleted since, consumed
 * with nothing to decide.
 */
export type StoredAlertEvent = AlertEvent | { id: number; type: 'gone'; at: number };

/** What one evaluation decided, committed whole by {@link AlertStore.commitAlerts}. */
export interface AlertCommit {
  /** Outbox rows read and decided. */
  consumed: readonly number[];
  states: readonly AlertStateRecord[];
  deliveries: readonly NewDelivery[];
}

/**
 * The alerts part of the storage contract: rules, channels, silences, the outbox, the state of
 * each (rule, subject) and the delivery history. The outbox (`alert_events`) is written by the
 * store itself, in the transaction of the change that causes an event (a run that ended, a fire
 * that did not run, a worker lost or back), while an enabled rule of a kind that reads it exists.
 */
export interface AlertStore {
  /**
   * Inserts or replaces a rule by name in a namespace (absent: `default`); `create` refuses an
   * existing name (ALERT_RULE_NAME_TAKEN), a name another namespace holds is refused (NAME_TAKEN).
   * Every channel must exist in the namespace (CHANNEL_NOT_FOUND).
   */
  putRule(
    rule: AlertRuleDefinition,
    now: number,
    create: boolean,
    namespace?: string,
  ): Promise<{ rule: AlertRuleRecord; created: boolean }>;
  /** Rules by name: of one namespace, or all. */
  listRules(namespace?: string): Promise<AlertRuleRecord[]>;
  getRule(name: string): Promise<AlertRuleRecord | null>;
  /** Deletes a rule with its states and silences. */
  deleteRule(name: string): Promise<boolean>;

  /**
   * Inserts or replaces a channel by name in a namespace (absent: `default`); `create` refuses an
   * existing name (CHANNEL_NAME_TAKEN), a name another namespace holds is refused (NAME_TAKEN).
   */
  putChannel(
    channel: ChannelDefinition,
    now: number,
    create: boolean,
    namespace?: string,
  ): Promise<{ channel: ChannelRecord; created: boolean }>;
  /** Channels by name: of one namespace, or all. */
  listChannels(namespace?: string): Promise<ChannelRecord[]>;
  getChannel(name: string): Promise<ChannelRecord | null>;
  /** Deletes a channel; CHANNEL_IN_USE while a rule names it. */
  deleteChannel(name: string): Promise<boolean>;

  /** ALERT_RULE_NOT_FOUND when `rule` names no rule of the silence's namespace. */
  createSilence(silence: Omit<SilenceRecord, 'id'>): Promise<SilenceRecord>;
  /** Silences that have not ended by `now`, earliest end first: of one namespace, or all. */
  listSilences(now: number, namespace?: string): Promise<SilenceRecord[]>;
  /** Deletes a silence (of that namespace only, when one is given). */
  deleteSilence(id: number, namespace?: string): Promise<boolean>;

  /** Up to `limit` outbox rows, oldest first. */
  pendingEvents(limit: number): Promise<StoredAlertEvent[]>;
  /** Failed or timed-out runs in a row of run `runId`'s job, ending with that run, up to `max`. */
  failuresInRow(runId: number, max: number): Promise<number>;
  /** Every (rule, subject) firing now: of the rules of one namespace, or of all. */
  firingAlerts(namespace?: string): Promise<AlertStateRecord[]>;
  /**
   * Facts at `now` of the jobs of a scope (null: all jobs of every namespace), for the rules judged
   * from state; a scope names the namespace of its job or group.
   */
  jobFacts(
    scope: { namespace: string; job?: string | undefined; group?: string | undefined } | null,
    now: number,
  ): Promise<AlertJobFacts[]>;
  /**
   * Commits one evaluation under the `alerts` lease: deletes the consumed outbox rows, writes the
   * states and queues the deliveries, all or nothing. Throws LeaseLostError, changing nothing, when
   * the lease is no longer held or an outbox row is already gone (another evaluator decided it).
   */
  commitAlerts(lease: Lease, commit: AlertCommit, now: number): Promise<void>;

  /** Records deliveries outside an evaluation (test messages, sent already). */
  addDeliveries(deliveries: readonly NewDelivery[], now: number): Promise<DeliveryRecord[]>;
  /** Pending deliveries due by `now`, oldest first. */
  dueDeliveries(now: number, limit: number): Promise<DeliveryRecord[]>;
  /** Records a sending attempt of a pending delivery; null when it is no longer pending. */
  recordDelivery(id: number, outcome: DeliveryOutcome, now: number): Promise<DeliveryRecord | null>;
  /** The history, newest first: of one namespace, or all. */
  listDeliveries(filter: {
    namespace?: string | undefined;
    channel?: string | undefined;
    rule?: string | undefined;
    status?: DeliveryStatus | undefined;
    before?: number | undefined;
    limit: number;
  }): Promise<DeliveryRecord[]>;
  /** Deletes up to `limit` deliveries created before `before` that are no longer pending; answers how many. */
  pruneDeliveries(before: number, limit: number): Promise<number>;
}

// Rows -------------------------------------------------------------------------

export interface AlertRuleRow {
  id: number | string;
  namespace: string;
  name: string;
  kind: string;
  enabled: boolean | number;
  definition: string | Omit<AlertRuleDefinition, 'name' | 'kind' | 'enabled'>;
  created_at: number | string;
  updated_at: number | string;
}

export function ruleFromRow(row: AlertRuleRow): AlertRuleRecord {
  const definition = typeof row.definition === 'string' ? JSON.parse(row.definition) : row.definition;
  return {
    ...definition,
    id: Number(row.id),
    namespace: row.namespace,
    name: row.name,
    kind: row.kind as AlertRuleRecord['kind'],
    enabled: Boolean(row.enabled),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/** The JSON stored in `alert_rules.definition`. */
export function ruleDefinitionColumn(rule: AlertRuleDefinition): string {
  const { name: _name, kind: _kind, enabled: _enabled, ...rest } = rule;
  return JSON.stringify(rest);
}

export interface ChannelRow {
  id: number | string;
  namespace: string;
  name: string;
  type: string;
  config: string | ChannelConfig;
  secrets: string | ChannelSecrets;
  created_at: number | string;
  updated_at: number | string;
}

export function channelFromRow(row: ChannelRow): ChannelRecord {
  return {
    id: Number(row.id),
    namespace: row.namespace,
    name: row.name,
    type: row.type as ChannelType,
    config: typeof row.config === 'string' ? JSON.parse(row.config) : row.config,
    secrets: typeof row.secrets === 'string' ? JSON.parse(row.secrets) : row.secrets,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

export interface StateRow {
  rule_id: number | string;
  subject: string;
  status: string;
  fired_at: number | string;
  notified_at: number | string | null;
  count: number | string;
}

export function stateFromRow(row: StateRow): AlertStateRecord {
  return {
    ruleId: Number(row.rule_id),
    subject: row.subject,
    status: row.status as AlertStateRecord['status'],
    firedAt: Number(row.fired_at),
    notifiedAt: row.notified_at === null ? null : Number(row.notified_at),
    count: Number(row.count),
  };
}

export interface SilenceRow {
  id: number | string;
  namespace: string;
  rule: string | null;
  starts_at: number | string;
  ends_at: number | string;
  comment: string;
  created_by: string;
  created_at: number | string;
}

export function silenceFromRow(row: SilenceRow): SilenceRecord {
  return {
    id: Number(row.id),
    namespace: row.namespace,
    rule: row.rule,
    startsAt: Number(row.starts_at),
    endsAt: Number(row.ends_at),
    comment: row.comment,
    createdBy: row.created_by,
    createdAt: Number(row.created_at),
  };
}

export interface DeliveryRow {
  id: number | string;
  namespace: string;
  event_id: string;
  rule_name: string | null;
  channel_name: string;
  subject: string;
  state: string;
  title: string;
  body: string;
  details: string | JsonObject;
  status: string;
  attempts: number | string;
  last_error: string | null;
  created_at: number | string;
  sent_at: number | string | null;
  next_attempt_at: number | string | null;
}

export function deliveryFromRow(row: DeliveryRow): DeliveryRecord {
  return {
    id: Number(row.id),
    namespace: row.namespace,
    eventId: row.event_id,
    rule: row.rule_name,
    channel: row.channel_name,
    subject: row.subject,
    state: row.state as DeliveryRecord['state'],
    title: row.title,
    text: row.body,
    details: typeof row.details === 'string' ? JSON.parse(row.details) : row.details,
    status: row.status as DeliveryStatus,
    attempts: Number(row.attempts),
    lastError: row.last_error,
    createdAt: Number(row.created_at),
    sentAt: row.sent_at === null ? null : Number(row.sent_at),
    nextAttemptAt: row.next_attempt_at === null ? null : Number(row.next_attempt_at),
  };
}

export interface EventRow {
  id: number | string;
  type: string;
  at: number | string;
  job_id: number | string | null;
  run_id: number | string | null;
  status: string | null;
  worker_id: string | null;
  reason: string | null;
  count: number | string | null;
  first_fire: number | string | null;
  last_fire: number | string | null;
  job_name: string | null;
  job_group: string | null;
  job_namespace: string | null;
  worker_name: string | null;
  worker_namespace: string | null;
  worker_group: string | null;
  error: string | JsonObject | null;
}

/** An outbox row as the engine reads it. */
export function eventFromRow(row: EventRow): StoredAlertEvent {
  const id = Number(row.id);
  const at = Number(row.at);
  if (row.type === 'worker-lost' || row.type === 'worker-back') {
    return {
      id,
      type: row.type,
      at,
      namespace: row.worker_namespace ?? '',
      workerId: row.worker_id ?? '',
      worker: row.worker_name ?? row.worker_id ?? '',
      group: row.worker_group ?? '',
    };
  }
  if (row.job_name === null || row.job_group === null || row.job_namespace === null)
    return { id, type: 'gone', at };
  if (row.type === 'fire-skipped') {
    return {
      id,
      type: 'fire-skipped',
      at,
      namespace: row.job_namespace,
      job: row.job_name,
      group: row.job_group,
      reason: row.reason ?? '',
      count: row.count === null ? null : Number(row.count),
      firstFire: Number(row.first_fire),
      lastFire: Number(row.last_fire),
    };
  }
  const error = typeof row.error === 'string' ? (JSON.parse(row.error) as JsonObject) : row.error;
  return {
    id,
    type: 'run-ended',
    at,
    namespace: row.job_namespace,
    job: row.job_name,
    group: row.job_group,
    runId: Number(row.run_id),
    status: row.status as 'succeeded',
    error: error && typeof error.message === 'string' ? error.message : null,
  };
}

export interface JobFactsRow {
  namespace: string;
  name: string;
  group_name: string;
  handler: string;
  paused: boolean | number;
  created_at: number | string;
  last_success_at: number | string | null;
  oldest_queued_at: number | string | null;
  queued: number | string;
  fire_time: number | string | null;
  started_at: number | string | null;
  resources?: string | null;
  oldest_group?: string | null;
  oldest_handler?: string | null;
  oldest_resources?: string | null;
}

export function jobFactsFromRow(row: JobFactsRow): AlertJobFacts {
  const n = (v: number | string | null) => (v === null ? null : Number(v));
  const fireTime = n(row.fire_time);
  return {
    namespace: row.namespace,
    name: row.name,
    group: row.group_name,
    handler: row.handler,
    paused: Boolean(row.paused),
    createdAt: Number(row.created_at),
    lastSuccessAt: n(row.last_success_at),
    oldestQueuedAt: n(row.oldest_queued_at),
    queued: Number(row.queued),
    lastFire: fireTime === null ? null : { fireTime, startedAt: n(row.started_at) },
    resources: row.resources ? (JSON.parse(row.resources) as Resources | null) : null,
    oldestQueued:
      row.oldest_group === null || row.oldest_group === undefined
        ? null
        : {
            group: row.oldest_group,
            handler: row.oldest_handler ?? row.handler,
            resources: row.oldest_resources ? (JSON.parse(row.oldest_resources) as Resources | null) : null,
          },
  };
}
