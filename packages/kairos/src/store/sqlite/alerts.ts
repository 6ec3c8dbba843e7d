import type { AlertStateRecord } from '../../core/alert-engine.ts';
import type { AlertRuleDefinition } from '../../core/alert-rule.ts';
import { KairosError } from '../../errors.ts';
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
import type { SqliteConnection } from './connection.ts';

const RULE_COLUMNS = 'id, namespace, name, kind, enabled, definition, created_at, updated_at';
const CHANNEL_COLUMNS = 'id, namespace, name, type, config, secrets, created_at, updated_at';
const DELIVERY_COLUMNS = `id, namespace, event_id, rule_name, channel_name, subject, state, title, body, details, status,
  attempts, last_error, created_at, sent_at, next_attempt_at`;

/** Outbox rows, oldest first, with the names of their job or worker. ? limit. */
const PENDING_EVENTS = `
  SELECT e.*, j.name AS job_name, j.group_name AS job_group, j.namespace AS job_namespace,
    w.name AS worker_name, w.group_name AS worker_group, w.namespace AS worker_namespace, r.error AS error
  FROM alert_events e
  LEFT JOIN jobs j ON j.id = e.job_id
  LEFT JOIN runs r ON r.id = e.run_id
  LEFT JOIN workers w ON w.id = e.worker_id
  ORDER BY e.id LIMIT ?`;

/**
 * Per job of a scope: the last success (walking runs_job back from the newest run, which stops at
 * once for a healthy job), the queued runs (runs_active) with the oldest one's group, handler and
 * request (its own, a workflow step's, else the job's), and the latest fire due by now (runs_fire).
 * @now, @namespace, @job, @group (null: any).
 */
const JOB_FACTS = `
  SELECT j.namespace, j.name, j.group_name, j.handler, j.paused, j.created_at, j.dispatch -> '$.resources' AS resources,
    (SELECT r.finished_at FROM runs r WHERE r.job_id = j.id AND r.status = 'succeeded'
      ORDER BY r.id DESC LIMIT 1) AS last_success_at,
    o.available_at AS oldest_queued_at, o.group_name AS oldest_group, o.handler AS oldest_handler,
    coalesce(o.resources, j.dispatch -> '$.resources') AS oldest_resources,
    (SELECT count(*) FROM runs r WHERE r.job_id = j.id AND r.status = 'queued') AS queued,
    f.fire_time, f.started_at
  FROM jobs j
  LEFT JOIN runs o ON o.id = (SELECT r.id FROM runs r WHERE r.job_id = j.id AND r.status = 'queued'
      ORDER BY r.available_at, r.id LIMIT 1)
  LEFT JOIN runs f ON f.id = (SELECT r.id FROM runs r WHERE r.job_id = j.id AND r.fire_time IS NOT NULL
      AND r.fire_time <= @now ORDER BY r.fire_time DESC LIMIT 1)
  WHERE (@namespace IS NULL OR j.namespace = @namespace) AND (@job IS NULL OR j.name = @job)
    AND (@group IS NULL OR j.group_name = @group)`;

/** Alerts on the embedded store: every operation one IMMEDIATE transaction of the one writer. */
export class SqliteAlerts implements AlertStore {
  constructor(private readonly c: SqliteConnection) {}

  async putRule(rule: AlertRuleDefinition, now: number, create: boolean, namespace = DEFAULT_NAMESPACE) {
    return this.c.run('putRule', () =>
      this.c.db
        .transaction(() => {
          this.checkChannels(rule.channels, namespace);
          const existing = this.c.sql('SELECT namespace FROM alert_rules WHERE name = ?').get(rule.name) as
            | { namespace: string }
            | undefined;
          if (existing && existing.namespace !== namespace) throw nameTakenElsewhere('alert rule', rule.name);
          if (existing && create)
            throw new KairosError(
              'ALERT_RULE_NAME_TAKEN',
              `an alert rule named ${JSON.stringify(rule.name)} exists`,
            );
          const row = this.c
            .sql(
              `INSERT INTO alert_rules (name, kind, enabled, definition, created_at, updated_at, namespace)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, enabled = excluded.enabled,
                 definition = excluded.definition, updated_at = excluded.updated_at
               RETURNING ${RULE_COLUMNS}`,
            )
            .get(
              rule.name,
              rule.kind,
              rule.enabled ? 1 : 0,
              ruleDefinitionColumn(rule),
              now,
              now,
              namespace,
            ) as AlertRuleRow;
          // A replaced rule starts over: its states judged the old condition.
          if (existing) this.c.sql('DELETE FROM alert_states WHERE rule_id = ?').run(row.id);
          return { rule: ruleFromRow(row), created: !existing };
        })
        .immediate(),
    );
  }

