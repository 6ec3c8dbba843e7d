import { Type } from '@sinclair/typebox';
import {
  closed,
  DurationSchema,
  ItemsSchema,
  JsonObjectSchema,
  literals,
  NameSchema,
  nullable,
} from './common.ts';
import { SkipReasonSchema } from './schedules.ts';

/** Schemas of alerts: rules, channels, silences and the delivery history. */

export const ALERT_KINDS = [
  'run-failed',
  'run-timed-out',
  'consecutive-failures',
  'fire-skipped',
  'no-success',
  'run-queued',
  'worker-lost',
  'node-lost',
  'fire-late',
] as const;
export const AlertKindSchema = literals(ALERT_KINDS);

export const CHANNEL_TYPES = ['webhook', 'slack', 'feishu', 'dingtalk', 'wecom', 'email'] as const;
export const ChannelTypeSchema = literals(CHANNEL_TYPES);

const RuleName = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]*$' });

const ruleFields = {
  kind: AlertKindSchema,
  /** Scope: one job, or every job of a group; neither: everything. Not both. */
  job: Type.Optional(NameSchema),
  group: Type.Optional(NameSchema),
  /**
   * `run-queued`, `fire-late`: how long is too long; `no-success`: the period within which the
   * job must succeed.
   */
  threshold: Type.Optional(DurationSchema),
  /** `consecutive-failures`: how many failed runs in a row (2 to 1000). */
  count: Type.Optional(Type.Integer({ minimum: 2, maximum: 1000 })),
  /** `fire-skipped`: the reasons that alert; omitted: every reason. */
  reasons: Type.Optional(Type.Array(SkipReasonSchema, { minItems: 1, maxItems: 8, uniqueItems: true })),
  /** `run-queued`: only runs that no live worker can take (no worker of the group declares the handler). */
  unroutableOnly: Type.Optional(Type.Boolean()),
  /** Channel names the rule notifies (at least one). */
  channels: Type.Array(NameSchema, { minItems: 1, maxItems: 16, uniqueItems: true }),
  /** One alert per rule and subject per window (default `1h`); the subject is a job, worker or node. */
  window: Type.Optional(DurationSchema),
  enabled: Type.Optional(Type.Boolean()),
};

export const AlertRuleSpecSchema = closed({ name: RuleName, ...ruleFields });
/** `PUT /v1/alert-rules/:name`: the name comes from the path. */
export const AlertRuleBody = closed({ name: Type.Optional(RuleName), ...ruleFields });

export const AlertRuleSchema = Type.Object({
  name: Type.String(),
  kind: AlertKindSchema,
  job: nullable(Type.String()),
  group: nullable(Type.String()),
  /** Milliseconds. */
  threshold: nullable(Type.Integer()),
  count: nullable(Type.Integer()),
  reasons: nullable(Type.Array(Type.String())),
  unroutableOnly: Type.Boolean(),
  channels: Type.Array(Type.String()),
  /** Milliseconds. */
  window: Type.Integer(),
  enabled: Type.Boolean(),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});
export const AlertRuleListSchema = ItemsSchema(AlertRuleSchema);

const ChannelName = RuleName;
const Url = Type.String({ minLength: 8, maxLength: 2048, pattern: '^https?://' });
const Email = Type.String({ minLength: 3, maxLength: 254, pattern: '^[^\\s@]+@[^\\s@]+$' });

const channelFields = {
  type: ChannelTypeSchema,
  /** Every type but `email`: where to post. The URL carries a token on most platforms: never answered in clear. */
  url: Type.Optional(Url),
  /**
   * `webhook`: the HMAC-SHA256 key of the `Kairos-Signature` header; `feishu`, `dingtalk`: the
   * bot's signing secret. Never answered.
   */
  secret: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  /** `email`: the SMTP server and the message's addresses. */
  smtp: Type.Optional(
    closed({
      host: Type.String({ minLength: 1, maxLength: 253 }),
      port: Type.Integer({ minimum: 1, maximum: 65535 }),
      /** TLS from the start (port 465); otherwise STARTTLS when the server offers it. */
      secure: Type.Optional(Type.Boolean()),
      user: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
      /** Never answered. */
      password: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
      from: Email,
      to: Type.Array(Email, { minItems: 1, maxItems: 50 }),
    }),
  ),
};

