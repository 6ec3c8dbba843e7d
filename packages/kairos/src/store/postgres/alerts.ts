import type pg from 'pg';
import type { AlertStateRecord } from '../../core/alert-engine.ts';
import type { AlertRuleDefinition } from '../../core/alert-rule.ts';
import { KairosError, StoreUnavailableError } from '../../errors.ts';
import {
  type AlertCommit,
  type AlertRuleRow,
  type AlertStore,
  type ChannelDefinition,
  type ChannelRow,
  channelFromRow,
  type DeliveryOutcome,
  type DeliveryRecord,
  type DeliveryRow,
  deliveryFromRow,
  type EventRow,
  eventFromRow,
  type JobFactsRow,
  jobFactsFromRow,
  type NewDelivery,
  ruleDefinitionColumn,
  ruleFromRow,
  type SilenceRecord,
  type SilenceRow,
  type StateRow,
  silenceFromRow,
  stateFromRow,
} from '../alerts.ts';
import { DEFAULT_NAMESPACE, nameTakenElsewhere } from '../namespaces.ts';
import { type Lease, LeaseLostError } from '../store.ts';
import { LOCK_LEASES } from './cluster.ts';
import type { PostgresConnection } from './connection.ts';

type Db = pg.Pool | pg.PoolClient;

const RULE_COLUMNS = 'id, namespace, name, kind, enabled, definition, created_at, updated_at';
const CHANNEL_COLUMNS = 'id, namespace, name, type, config, secrets, created_at, updated_at';
const DELIVERY_COLUMNS = `id, namespace, event_id, rule_name, channel_name, subject, state, title, body, details, status,
  attempts, last_error, created_at, sent_at, next_attempt_at`;

/** Outbox rows, oldest first, with the names of their job or worker. $1 limit. */
const PENDING_EVENTS = `
  SELECT e.*, j.name AS job_name, j.group_name AS job_group, j.namespace AS job_namespace,
    w.name AS worker_name, w.group_name AS worker_group, w.namespace AS worker_namespace, r.error AS error
  FROM alert_events e
  LEFT JOIN jobs j ON j.id = e.job_id
  LEFT JOIN runs r ON r.id = e.run_id
  LEFT JOIN workers w ON w.id = e.worker_id
  ORDER BY e.id LIMIT $1`;

/**
 * Per job of a scope: the last success (walking runs_job back from the newest run, which stops at
 * once for a healthy job), the queued runs (runs_active) with the oldest one's group, handler and
 * request (its own, a workflow step's, else the job's), and the latest fire due by now (runs_fire).
 * $1 now, $2 job, $3 group, $4 namespace (null: any).
 */
const JOB_FACTS = `
  SELECT j.namespace, j.name, j.group_name, j.handler, j.paused, j.created_at, j.dispatch->'resources' AS resources,
    (SELECT r.finished_at FROM runs r WHERE r.job_id = j.id AND r.status = 'succeeded'
      ORDER BY r.id DESC LIMIT 1) AS last_success_at,
    o.available_at AS oldest_queued_at, o.group_name AS oldest_group, o.handler AS oldest_handler,
    coalesce(o.resources, j.dispatch->'resources') AS oldest_resources,
    (SELECT count(*) FROM runs r WHERE r.job_id = j.id AND r.status = 'queued') AS queued,
    f.fire_time, f.started_at
  FROM jobs j
  LEFT JOIN LATERAL (SELECT r.available_at, r.group_name, r.handler, r.resources FROM runs r
      WHERE r.job_id = j.id AND r.status = 'queued' ORDER BY r.available_at, r.id LIMIT 1) o ON true
  LEFT JOIN LATERAL (SELECT r.fire_time, r.started_at FROM runs r WHERE r.job_id = j.id
      AND r.fire_time IS NOT NULL AND r.fire_time <= $1::bigint ORDER BY r.fire_time DESC LIMIT 1) f ON true
  WHERE ($2::text IS NULL OR j.name = $2::text) AND ($3::text IS NULL OR j.group_name = $3::text)
    AND ($4::text IS NULL OR j.namespace = $4::text)`;

