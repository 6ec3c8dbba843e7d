import type { Json } from './wire.ts';

/**
 * Every error code the Kairos API answers with. Stable: codes are never renamed or reused.
 * `docs/errors.md` explains each one.
 */
export const ERROR_CODES = {
  VALIDATION_FAILED: 400,
  INVALID_CRON: 400,
  INVALID_TIMEZONE: 400,
  INVALID_DURATION: 400,
  INVALID_TRIGGER: 400,
  INVALID_CURSOR: 400,
  INVALID_SCHEDULE: 400,
  DEPENDENCY_CYCLE: 400,
  INVALID_ROUTING: 400,
  INVALID_RESOURCES: 400,
  INVALID_TASK: 400,
  INVALID_TIME_RANGE: 400,
  INVALID_JSON: 400,
  JSON_TOO_DEEP: 400,
  INVALID_URL: 400,
  MALFORMED_REQUEST: 400,
  REQUEST_TIMEOUT: 408,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  JOB_NOT_FOUND: 404,
  RUN_NOT_FOUND: 404,
  CALENDAR_NOT_FOUND: 404,
  WORKER_NOT_FOUND: 404,
  JOB_NAME_TAKEN: 409,
  CALENDAR_NAME_TAKEN: 409,
  ATTEMPT_STALE: 409,
  ATTEMPT_NOT_HELD: 409,
  RUN_FINISHED: 409,
  CALENDAR_IN_USE: 409,
  WORKER_NOT_ACTIVE: 409,
  VERSION_CONFLICT: 409,
  IDEMPOTENCY_CONFLICT: 409,
  STALE_REVISION: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  // Secret params (docs/security.md): a secret to store while the node has no key.
  SECRET_KEY_MISSING: 422,
  // A stored secret whose key the node no longer has (removed before a rotation finished).
  SECRET_KEY_UNKNOWN: 422,
  HEADERS_TOO_LARGE: 431,
  STORE_UNAVAILABLE: 503,
  // A node refuses to start on a schema it does not understand (never an answer of the API).
  SCHEMA_UNSUPPORTED: 503,
  // A node refuses to start on a connection that cannot carry its session (a transaction-mode pooler).
  STORE_UNSUPPORTED: 503,
  INTERNAL: 500,
  // Access control (users, sessions, API tokens, worker-token groups).
  LOGIN_FAILED: 401,
  CSRF_FAILED: 403,
  GROUP_FORBIDDEN: 403,
  WORKER_FORBIDDEN: 403,
  USER_NOT_FOUND: 404,
  TOKEN_NOT_FOUND: 404,
  TOKEN_NAME_TAKEN: 409,
  USER_NAME_TAKEN: 409,
  LAST_ADMIN: 409,
  TOO_MANY_ATTEMPTS: 429,
  PASSWORD_LOGIN_DISABLED: 403,
  USER_EXTERNAL: 409,
  // Single sign-on with an OpenID provider.
  OIDC_STATE_INVALID: 400,
  OIDC_LOGIN_FAILED: 401,
  OIDC_DENIED: 403,
  OIDC_NO_ROLE: 403,
  OIDC_NOT_CONFIGURED: 404,
  OIDC_PROVIDER_UNAVAILABLE: 502,
  // Alerts: rules, channels, silences.
  INVALID_ALERT_RULE: 400,
  INVALID_CHANNEL: 400,
  ALERT_RULE_NOT_FOUND: 404,
  CHANNEL_NOT_FOUND: 404,
  SILENCE_NOT_FOUND: 404,
  ALERT_RULE_NAME_TAKEN: 409,
  CHANNEL_NAME_TAKEN: 409,
  CHANNEL_IN_USE: 409,
  NAMESPACE_NOT_FOUND: 404,
  NAMESPACE_TAKEN: 409,
  NAMESPACE_NOT_EMPTY: 409,
  NAME_TAKEN: 409,
  // Namespace quotas: 422 for definition limits; 429 (with Retry-After) for rates and queued runs.
  QUOTA_EXCEEDED: 422,
  // Workflows (docs/workflows.md).
  WORKFLOW_INVALID: 422,
  WORKFLOW_NOT_FOUND: 404,
  WORKFLOW_INSTANCE_NOT_FOUND: 404,
  WORKFLOW_INSTANCE_FINISHED: 409,
  WORKFLOW_STEP_RUN: 409,
  WORKFLOW_INSTANCE_NOT_RETRYABLE: 409,
  WORKFLOW_STEP_NOT_FOUND: 404,
  WORKFLOW_STEP_NOT_MAP: 409,
  WORKFLOW_STEP_NOT_ENDED: 409,
  WORKFLOW_STEP_NOT_SKIPPABLE: 409,
} as const satisfies Record<string, number>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error answer of the Kairos API, as the client raises it. */
export class KairosApiError extends Error {
  override readonly name = 'KairosApiError';
  constructor(
    readonly status: number,
    readonly code: ErrorCode | string,
    message: string,
    readonly details?: Json,
  ) {
    super(message);
  }
}
