import { Type } from '@sinclair/typebox';
import { TriggerSchema } from './schemas.ts';

/** Request schemas of the console and access routes; closed like every other body. */

const closed = <T extends Parameters<typeof Type.Object>[0]>(properties: T) =>
  Type.Object(properties, { additionalProperties: false });

export const UserName = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]*$',
});
const UserRole = Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('viewer')]);
const Password = Type.String({ minLength: 8, maxLength: 200 });

export const LoginSchema = closed({
  name: Type.String({ minLength: 1, maxLength: 64 }),
  password: Type.String({ maxLength: 200 }),
});
export const UserSpecSchema = closed({ name: UserName, role: UserRole, password: Password });
export const UserUpdateSchema = Type.Object(
  { role: Type.Optional(UserRole), password: Type.Optional(Password) },
  { additionalProperties: false, minProperties: 1 },
);
export const UserParam = closed({ name: Type.String({ minLength: 1, maxLength: 64 }) });

export const ApiTokenSpecSchema = closed({
  name: Type.String({ minLength: 1, maxLength: 100 }),
  role: Type.Union([UserRole, Type.Literal('worker')]),
  groups: Type.Optional(
    Type.Array(Type.String({ minLength: 1, maxLength: 128 }), {
      minItems: 1,
      maxItems: 100,
      uniqueItems: true,
    }),
  ),
});

export const AuditQuery = closed({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 100 })),
  cursor: Type.Optional(Type.String({ maxLength: 32 })),
});

export const PreviewSchema = closed({
  trigger: TriggerSchema,
  count: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
});

export const RunsPerMinuteQuery = closed({ since: Type.Optional(Type.String({ maxLength: 64 })) });

export const OverviewQuery = closed({
  window: Type.Optional(Type.Union([Type.Literal('1h'), Type.Literal('24h')])),
});