const INSERT_DELIVERIES = `
  INSERT INTO alert_deliveries (namespace, event_id, rule_name, channel_name, subject, state, title, body, details,
    status, created_at, next_attempt_at, attempts, sent_at, last_error)
  SELECT d.namespace, d.event_id, d.rule_name, d.channel_name, d.subject, d.state, d.title, d.body, d.details, d.status,
    $2::bigint, CASE WHEN d.status = 'pending' THEN $2::bigint END,
    CASE WHEN d.status IN ('sent', 'failed') THEN 1 ELSE 0 END,
    CASE WHEN d.status = 'sent' THEN $2::bigint END, d.error
  FROM jsonb_to_recordset($1::jsonb) AS d(namespace text, event_id text, rule_name text, channel_name text, subject text,
    state text, title text, body text, details jsonb, status text, error text)
  RETURNING ${DELIVERY_COLUMNS}`;

/**
 * The outbox triggers and the rule kinds that need each. A trigger stays disabled while no enabled
 * rule of its kinds exists: a plpgsql trigger costs 5–8 µs per run end even when it writes
 * nothing (EXPLAIN ANALYZE of 10,000 run ends: 52–82 ms in `runs_alert_ended`), which a node
 * without alert rules should not pay. SQLite's trigger checks the rules in its WHEN clause instead,
 * at no measurable cost.
 */
const OUTBOX_TRIGGERS = [
  { table: 'runs', name: 'runs_alert_ended', kinds: ['run-failed', 'run-timed-out', 'consecutive-failures'] },
  { table: 'skipped_fires', name: 'skipped_fires_alert_insert', kinds: ['fire-skipped'] },
  { table: 'skipped_fires', name: 'skipped_fires_alert_extend', kinds: ['fire-skipped'] },
  { table: 'workers', name: 'workers_alert', kinds: ['worker-lost'] },
] as const;

/**
 * Serializes changes of rules (a self-conflicting lock; reads go on), so that each change sees the
 * others committed when it turns the outbox triggers on or off.
 */
async function lockRules(client: pg.PoolClient): Promise<void> {
  await client.query('LOCK TABLE alert_rules IN SHARE ROW EXCLUSIVE MODE');
}

/** Turns each outbox trigger on while an enabled rule of its kinds exists, off otherwise, in the rule change's transaction. */
async function syncOutboxTriggers(client: pg.PoolClient): Promise<void> {
  const { rows: kinds } = await client.query<{ kind: string }>(
    'SELECT DISTINCT kind FROM alert_rules WHERE enabled',
  );
  const wanted = new Set(kinds.map((row) => row.kind));
  const { rows: triggers } = await client.query<{ name: string; enabled: boolean }>(
    `SELECT t.tgname AS name, t.tgenabled <> 'D' AS enabled FROM pg_trigger t
     JOIN pg_class c ON c.oid = t.tgrelid
     WHERE c.relnamespace = current_schema()::regnamespace AND t.tgname = ANY($1::text[])`,
    [OUTBOX_TRIGGERS.map((t) => t.name)],
  );
  const enabled = new Map(triggers.map((t) => [t.name, t.enabled]));
  for (const trigger of OUTBOX_TRIGGERS) {
    const on = trigger.kinds.some((kind) => wanted.has(kind));
    // Only a change takes the table's lock. It waits for the writes in flight on that table, and
    // writers queue behind it meanwhile: at most 2 s, then the rule change fails and can be retried.
    if (enabled.get(trigger.name) === on) continue;
    await client.query(`SET LOCAL lock_timeout = '2s'`);
    try {
      await client.query(`ALTER TABLE ${trigger.table} ${on ? 'ENABLE' : 'DISABLE'} TRIGGER ${trigger.name}`);
    } catch (error) {
      // lock_not_available: busy, not broken; the API answers 503 with Retry-After.
      if ((error as { code?: string }).code === '55P03')
        throw new StoreUnavailableError('alert rules', error);
      throw error;
    }
  }
}