  private checkChannels(names: readonly string[], namespace: string): void {
    const found = this.c.sql('SELECT 1 FROM alert_channels WHERE name = ? AND namespace = ?');
    for (const name of names) {
      if (!found.get(name, namespace))
        throw new KairosError('CHANNEL_NOT_FOUND', `no alert channel named ${JSON.stringify(name)}`, {
          field: 'channels',
        });
    }
  }

  async listRules(namespace?: string) {
    return this.c.run('listRules', () =>
      (
        this.c
          .sql(`SELECT ${RULE_COLUMNS} FROM alert_rules WHERE (? IS NULL OR namespace = ?) ORDER BY name`)
          .all(namespace ?? null, namespace ?? null) as AlertRuleRow[]
      ).map(ruleFromRow),
    );
  }

  async getRule(name: string) {
    return this.c.run('getRule', () => {
      const row = this.c.sql(`SELECT ${RULE_COLUMNS} FROM alert_rules WHERE name = ?`).get(name) as
        | AlertRuleRow
        | undefined;
      return row ? ruleFromRow(row) : null;
    });
  }

  async deleteRule(name: string) {
    return this.c.run(
      'deleteRule',
      () => this.c.sql('DELETE FROM alert_rules WHERE name = ?').run(name).changes > 0,
    );
  }

  async putChannel(channel: ChannelDefinition, now: number, create: boolean, namespace = DEFAULT_NAMESPACE) {
    return this.c.run('putChannel', () =>
      this.c.db
        .transaction(() => {
          const existing = this.c
            .sql('SELECT namespace FROM alert_channels WHERE name = ?')
            .get(channel.name) as { namespace: string } | undefined;
          if (existing && existing.namespace !== namespace)
            throw nameTakenElsewhere('alert channel', channel.name);
          if (existing && create)
            throw new KairosError(
              'CHANNEL_NAME_TAKEN',
              `an alert channel named ${JSON.stringify(channel.name)} exists`,
            );
          const row = this.c
            .sql(
              `INSERT INTO alert_channels (name, type, config, secrets, created_at, updated_at, namespace)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET type = excluded.type, config = excluded.config,
                 secrets = excluded.secrets, updated_at = excluded.updated_at
               RETURNING ${CHANNEL_COLUMNS}`,
            )
            .get(
              channel.name,
              channel.type,
              JSON.stringify(channel.config),
              JSON.stringify(channel.secrets),
              now,
              now,
              namespace,
            ) as ChannelRow;
          return { channel: channelFromRow(row), created: !existing };
        })
        .immediate(),
    );
  }

  async listChannels(namespace?: string) {
    return this.c.run('listChannels', () =>
      (
        this.c
          .sql(
            `SELECT ${CHANNEL_COLUMNS} FROM alert_channels WHERE (? IS NULL OR namespace = ?) ORDER BY name`,
          )
          .all(namespace ?? null, namespace ?? null) as ChannelRow[]
      ).map(channelFromRow),
    );
  }

  async getChannel(name: string) {
    return this.c.run('getChannel', () => {
      const row = this.c.sql(`SELECT ${CHANNEL_COLUMNS} FROM alert_channels WHERE name = ?`).get(name) as
        | ChannelRow
        | undefined;
      return row ? channelFromRow(row) : null;
    });
  }

  async deleteChannel(name: string) {
    return this.c.run('deleteChannel', () =>
      this.c.db
        .transaction(() => {
          const users = (this.c.sql(`SELECT ${RULE_COLUMNS} FROM alert_rules`).all() as AlertRuleRow[])
            .map(ruleFromRow)
            .filter((rule) => rule.channels.includes(name))
            .map((rule) => rule.name);
          if (users.length > 0)
            throw new KairosError(
              'CHANNEL_IN_USE',
              `alert channel ${JSON.stringify(name)} is named by rules ${users.join(', ')}`,
              { rules: users },
            );
          return this.c.sql('DELETE FROM alert_channels WHERE name = ?').run(name).changes > 0;
        })
        .immediate(),
    );
  }

