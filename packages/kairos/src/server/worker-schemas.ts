import { Type } from '@sinclair/typebox';
import { MAX_CONCURRENCY_LIMIT } from '../core/dispatch-policy.ts';
import { RUN_LOG_LIMITS } from '../core/log-limits.ts';

/** Request schemas of the workers-at-scale routes: closed objects, explicit bounds. */

const closed = <T extends Parameters<typeof Type.Object>[0]>(properties: T) =>
  Type.Object(properties, { additionalProperties: false });

export const GroupParam = closed({
  name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' }),
});

// No `null` alternatives: the node's Ajv coerces 0 to null, which would turn a bad limit into none.
export const GroupLimitSchema = closed({
  maxConcurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_CONCURRENCY_LIMIT })),
  rateLimit: Type.Optional(
    closed({
      limit: Type.Integer(),
      per: Type.Union([Type.Integer({ minimum: 0 }), Type.String({ minLength: 1, maxLength: 32 })]),
    }),
  ),
});

const Level = Type.Union(['debug', 'info', 'warn', 'error'].map((level) => Type.Literal(level)));

export const WorkerLogsSchema = closed({
  logs: Type.Array(
    closed({
      runId: Type.Integer({ minimum: 1 }),
      attempt: Type.Integer({ minimum: 1 }),
      level: Level,
      message: Type.String({ maxLength: RUN_LOG_LIMITS.maxMessageChars }),
      fields: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      time: Type.String({ minLength: 1, maxLength: 40 }),
    }),
    { maxItems: 1000 },
  ),
  progress: Type.Optional(
    Type.Array(
      closed({
        runId: Type.Integer({ minimum: 1 }),
        attempt: Type.Integer({ minimum: 1 }),
        value: Type.Number({ minimum: 0, maximum: 1 }),
        message: Type.Optional(Type.String({ maxLength: 1000 })),
      }),
      { maxItems: 1000 },
    ),
  ),
});

export const LogQuery = closed({
  after: Type.Optional(Type.Integer({ minimum: 0 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 5000, default: 1000 })),
});

export const LogStreamQuery = closed({ after: Type.Optional(Type.Integer({ minimum: 0 })) });

// One closed object for both kinds: compileTask checks which fields each kind takes, with
// messages that name the field (a union here would only say "must match a schema in anyOf").
export const TaskSchema = closed({
  kind: Type.Union([Type.Literal('shell'), Type.Literal('http')]),
  command: Type.Optional(Type.String({ maxLength: 1024 })),
  args: Type.Optional(Type.Array(Type.String({ maxLength: 8192 }), { maxItems: 256 })),
  env: Type.Optional(Type.Record(Type.String({ maxLength: 128 }), Type.String({ maxLength: 8192 }))),
  cwd: Type.Optional(Type.String({ maxLength: 1024 })),
  method: Type.Optional(Type.String({ maxLength: 16 })),
  url: Type.Optional(Type.String({ maxLength: 4096 })),
  headers: Type.Optional(Type.Record(Type.String({ maxLength: 128 }), Type.String({ maxLength: 8192 }))),
  body: Type.Optional(Type.String({ maxLength: 65_536 })),
  timeout: Type.Optional(
    Type.Union([Type.Integer({ minimum: 0 }), Type.String({ minLength: 1, maxLength: 32 })]),
  ),
  expectStatus: Type.Optional(Type.Array(Type.Integer(), { maxItems: 50 })),
});