/** Alerts on PostgreSQL. */
export class PostgresAlerts implements AlertStore {
  constructor(private readonly c: PostgresConnection) {}

  async putRule(rule: AlertRuleDefinition, now: number, create: boolean, namespace = DEFAULT_NAMESPACE) {
    return this.c.transaction('putRule', async (client) => {
      await lockRules(client);
      await checkChannels(client, rule.channels, namespace);
      const { rows: existing } = await client.query<{ namespace: string }>(
        'SELECT namespace FROM alert_rules WHERE name = $1 FOR UPDATE',
        [rule.name],
      );
      if (existing[0] && existing[0].namespace !== namespace)
        throw nameTakenElsewhere('alert rule', rule.name);
      if (existing.length > 0 && create)
        throw new KairosError(
          'ALERT_RULE_NAME_TAKEN',
          `an alert rule named ${JSON.stringify(rule.name)} exists`,
        );
      const { rows } = await client.query<AlertRuleRow>(
        `INSERT INTO alert_rules (name, kind, enabled, definition, created_at, updated_at, namespace)
         VALUES ($1, $2, $3, $4, $5, $5, $6)
         ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, enabled = excluded.enabled,
           definition = excluded.definition, updated_at = excluded.updated_at
         RETURNING ${RULE_COLUMNS}`,
        [rule.name, rule.kind, rule.enabled, ruleDefinitionColumn(rule), now, namespace],
      );
      const row = rows[0]!;
      // A replaced rule starts over: its states judged the old condition.
      if (existing.length > 0) await client.query('DELETE FROM alert_states WHERE rule_id = $1', [row.id]);
      await syncOutboxTriggers(client);
      return { rule: ruleFromRow(row), created: existing.length === 0 };
    });
  }

  async listRules(namespace?: string) {
    const rows = await this.c.query<AlertRuleRow>(
      'listRules',
      `SELECT ${RULE_COLUMNS} FROM alert_rules WHERE ($1::text IS NULL OR namespace = $1) ORDER BY name`,
      [namespace ?? null],
    );
    return rows.map(ruleFromRow);
  }

  async getRule(name: string) {
    const [row] = await this.c.query<AlertRuleRow>(
      'getRule',
      `SELECT ${RULE_COLUMNS} FROM alert_rules WHERE name = $1`,
      [name],
    );
    return row ? ruleFromRow(row) : null;
  }

  async deleteRule(name: string) {
    const rows = await this.c.query('deleteRule', 'DELETE FROM alert_rules WHERE name = $1 RETURNING id', [
      name,
    ]);
    return rows.length > 0;
  }

  async putChannel(channel: ChannelDefinition, now: number, create: boolean, namespace = DEFAULT_NAMESPACE) {
    return this.c.transaction('putChannel', async (client) => {
      const { rows: existing } = await client.query<{ namespace: string }>(
        'SELECT namespace FROM alert_channels WHERE name = $1 FOR UPDATE',
        [channel.name],
      );
      if (existing[0] && existing[0].namespace !== namespace)
        throw nameTakenElsewhere('alert channel', channel.name);
      if (existing.length > 0 && create)
        throw new KairosError(
          'CHANNEL_NAME_TAKEN',
          `an alert channel named ${JSON.stringify(channel.name)} exists`,
        );
      const { rows } = await client.query<ChannelRow>(
        `INSERT INTO alert_channels (name, type, config, secrets, created_at, updated_at, namespace)
         VALUES ($1, $2, $3, $4, $5, $5, $6)
         ON CONFLICT (name) DO UPDATE SET type = excluded.type, config = excluded.config,
           secrets = excluded.secrets, updated_at = excluded.updated_at
         RETURNING ${CHANNEL_COLUMNS}`,
        [
          channel.name,
          channel.type,
          JSON.stringify(channel.config),
          JSON.stringify(channel.secrets),
          now,
          namespace,
        ],
      );
      return { channel: channelFromRow(rows[0]!), created: existing.length === 0 };
    });
  }