  async createSilence(silence: Omit<SilenceRecord, 'id'>) {
    return this.c.run('createSilence', () =>
      this.c.db
        .transaction(() => {
          let ruleId: number | null = null;
          if (silence.rule !== null) {
            const rule = this.c
              .sql('SELECT id FROM alert_rules WHERE name = ? AND namespace = ?')
              .get(silence.rule, silence.namespace) as { id: number } | undefined;
            if (!rule)
              throw new KairosError(
                'ALERT_RULE_NOT_FOUND',
                `no alert rule named ${JSON.stringify(silence.rule)}`,
              );
            ruleId = rule.id;
          }
          const { id } = this.c
            .sql(
              `INSERT INTO alert_silences (rule_id, starts_at, ends_at, comment, created_by, created_at, namespace)
               VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
            )
            .get(
              ruleId,
              silence.startsAt,
              silence.endsAt,
              silence.comment,
              silence.createdBy,
              silence.createdAt,
              silence.namespace,
            ) as {
            id: number;
          };
          return { ...silence, id };
        })
        .immediate(),
    );
  }

  async listSilences(now: number, namespace?: string) {
    return this.c.run('listSilences', () =>
      (
        this.c
          .sql(
            `SELECT s.id, s.namespace, r.name AS rule, s.starts_at, s.ends_at, s.comment, s.created_by, s.created_at
             FROM alert_silences s LEFT JOIN alert_rules r ON r.id = s.rule_id
             WHERE s.ends_at > ? AND (? IS NULL OR s.namespace = ?) ORDER BY s.ends_at, s.id`,
          )
          .all(now, namespace ?? null, namespace ?? null) as SilenceRow[]
      ).map(silenceFromRow),
    );
  }

  async deleteSilence(id: number, namespace?: string) {
    return this.c.run(
      'deleteSilence',
      () =>
        this.c
          .sql('DELETE FROM alert_silences WHERE id = ? AND (? IS NULL OR namespace = ?)')
          .run(id, namespace ?? null, namespace ?? null).changes > 0,
    );
  }

  async pendingEvents(limit: number) {
    return this.c.run('pendingEvents', () => {
      const rows = this.c.sql(PENDING_EVENTS).all(limit) as EventRow[];
      return rows.map(eventFromRow);
    });
  }

  async failuresInRow(runId: number, max: number) {
    return this.c.run('failuresInRow', () => {
      const rows = this.c
        .sql(
          `SELECT status FROM runs WHERE job_id = (SELECT job_id FROM runs WHERE id = ?) AND id <= ?
             AND status IN ('succeeded', 'failed', 'timed_out')
           ORDER BY id DESC LIMIT ?`,
        )
        .all(runId, runId, max) as Array<{ status: string }>;
      const success = rows.findIndex((row) => row.status === 'succeeded');
      return success === -1 ? rows.length : success;
    });
  }

  async firingAlerts(namespace?: string) {
    return this.c.run('firingAlerts', () =>
      (
        this.c
          .sql(
            `SELECT * FROM alert_states WHERE status = 'firing'
               AND (? IS NULL OR rule_id IN (SELECT id FROM alert_rules WHERE namespace = ?))`,
          )
          .all(namespace ?? null, namespace ?? null) as StateRow[]
      ).map(stateFromRow),
    );
  }

  async jobFacts(
    scope: { namespace: string; job?: string | undefined; group?: string | undefined } | null,
    now: number,
  ) {
    return this.c.run('jobFacts', () =>
      (
        this.c.sql(JOB_FACTS).all({
          now,
          namespace: scope?.namespace ?? null,
          job: scope?.job ?? null,
          group: scope?.group ?? null,
        }) as JobFactsRow[]
      ).map(jobFactsFromRow),
    );
  }

  async commitAlerts(lease: Lease, commit: AlertCommit, now: number) {
    this.c.run('commitAlerts', () =>
      this.c.db
        .transaction(() => {
          const held = this.c
            .sql('SELECT 1 FROM leases WHERE name = ? AND owner = ? AND epoch = ? AND expires_at > ?')
            .get(lease.name, lease.owner, lease.epoch, now);
          if (!held) throw new LeaseLostError(`lease ${lease.name} epoch ${lease.epoch} is no longer held`);
          const consume = this.c.sql('DELETE FROM alert_events WHERE id = ?');
          for (const id of commit.consumed) {
            if (consume.run(id).changes === 0)
              throw new LeaseLostError(`alert event ${id} was decided already`);
          }
          this.writeStates(commit.states);
          this.insertDeliveries(commit.deliveries, now);
        })
        .immediate(),
    );
  }

  private writeStates(states: readonly AlertStateRecord[]): void {
    const upsert = this.c.sql(
      `INSERT INTO alert_states (rule_id, subject, status, fired_at, notified_at, count)
       SELECT @rule, @subject, @status, @fired, @notified, @count WHERE EXISTS (SELECT 1 FROM alert_rules WHERE id = @rule)
       ON CONFLICT (rule_id, subject) DO UPDATE SET status = excluded.status, fired_at = excluded.fired_at,
         notified_at = excluded.notified_at, count = excluded.count`,
    );
    for (const s of states)
      upsert.run({
        rule: s.ruleId,
        subject: s.subject,
        status: s.status,
        fired: s.firedAt,
        notified: s.notifiedAt,
        count: s.count,
      });
  }

  private insertDeliveries(deliveries: readonly NewDelivery[], now: number): DeliveryRecord[] {
    const insert = this.c.sql(
      `INSERT INTO alert_deliveries (namespace, event_id, rule_name, channel_name, subject, state, title, body, details,
         status, created_at, next_attempt_at, attempts, sent_at, last_error)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${DELIVERY_COLUMNS}`,
    );
    return deliveries.map((d) =>
      deliveryFromRow(
        insert.get(
          d.namespace,
          d.eventId,
          d.rule,
          d.channel,
          d.subject,
          d.state,
          d.title,
          d.text,
          JSON.stringify(d.details),
          d.status,
          now,
          d.status === 'pending' ? now : null,
          d.status === 'sent' || d.status === 'failed' ? 1 : 0,
          d.status === 'sent' ? now : null,
          d.error ?? null,
        ) as DeliveryRow,
      ),
    );
  }

  async addDeliveries(deliveries: readonly NewDelivery[], now: number) {
    return this.c.run('addDeliveries', () =>
      this.c.db.transaction(() => this.insertDeliveries(deliveries, now)).immediate(),
    );
  }

  async dueDeliveries(now: number, limit: number) {
    return this.c.run('dueDeliveries', () =>
      (
        this.c
          .sql(
            `SELECT ${DELIVERY_COLUMNS} FROM alert_deliveries
             WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`,
          )
          .all(now, limit) as DeliveryRow[]
      ).map(deliveryFromRow),
    );
  }

  async recordDelivery(id: number, outcome: DeliveryOutcome, now: number) {
    return this.c.run('recordDelivery', () => {
      const row = (
        outcome.sent
          ? this.c
              .sql(
                `UPDATE alert_deliveries SET status = 'sent', attempts = attempts + 1, sent_at = ?,
                   next_attempt_at = NULL, last_error = NULL
                 WHERE id = ? AND status = 'pending' RETURNING ${DELIVERY_COLUMNS}`,
              )
              .get(now, id)
          : this.c
              .sql(
                `UPDATE alert_deliveries SET status = ?, attempts = attempts + 1, last_error = ?,
                   next_attempt_at = ?
                 WHERE id = ? AND status = 'pending' RETURNING ${DELIVERY_COLUMNS}`,
              )
              .get(outcome.retryAt === null ? 'failed' : 'pending', outcome.error, outcome.retryAt, id)
      ) as DeliveryRow | undefined;
      return row ? deliveryFromRow(row) : null;
    });
  }

  async listDeliveries(filter: {
    namespace?: string | undefined;
    channel?: string | undefined;
    rule?: string | undefined;
    status?: string | undefined;
    before?: number | undefined;
    limit: number;
  }) {
    return this.c.run('listDeliveries', () =>
      (
        this.c
          .sql(
            `SELECT ${DELIVERY_COLUMNS} FROM alert_deliveries
             WHERE (@namespace IS NULL OR namespace = @namespace)
               AND (@channel IS NULL OR channel_name = @channel) AND (@rule IS NULL OR rule_name = @rule)
               AND (@status IS NULL OR status = @status) AND (@before IS NULL OR id < @before)
             ORDER BY id DESC LIMIT @limit`,
          )
          .all({
            namespace: filter.namespace ?? null,
            channel: filter.channel ?? null,
            rule: filter.rule ?? null,
            status: filter.status ?? null,
            before: filter.before ?? null,
            limit: filter.limit,
          }) as DeliveryRow[]
      ).map(deliveryFromRow),
    );
  }

  async pruneDeliveries(before: number, limit: number) {
    return this.c.run(
      'pruneDeliveries',
      () =>
        this.c
          .sql(
            `DELETE FROM alert_deliveries WHERE id IN (SELECT id FROM alert_deliveries
               WHERE created_at < ? AND status <> 'pending' ORDER BY created_at LIMIT ?)`,
          )
          .run(before, limit).changes,
    );
  }
}
