import { Type } from '@sinclair/typebox';
import { MAX_CONCURRENCY_LIMIT } from '../core/dispatch-policy.ts';
import { RUN_LOG_LIMITS } from '../core/log-limits.ts';

/** Request schemas of the workers-at-scale routes: closed objects, explicit bounds. */

const closed = <T extends Parameters<typeof Type.Object>[0]>(properties: T) =>
  Type.Object(properties, { additionalProperties: false });

export const GroupParam = closed({
  name: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' }),
});

export const GroupLimitSchema = closed({
  maxConcurrency: Type.Union([Type.Integer({ minimum: 1, maximum: MAX_CONCURRENCY_LIMIT }), Type.Null()]),
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