  async listChannels(namespace?: string) {
    const rows = await this.c.query<ChannelRow>(
      'listChannels',
      `SELECT ${CHANNEL_COLUMNS} FROM alert_channels WHERE ($1::text IS NULL OR namespace = $1) ORDER BY name`,
      [namespace ?? null],
    );
    return rows.map(channelFromRow);
  }

  async getChannel(name: string) {
    const [row] = await this.c.query<ChannelRow>(
      'getChannel',
      `SELECT ${CHANNEL_COLUMNS} FROM alert_channels WHERE name = $1`,
      [name],
    );
    return row ? channelFromRow(row) : null;
  }

  async deleteChannel(name: string) {
    return this.c.transaction('deleteChannel', async (client) => {
      // Locks the channel first, so that a rule naming it cannot commit between the check and the delete.
      const { rows: channel } = await client.query(
        'SELECT id FROM alert_channels WHERE name = $1 FOR UPDATE',
        [name],
      );
      if (channel.length === 0) return false;
      const { rows } = await client.query<AlertRuleRow>(`SELECT ${RULE_COLUMNS} FROM alert_rules`);
      const users = rows
        .map(ruleFromRow)
        .filter((rule) => rule.channels.includes(name))
        .map((rule) => rule.name);
      if (users.length > 0)
        throw new KairosError(
          'CHANNEL_IN_USE',
          `alert channel ${JSON.stringify(name)} is named by rules ${users.join(', ')}`,
          { rules: users },
        );
      await client.query('DELETE FROM alert_channels WHERE name = $1', [name]);
      return true;
    });
  }

