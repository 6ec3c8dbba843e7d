import { Type } from '@sinclair/typebox';
import {
  closed,
  DurationSchema,
  ItemsSchema,
  JsonObjectSchema,
  literals,
  NAME_PATTERN,
  nullable,
  PageSchema,
} from './common.ts';
import { RunSummarySchema } from './runs.ts';

/** Schemas of the console and access control: users, sessions, API tokens, audit log, stats. */

export const UserRoleSchema = literals(['admin', 'operator', 'viewer'] as const);
const RoleOrWorker = literals(['admin', 'operator', 'viewer', 'worker'] as const);

export const UserName = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]*$',
});
const Password = Type.String({ minLength: 8, maxLength: 200 });

export const UserSchema = Type.Object({
  name: Type.String(),
  role: UserRoleSchema,
  /** A user of single sign-on: the OpenID provider's issuer (their role comes from it at each login); null for a local user. */
  issuer: nullable(Type.String()),
  createdAt: Type.String(),
  updatedAt: Type.String(),
});

export const UserListSchema = ItemsSchema(UserSchema);

export const UserSpecSchema = closed({
  name: UserName,
  role: UserRoleSchema,
  /** 8 to 200 characters. */
  password: Password,
});

export const UserUpdateSchema = Type.Object(
  { role: Type.Optional(UserRoleSchema), password: Type.Optional(Password) },
  { additionalProperties: false, minProperties: 1 },
);

export const UserParam = closed({ name: Type.String({ minLength: 1, maxLength: 64 }) });

export const LoginRequestSchema = closed({
  name: Type.String({ minLength: 1, maxLength: 64 }),
  password: Type.String({ maxLength: 200 }),
});

/** How the console offers to log in: with a password, and/or through an OpenID provider. */
export const AuthProvidersSchema = Type.Object({
  password: Type.Boolean(),
  /** Single sign-on: the provider's name for the button, and where the browser starts the login. */
  sso: nullable(Type.Object({ name: Type.String(), loginUrl: Type.String() })),
});

export const MeSchema = Type.Object({
  actor: Type.String(),
  role: RoleOrWorker,
  user: nullable(Type.String()),
  csrfToken: nullable(Type.String()),
});

const apiTokenFields = {
  id: Type.Integer(),
  /** The namespace it acts in; `*` for a global token (admin only). */
  namespace: Type.String(),
  name: Type.String(),
  role: RoleOrWorker,
  /** Worker tokens: the groups they may serve; null for every group. */
  groups: nullable(Type.Array(Type.String())),
  createdBy: Type.String(),
  createdAt: Type.String(),
};
export const ApiTokenSchema = Type.Object(apiTokenFields);
export const ApiTokenListSchema = ItemsSchema(ApiTokenSchema);
/** The answer to creating a token: the only time the token itself is shown. */
export const CreatedApiTokenSchema = Type.Object({ ...apiTokenFields, token: Type.String() });

export const ApiTokenSpecSchema = closed({
  /** Letters, digits and `._:-`, starting with a letter or digit (it names the token in the audit log). */
  name: Type.String({ minLength: 1, maxLength: 100, pattern: NAME_PATTERN.source }),
  role: RoleOrWorker,
  /** An admin token for every namespace rather than the request's: global admins only. */
  global: Type.Optional(Type.Boolean()),
  /** Worker tokens only: limit the token to these groups. */
  groups: Type.Optional(
    Type.Array(Type.String({ minLength: 1, maxLength: 128, pattern: NAME_PATTERN.source }), {
      minItems: 1,
      maxItems: 100,
      uniqueItems: true,
    }),
  ),
});

export const AuditEntrySchema = Type.Object({
  id: Type.Integer(),
  /** The namespace of what changed; `*` for users and namespaces themselves. */
  namespace: Type.String(),
  at: Type.String(),
  actor: Type.String(),
  action: Type.String(),
  target: Type.String(),
  details: JsonObjectSchema,
});

export const AuditPageSchema = PageSchema(AuditEntrySchema);

export const AuditQuery = closed({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
  cursor: Type.Optional(Type.String({ maxLength: 32 })),
});

// Namespaces -----------------------------------------------------------------

/** Lower-case letters, digits and `-`, starting with a letter or digit, at most 63 characters. */
export const NamespaceName = Type.String({
  minLength: 1,
  maxLength: 63,
  pattern: '^[a-z0-9][a-z0-9-]{0,62}$',
});

