/** The TypeBox schemas of the API: the node validates and serializes with them; `wire.ts` derives its types from them. */
export * from './access.ts';
export * from './alerts.ts';
export {
  DurationSchema,
  EmptySchema,
  ErrorBodySchema,
  HANDLER_PATTERN,
  InstantSchema,
  ItemsSchema,
  type Json,
  type JsonObject,
  JsonObjectSchema,
  JsonSchema,
  NAME_PATTERN,
  NameSchema,
  PageSchema,
  ResourceAmountsSchema,
  ResourceSpecSchema,
} from './common.ts';
export * from './doctor.ts';
export * from './jobs.ts';
export * from './runs.ts';
export * from './schedules.ts';
export * from './secrets.ts';
export * from './settings.ts';
export * from './workers.ts';
export * from './workflows.ts';