  async createSilence(silence: Omit<SilenceRecord, 'id'>) {
    return this.c.transaction('createSilence', async (client) => {
      let ruleId: string | null = null;
      if (silence.rule !== null) {
        const { rows } = await client.query<{ id: string }>(
          'SELECT id FROM alert_rules WHERE name = $1 AND namespace = $2 FOR SHARE',
          [silence.rule, silence.namespace],
        );
        if (!rows[0])
          throw new KairosError(
            'ALERT_RULE_NOT_FOUND',
            `no alert rule named ${JSON.stringify(silence.rule)}`,
          );
        ruleId = rows[0].id;
      }
      const { rows } = await client.query<{ id: string }>(
        `INSERT INTO alert_silences (rule_id, starts_at, ends_at, comment, created_by, created_at, namespace)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
        [
          ruleId,
          silence.startsAt,
          silence.endsAt,
          silence.comment,
          silence.createdBy,
          silence.createdAt,
          silence.namespace,
        ],
      );
      return { ...silence, id: Number(rows[0]!.id) };
    });
  }

  async listSilences(now: number, namespace?: string) {
    const rows = await this.c.query<SilenceRow>(
      'listSilences',
      `SELECT s.id, s.namespace, r.name AS rule, s.starts_at, s.ends_at, s.comment, s.created_by, s.created_at
       FROM alert_silences s LEFT JOIN alert_rules r ON r.id = s.rule_id
       WHERE s.ends_at > $1 AND ($2::text IS NULL OR s.namespace = $2::text) ORDER BY s.ends_at, s.id`,
      [now, namespace ?? null],
    );
    return rows.map(silenceFromRow);
  }

  async deleteSilence(id: number, namespace?: string) {
    const rows = await this.c.query(
      'deleteSilence',
      'DELETE FROM alert_silences WHERE id = $1 AND ($2::text IS NULL OR namespace = $2::text) RETURNING id',
      [id, namespace ?? null],
    );
    return rows.length > 0;
  }

  async pendingEvents(limit: number) {
    const rows = await this.c.query<EventRow>('pendingEvents', PENDING_EVENTS, [limit]);
    return rows.map(eventFromRow);
  }

  async failuresInRow(runId: number, max: number) {
    const rows = await this.c.query<{ status: string }>(
      'failuresInRow',
      `SELECT status FROM runs WHERE job_id = (SELECT job_id FROM runs WHERE id = $1) AND id <= $1
         AND status IN ('succeeded', 'failed', 'timed_out')
       ORDER BY id DESC LIMIT $2`,
      [runId, max],
    );
    const success = rows.findIndex((row) => row.status === 'succeeded');
    return success === -1 ? rows.length : success;
  }

  async firingAlerts(namespace?: string) {
    const rows = await this.c.query<StateRow>(
      'firingAlerts',
      `SELECT * FROM alert_states WHERE status = 'firing'
         AND ($1::text IS NULL OR rule_id IN (SELECT id FROM alert_rules WHERE namespace = $1::text))`,
      [namespace ?? null],
    );
    return rows.map(stateFromRow);
  }

  async jobFacts(
    scope: { namespace: string; job?: string | undefined; group?: string | undefined } | null,
    now: number,
  ) {
    const rows = await this.c.query<JobFactsRow>('jobFacts', JOB_FACTS, [
      now,
      scope?.job ?? null,
      scope?.group ?? null,
      scope?.namespace ?? null,
    ]);
    return rows.map(jobFactsFromRow);
  }

  async commitAlerts(lease: Lease, commit: AlertCommit, now: number) {
    await this.c.transaction('commitAlerts', async (client) => {
      // FOR SHARE: a take-over of the lease waits for this commit, so no two evaluators commit at once.
      const { rows: held } = await client.query(LOCK_LEASES, [
        JSON.stringify([{ name: lease.name, owner: lease.owner, epoch: lease.epoch }]),
        now,
      ]);
      if (held.length === 0)
        throw new LeaseLostError(`lease ${lease.name} epoch ${lease.epoch} is no longer held`);
      if (commit.consumed.length > 0) {
        const { rowCount } = await client.query('DELETE FROM alert_events WHERE id = ANY($1::bigint[])', [
          commit.consumed,
        ]);
        if (rowCount !== commit.consumed.length)
          throw new LeaseLostError('alert events were decided already');
      }
      await writeStates(client, commit.states);
      await insertDeliveries(client, commit.deliveries, now);
    });
  }

  async addDeliveries(deliveries: readonly NewDelivery[], now: number) {
    return this.c.transaction('addDeliveries', (client) => insertDeliveries(client, deliveries, now));
  }

  async dueDeliveries(now: number, limit: number) {
    const rows = await this.c.query<DeliveryRow>(
      'dueDeliveries',
      `SELECT ${DELIVERY_COLUMNS} FROM alert_deliveries
       WHERE status = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2`,
      [now, limit],
    );
    return rows.map(deliveryFromRow);
  }

  async recordDelivery(id: number, outcome: DeliveryOutcome, now: number) {
    const rows = outcome.sent
      ? await this.c.query<DeliveryRow>(
          'recordDelivery',
          `UPDATE alert_deliveries SET status = 'sent', attempts = attempts + 1, sent_at = $1,
             next_attempt_at = NULL, last_error = NULL
           WHERE id = $2 AND status = 'pending' RETURNING ${DELIVERY_COLUMNS}`,
          [now, id],
        )
      : await this.c.query<DeliveryRow>(
          'recordDeliveryFailure',
          `UPDATE alert_deliveries SET status = $1, attempts = attempts + 1, last_error = $2, next_attempt_at = $3
           WHERE id = $4 AND status = 'pending' RETURNING ${DELIVERY_COLUMNS}`,
          [outcome.retryAt === null ? 'failed' : 'pending', outcome.error, outcome.retryAt, id],
        );
    return rows[0] ? deliveryFromRow(rows[0]) : null;
  }

  async listDeliveries(filter: {
    namespace?: string | undefined;
    channel?: string | undefined;
    rule?: string | undefined;
    status?: string | undefined;
    before?: number | undefined;
    limit: number;
  }) {
    const rows = await this.c.query<DeliveryRow>(
      'listDeliveries',
      `SELECT ${DELIVERY_COLUMNS} FROM alert_deliveries
       WHERE ($1::text IS NULL OR channel_name = $1::text) AND ($2::text IS NULL OR rule_name = $2::text)
         AND ($3::text IS NULL OR status = $3::text) AND ($4::bigint IS NULL OR id < $4::bigint)
         AND ($6::text IS NULL OR namespace = $6::text)
       ORDER BY id DESC LIMIT $5`,
      [
        filter.channel ?? null,
        filter.rule ?? null,
        filter.status ?? null,
        filter.before ?? null,
        filter.limit,
        filter.namespace ?? null,
      ],
    );
    return rows.map(deliveryFromRow);
  }

  async pruneDeliveries(before: number, limit: number) {
    const rows = await this.c.query(
      'pruneDeliveries',
      `DELETE FROM alert_deliveries WHERE id IN (SELECT id FROM alert_deliveries
         WHERE created_at < $1 AND status <> 'pending' ORDER BY created_at LIMIT $2) RETURNING id`,
      [before, limit],
    );
    return rows.length;
  }
}

async function checkChannels(
  client: pg.PoolClient,
  names: readonly string[],
  namespace: string,
): Promise<void> {
  // FOR SHARE: a channel cannot be deleted while a rule that names it commits.
  const { rows } = await client.query<{ name: string }>(
    'SELECT name FROM alert_channels WHERE name = ANY($1::text[]) AND namespace = $2 FOR SHARE',
    [names, namespace],
  );
  const found = new Set(rows.map((row) => row.name));
  const missing = names.find((name) => !found.has(name));
  if (missing !== undefined)
    throw new KairosError('CHANNEL_NOT_FOUND', `no alert channel named ${JSON.stringify(missing)}`, {
      field: 'channels',
    });
}

async function writeStates(db: Db, states: readonly AlertStateRecord[]): Promise<void> {
  if (states.length === 0) return;
  await db.query(
    `INSERT INTO alert_states (rule_id, subject, status, fired_at, notified_at, count)
     SELECT s.rule_id, s.subject, s.status, s.fired_at, s.notified_at, s.count
     FROM jsonb_to_recordset($1::jsonb) AS s(rule_id bigint, subject text, status text, fired_at bigint,
       notified_at bigint, count bigint)
     -- A rule deleted since the evaluation read it leaves nothing behind.
     WHERE EXISTS (SELECT 1 FROM alert_rules r WHERE r.id = s.rule_id)
     ON CONFLICT (rule_id, subject) DO UPDATE SET status = excluded.status, fired_at = excluded.fired_at,
       notified_at = excluded.notified_at, count = excluded.count`,
    [
      JSON.stringify(
        states.map((s) => ({
          rule_id: s.ruleId,
          subject: s.subject,
          status: s.status,
          fired_at: s.firedAt,
          notified_at: s.notifiedAt,
          count: s.count,
        })),
      ),
    ],
  );
}

async function insertDeliveries(
  db: Db,
  deliveries: readonly NewDelivery[],
  now: number,
): Promise<DeliveryRecord[]> {
  if (deliveries.length === 0) return [];
  const { rows } = await db.query<DeliveryRow>(INSERT_DELIVERIES, [
    JSON.stringify(
      deliveries.map((d) => ({
        namespace: d.namespace,
        event_id: d.eventId,
        rule_name: d.rule,
        channel_name: d.channel,
        subject: d.subject,
        state: d.state,
        title: d.title,
        body: d.text,
        details: d.details,
        status: d.status,
        error: d.error ?? null,
      })),
    ),
    now,
  ]);
  return rows.map(deliveryFromRow);
}