const limit = (description: string) => Type.Optional(nullable(Type.Integer({ minimum: 0, description })));

/**
 * A namespace's quotas (docs/tenancy.md#quotas): each absent or null is unlimited. Setting them
 * replaces all of them.
 */
export const NamespaceQuotasSchema = closed({
  maxJobs: limit('Jobs in the namespace.'),
  maxFiresPerSecond: Type.Optional(
    nullable(
      Type.Number({
        minimum: 0,
        description: "Sum of the worst-case fire rates of the namespace's cron and every jobs.",
      }),
    ),
  ),
  minInterval: Type.Optional(Type.Union([...DurationSchema.anyOf, Type.Null()])),
  maxQueuedRuns: limit('Runs of the namespace waiting in the queue.'),
  maxParamsBytes: limit("A job's or a run's params, as JSON bytes."),
  maxBackfillRuns: limit('Runs one backfill may create.'),
  requestsPerSecond: limit('API requests per second in the namespace, per node.'),
});

/** Quotas as a namespace answers them: every field, null for unlimited; minInterval a duration string. */
export const NamespaceQuotasViewSchema = Type.Object({
  maxJobs: nullable(Type.Integer()),
  maxFiresPerSecond: nullable(Type.Number()),
  minInterval: nullable(Type.String()),
  maxQueuedRuns: nullable(Type.Integer()),
  maxParamsBytes: nullable(Type.Integer()),
  maxBackfillRuns: nullable(Type.Integer()),
  requestsPerSecond: nullable(Type.Integer()),
});

export const NamespaceSchema = Type.Object({
  name: Type.String(),
  description: Type.String(),
  createdAt: Type.String(),
  /** The caller's role in it. */
  role: UserRoleSchema,
  /** Its quotas; null: none set (unlimited). */
  quotas: Type.Optional(nullable(NamespaceQuotasViewSchema)),
});
export const NamespaceListSchema = ItemsSchema(NamespaceSchema);

export const NamespaceSpecSchema = closed({
  name: NamespaceName,
  description: Type.Optional(Type.String({ maxLength: 500 })),
});

export const NamespaceParam = closed({ name: Type.String({ minLength: 1, maxLength: 63 }) });

/** A user's role in the request's namespace. */
export const GrantSchema = Type.Object({
  user: Type.String(),
  namespace: Type.String(),
  role: UserRoleSchema,
  createdAt: Type.String(),
});
export const GrantListSchema = ItemsSchema(GrantSchema);
export const GrantSpecSchema = closed({ role: UserRoleSchema });

// Stats ----------------------------------------------------------------------

export const StatsWindowSchema = literals(['1h', '24h'] as const);

export const EndedCountsSchema = Type.Object({
  succeeded: Type.Integer(),
  failed: Type.Integer(),
  timedOut: Type.Integer(),
  cancelled: Type.Integer(),
});

export const OverviewSchema = Type.Object({
  running: Type.Integer(),
  queued: Type.Integer(),
  window: StatsWindowSchema,
  /** Runs that ended in the window, by outcome. */
  ended: EndedCountsSchema,
  /** The same counts as `ended` (the name is from before the window could be a day). */
  lastHour: EndedCountsSchema,
  /** Succeeded / (succeeded + failed + timed out) over the window; null without ended runs. */
  successRate: nullable(Type.Number()),
  /** Lateness of scheduled starts against their fire time, in ms: nearest-rank p50 and p99. */
  lateness: Type.Object({
    count: Type.Integer(),
    p50Ms: nullable(Type.Number()),
    p99Ms: nullable(Type.Number()),
    sampled: Type.Boolean(),
  }),
  workersOnline: Type.Integer(),
  nodesOnline: Type.Integer(),
  /** The latest failed or timed-out runs. */
  recentFailures: Type.Array(RunSummarySchema),
});

export const MinuteStatsSchema = Type.Object({
  minute: Type.String(),
  succeeded: Type.Integer(),
  failed: Type.Integer(),
  timedOut: Type.Integer(),
  cancelled: Type.Integer(),
});

export const MinuteStatsListSchema = ItemsSchema(MinuteStatsSchema);

export const OverviewQuery = closed({ window: Type.Optional(StatsWindowSchema) });

export const RunsPerMinuteQuery = closed({ since: Type.Optional(Type.String({ maxLength: 64 })) });