export const AlertChannelSpecSchema = closed({ name: ChannelName, ...channelFields });
/**
 * `PUT /v1/alert-channels/:name`: the name comes from the path. A secret (signing secret, SMTP
 * password) or URL left out keeps the stored one, so that a client that never saw them can change
 * the rest.
 */
export const AlertChannelBody = closed({ name: Type.Optional(ChannelName), ...channelFields });

export const AlertChannelSchema = Type.Object({
  name: Type.String(),
  type: ChannelTypeSchema,
  /** The URL's origin only (`https://hooks.slack.com/…`): the rest carries the platform's token. */
  url: nullable(Type.String()),
  /** Whether a signing secret is stored; the secret itself is never answered. */
  secretSet: Type.Boolean(),
  smtp: nullable(
    Type.Object({
      host: Type.String(),
      port: Type.Integer(),
      secure: Type.Boolean(),
      user: nullable(Type.String()),
      passwordSet: Type.Boolean(),
      from: Type.String(),
      to: Type.Array(Type.String()),
    }),
  ),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});
export const AlertChannelListSchema = ItemsSchema(AlertChannelSchema);

export const AlertSilenceSpecSchema = closed({
  /** The rule it silences; omitted: every rule. */
  rule: Type.Optional(RuleName),
  startsAt: Type.Optional(Type.String({ maxLength: 64 })),
  endsAt: Type.String({ maxLength: 64 }),
  comment: Type.Optional(Type.String({ maxLength: 500 })),
});

export const AlertSilenceSchema = Type.Object({
  id: Type.Integer(),
  rule: nullable(Type.String()),
  startsAt: Type.String(),
  endsAt: Type.String(),
  comment: Type.String(),
  createdBy: Type.String(),
  createdAt: Type.String(),
});
export const AlertSilenceListSchema = ItemsSchema(AlertSilenceSchema);
export const SilenceParam = closed({ id: Type.Integer({ minimum: 1 }) });

export const DeliveryStatusSchema = literals(['pending', 'sent', 'failed', 'silenced'] as const);
export const AlertStateSchema = literals(['firing', 'resolved', 'test'] as const);

export const AlertDeliverySchema = Type.Object({
  id: Type.Integer(),
  /** The alert's id, the same on every retry: receivers deduplicate by it. */
  eventId: Type.String(),
  rule: nullable(Type.String()),
  channel: Type.String(),
  /** What the alert is about: `job:<name>`, `worker:<id>`, `node:<name>`. */
  subject: Type.String(),
  state: AlertStateSchema,
  title: Type.String(),
  text: Type.String(),
  details: JsonObjectSchema,
  status: DeliveryStatusSchema,
  attempts: Type.Integer(),
  lastError: nullable(Type.String()),
  createdAt: Type.String(),
  sentAt: nullable(Type.String()),
  nextAttemptAt: nullable(Type.String()),
});
export const AlertDeliveryListSchema = ItemsSchema(AlertDeliverySchema);

export const AlertDeliveryQuery = closed({
  channel: Type.Optional(NameSchema),
  rule: Type.Optional(NameSchema),
  status: Type.Optional(DeliveryStatusSchema),
  /** The last id of the previous page (newest first). */
  before: Type.Optional(Type.Integer({ minimum: 1 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
});

/** Alerts firing now: one per rule and subject. */
export const AlertOpenSchema = Type.Object({
  rule: Type.String(),
  subject: Type.String(),
  firedAt: Type.String(),
  notifiedAt: nullable(Type.String()),
  /** Triggers since it fired. */
  count: Type.Integer(),
});
export const AlertOpenListSchema = ItemsSchema(AlertOpenSchema);
