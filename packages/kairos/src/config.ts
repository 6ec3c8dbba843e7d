import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import type { Duration } from '@kairos/client';
import { parseDuration } from './core/duration.ts';
import { MIN_RUN_AGE_MS, RETENTION_MAX_MS, type RetentionConfig } from './core/retention.ts';
import { KairosError } from './errors.ts';
import { parseSecretKeys, type SecretKey } from './scheduler/secret-keyring.ts';
import { parseRoleRules, type RoleRule } from './server/oidc-roles.ts';

/** What a user may set, through flags, `KAIROS_*` environment variables or a JSON config file. */
export interface KairosOptions {
  host?: string;
  port?: number;
  /** Folder for the SQLite file and the generated credentials. Default `.kairos`. */
  dataDir?: string;
  /** `postgres://…` for a cluster; default: the SQLite file `<dataDir>/kairos.db`. */
  databaseUrl?: string;
  adminToken?: string;
  workerToken?: string;
  nodeId?: string;
  logLevel?: string;
  heartbeat?: Duration;
  workerLease?: Duration;
  reaperInterval?: Duration;
  pollWait?: Duration;
  /** Resource-based scheduling: a run that fits no worker's free capacity this long gets a reservation. */
  resourceReserveAfter?: Duration;
  partitionLease?: Duration;
  partitions?: number;
  misfireGrace?: Duration;
  /**
   * How long before its fire time a job (overlap `allow`) is fired, so that workers hold its runs
   * and start them on the instant. `0` fires at the instant. Default 500 ms.
   */
  fireAhead?: Duration;
  /**
   * Overload shedding: when the trigger loop has fired this long without catching up and its
   * oldest due fire is this late, each recurring job runs only its latest due fire until the loop
   * catches up; the older ones are recorded as `overloaded` (docs/operations.md). `0`: never.
   * Default 10 s.
   */
  overloadAfter?: Duration;
  /** How long alert deliveries stay in the history (docs/alerts.md). Default 30 days. */
  alertHistory?: Duration;
  /** Retention (docs/retention.md): succeeded and cancelled runs are deleted this long after they ended. Default 30 days. */
  retentionFinished?: Duration;
  /** Failed and timed-out runs are deleted this long after they ended. Default 90 days. */
  retentionFailed?: Duration;
  /** Rows of the skipped-fire ledger, after they were last written. Default 30 days. */
  retentionSkippedFires?: Duration;
  /** Audit entries. Default 365 days. */
  retentionAudit?: Duration;
  /** Run log lines, after they were stored. Default 7 days. */
  retentionLogs?: Duration;
  /** Stopped and lost workers, after their lease ended. Default 1 day. */
  retentionWorkers?: Duration;
  /** How often the pruner runs (on one node of the cluster at a time); `0` turns pruning off. Default 1 minute. */
  retentionInterval?: Duration;
  /** Rows one delete statement takes at most. Default 1000. */
  retentionBatch?: number;
  /** A console admin user created on first start when no admin user exists (with `adminPassword`). */
  adminUser?: string;
  adminPassword?: string;
  /**
   * Keys for secret params (docs/security.md): `id:base64key` entries (32-byte keys) separated by
   * commas; the first encrypts, all decrypt. Generate one with `openssl rand -base64 32`.
   */
  secretKeys?: string;
  /** A file of such entries, one a line (`#` comments); used when `secretKeys` is not set. */
  secretKeyFile?: string;
  /** Single sign-on (docs/security.md#single-sign-on): the OpenID provider's issuer URL. Unset: no SSO. */
  oidcIssuer?: string;
  /** The client id Kairos is registered with at the provider. */
  oidcClientId?: string;
  /** The client secret; unset for a public client (PKCE alone). */
  oidcClientSecret?: string;
  /** Where the provider sends the browser back: `https://kairos.example.com/v1/auth/oidc/callback`. */
  oidcRedirectUrl?: string;
  /** The scopes asked for, space-separated; `openid` among them. Default `openid profile email`. */
  oidcScopes?: string;
  /** The claim (ID token or userinfo) roles are mapped from; a dotted name is a path. Default `groups`. */
  oidcRoleClaim?: string;
  /** Claim values to roles: `kairos-admins=admin,kairos-ops=operator,*=viewer` (or an object in a file). */
  oidcRoles?: string | Record<string, string>;
  /** The claim a user's Kairos name is taken from. Default `preferred_username`. */
  oidcNameClaim?: string;
  /** The provider's name on the console's button, "Sign in with …". Default `SSO`. */
  oidcProviderName?: string;
  /** Whether users may log in with a password (`POST /v1/auth/login`). Default true; false needs SSO. */
  passwordLogin?: boolean;
  /**
   * A bearer token `GET /metrics` asks for (`Authorization: Bearer <token>`): its series name every
   * namespace's groups and jobs. Unset: `/metrics` answers anyone (keep it on an internal network).
   */
  metricsToken?: string;
}

/** Single sign-on with an OpenID provider, resolved and validated. */
export interface OidcConfig {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string | undefined;
  readonly redirectUrl: string;
  readonly scopes: string;
  readonly roleClaim: string;
  readonly roles: readonly RoleRule[];
  readonly nameClaim: string;
  readonly providerName: string;
}

/** The resolved, validated, frozen configuration a node runs with. */
export interface KairosConfig {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  /** `sqlite:<path>` or a `postgres://` URL. */
  readonly database: string;
  readonly adminToken: string;
  readonly workerToken: string;
  readonly nodeId: string;
  readonly logLevel: string;
  readonly heartbeatMs: number;
  readonly workerLeaseMs: number;
  readonly reaperIntervalMs: number;
  readonly pollWaitMs: number;
  readonly resourceReserveAfterMs: number;
  readonly partitionLeaseMs: number;
  readonly partitions: number;
  readonly misfireGraceMs: number;
  readonly fireAheadMs: number;
  readonly overloadAfterMs: number;
  readonly alertHistoryMs: number;
  /** `intervalMs` 0: the pruner is off. */
  readonly retention: RetentionConfig;
  readonly adminUser: string | undefined;
  readonly adminPassword: string | undefined;
  /** The keys for secret params, the encrypting one first; empty when none is configured. */
  readonly secretKeys: readonly SecretKey[];
  /** Null: no single sign-on. */
  readonly oidc: OidcConfig | null;
  readonly passwordLogin: boolean;
  /** Undefined: `/metrics` is open. */
  readonly metricsToken: string | undefined;
}

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 7070,
  dataDir: '.kairos',
  logLevel: 'info',
  heartbeat: '1s',
  workerLease: '5s',
  reaperInterval: '1s',
  pollWait: '30s',
  resourceReserveAfter: '30s',
  partitionLease: '3s',
  partitions: 16,
  misfireGrace: '60s',
  fireAhead: '500ms',
  overloadAfter: '10s',
  alertHistory: '30d',
  retentionFinished: '30d',
  retentionFailed: '90d',
  retentionSkippedFires: '30d',
  retentionAudit: '365d',
  retentionLogs: '7d',
  retentionWorkers: '1d',
  retentionInterval: '1m',
  retentionBatch: 1000,
} as const;

const ENV: Record<keyof KairosOptions, string> = {
  host: 'KAIROS_HOST',
  port: 'KAIROS_PORT',
  dataDir: 'KAIROS_DATA_DIR',
  databaseUrl: 'KAIROS_DATABASE_URL',
  adminToken: 'KAIROS_ADMIN_TOKEN',
  workerToken: 'KAIROS_WORKER_TOKEN',
  nodeId: 'KAIROS_NODE_ID',
  logLevel: 'KAIROS_LOG_LEVEL',
  heartbeat: 'KAIROS_HEARTBEAT',
  workerLease: 'KAIROS_WORKER_LEASE',
  reaperInterval: 'KAIROS_REAPER_INTERVAL',
  pollWait: 'KAIROS_POLL_WAIT',
  resourceReserveAfter: 'KAIROS_RESOURCE_RESERVE_AFTER',
  partitionLease: 'KAIROS_PARTITION_LEASE',
  partitions: 'KAIROS_PARTITIONS',
  misfireGrace: 'KAIROS_MISFIRE_GRACE',
  fireAhead: 'KAIROS_FIRE_AHEAD',
  overloadAfter: 'KAIROS_OVERLOAD_AFTER',
  alertHistory: 'KAIROS_ALERT_HISTORY',
  retentionFinished: 'KAIROS_RETENTION_FINISHED',
  retentionFailed: 'KAIROS_RETENTION_FAILED',
  retentionSkippedFires: 'KAIROS_RETENTION_SKIPPED_FIRES',
  retentionAudit: 'KAIROS_RETENTION_AUDIT',
  retentionLogs: 'KAIROS_RETENTION_LOGS',
  retentionWorkers: 'KAIROS_RETENTION_WORKERS',
  retentionInterval: 'KAIROS_RETENTION_INTERVAL',
  retentionBatch: 'KAIROS_RETENTION_BATCH',
  adminUser: 'KAIROS_ADMIN_USER',
  adminPassword: 'KAIROS_ADMIN_PASSWORD',
  secretKeys: 'KAIROS_SECRET_KEYS',
  secretKeyFile: 'KAIROS_SECRET_KEY_FILE',
  oidcIssuer: 'KAIROS_OIDC_ISSUER',
  oidcClientId: 'KAIROS_OIDC_CLIENT_ID',
  oidcClientSecret: 'KAIROS_OIDC_CLIENT_SECRET',
  oidcRedirectUrl: 'KAIROS_OIDC_REDIRECT_URL',
  oidcScopes: 'KAIROS_OIDC_SCOPES',
  oidcRoleClaim: 'KAIROS_OIDC_ROLE_CLAIM',
  oidcRoles: 'KAIROS_OIDC_ROLES',
  oidcNameClaim: 'KAIROS_OIDC_NAME_CLAIM',
  oidcProviderName: 'KAIROS_OIDC_PROVIDER_NAME',
  passwordLogin: 'KAIROS_PASSWORD_LOGIN',
  metricsToken: 'KAIROS_METRICS_TOKEN',
};

/** Options whose value is a duration: a bare number in the environment is milliseconds. */
const DURATIONS = new Set<string>([
  'heartbeat',
  'workerLease',
  'reaperInterval',
  'pollWait',
  'resourceReserveAfter',
  'partitionLease',
  'misfireGrace',
  'fireAhead',
  'overloadAfter',
  'alertHistory',
  'retentionFinished',
  'retentionFailed',
  'retentionSkippedFires',
  'retentionAudit',
  'retentionLogs',
  'retentionWorkers',
  'retentionInterval',
]);

/** Reads options from the environment (`KAIROS_*`). */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): KairosOptions {
  const options: Record<string, string | number | boolean> = {};
  for (const [key, name] of Object.entries(ENV)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    if (key === 'passwordLogin') {
      // Anything but true or false stays a string, which resolveConfig refuses by name.
      options[key] = value === 'true' ? true : value === 'false' ? false : value;
      continue;
    }
    const numeric =
      key === 'port' ||
      key === 'partitions' ||
      key === 'retentionBatch' ||
      (DURATIONS.has(key) && /^\d+$/.test(value));
    options[key] = numeric ? Number(value) : value;
  }
  return options as KairosOptions;
}

/** Reads a JSON config file with the same keys as {@link KairosOptions}. */
export function optionsFromFile(path: string): KairosOptions {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new KairosError('VALIDATION_FAILED', `config file ${path}: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new KairosError('VALIDATION_FAILED', `config file ${path}: expected a JSON object`);
  }
  const unknown = Object.keys(parsed).filter((key) => !(key in ENV));
  if (unknown.length > 0) {
    throw new KairosError('VALIDATION_FAILED', `config file ${path}: unknown keys ${unknown.join(', ')}`);
  }
  return parsed as KairosOptions;
}

/**
 * Resolves the configuration: explicit options over `KAIROS_*` variables over the config file
 * (`KAIROS_CONFIG`) over defaults. Tokens that nobody set are generated once and kept in
 * `<dataDir>/credentials.json`, so that a local CLI finds them.
 */
export function resolveConfig(
  options: KairosOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): KairosConfig {
  const file = env.KAIROS_CONFIG ? optionsFromFile(env.KAIROS_CONFIG) : {};
  const o: KairosOptions = { ...file, ...optionsFromEnv(env), ...stripUndefined(options) };
  const dataDir = resolve(o.dataDir ?? DEFAULTS.dataDir);
  const port = o.port ?? DEFAULTS.port;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new KairosError(
      'VALIDATION_FAILED',
      `port: expected a whole number from 0 to 65535, got ${o.port}`,
    );
  }
  const partitions = o.partitions ?? DEFAULTS.partitions;
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > 1024) {
    throw new KairosError(
      'VALIDATION_FAILED',
      `partitions: expected a whole number from 1 to 1024, got ${o.partitions}`,
    );
  }
  const database = o.databaseUrl ?? `sqlite:${join(dataDir, 'kairos.db')}`;
  if (!/^(sqlite:|postgres(ql)?:\/\/)/.test(database)) {
    throw new KairosError('VALIDATION_FAILED', 'databaseUrl: expected postgres://… or sqlite:<path>');
  }
  const credentials = o.adminToken && o.workerToken ? undefined : loadCredentials(dataDir);
  const config: KairosConfig = {
    host: o.host ?? DEFAULTS.host,
    port,
    dataDir,
    database,
    adminToken: o.adminToken ?? credentials!.adminToken,
    workerToken: o.workerToken ?? credentials!.workerToken,
    nodeId: o.nodeId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    logLevel: o.logLevel ?? DEFAULTS.logLevel,
    heartbeatMs: parseDuration(o.heartbeat ?? DEFAULTS.heartbeat, 'heartbeat', { min: 100 }),
    workerLeaseMs: parseDuration(o.workerLease ?? DEFAULTS.workerLease, 'workerLease', { min: 500 }),
    reaperIntervalMs: parseDuration(o.reaperInterval ?? DEFAULTS.reaperInterval, 'reaperInterval', {
      min: 50,
    }),
    pollWaitMs: parseDuration(o.pollWait ?? DEFAULTS.pollWait, 'pollWait', { min: 0, max: 120_000 }),
    resourceReserveAfterMs: parseDuration(
      o.resourceReserveAfter ?? DEFAULTS.resourceReserveAfter,
      'resourceReserveAfter',
      { min: 0, max: 86_400_000 },
    ),
    partitionLeaseMs: parseDuration(o.partitionLease ?? DEFAULTS.partitionLease, 'partitionLease', {
      min: 500,
    }),
    partitions,
    misfireGraceMs: parseDuration(o.misfireGrace ?? DEFAULTS.misfireGrace, 'misfireGrace'),
    fireAheadMs: parseDuration(o.fireAhead ?? DEFAULTS.fireAhead, 'fireAhead', { min: 0, max: 60_000 }),
    overloadAfterMs: parseDuration(o.overloadAfter ?? DEFAULTS.overloadAfter, 'overloadAfter', { min: 0 }),
    alertHistoryMs: parseDuration(o.alertHistory ?? DEFAULTS.alertHistory, 'alertHistory', {
      min: 3_600_000,
    }),
    retention: resolveRetention(o),
    adminUser: o.adminUser,
    adminPassword: o.adminPassword,
    secretKeys: Object.freeze(resolveSecretKeys(o)),
    oidc: resolveOidc(o),
    passwordLogin: o.passwordLogin ?? true,
    metricsToken: o.metricsToken,
  };
  if (
    config.metricsToken !== undefined &&
    (typeof config.metricsToken !== 'string' || config.metricsToken.length < 16)
  ) {
    throw new KairosError('VALIDATION_FAILED', 'metricsToken: expected a string of at least 16 characters');
  }
  if (typeof config.passwordLogin !== 'boolean') {
    throw new KairosError(
      'VALIDATION_FAILED',
      `passwordLogin: expected true or false, got ${o.passwordLogin}`,
    );
  }
  if (!config.passwordLogin && config.oidc === null) {
    throw new KairosError(
      'VALIDATION_FAILED',
      'passwordLogin: false needs single sign-on (oidcIssuer), or nobody could log in to the console',
    );
  }
  if ((config.adminUser === undefined) !== (config.adminPassword === undefined)) {
    throw new KairosError('VALIDATION_FAILED', 'adminUser and adminPassword go together');
  }
  if (config.workerLeaseMs <= config.heartbeatMs) {
    throw new KairosError('VALIDATION_FAILED', 'workerLease must be longer than heartbeat');
  }
  return Object.freeze(config);
}

export interface Credentials {
  adminToken: string;
  workerToken: string;
}

/** Reads `<dataDir>/credentials.json`, creating it with fresh random tokens the first time. */
export function loadCredentials(dataDir: string): Credentials {
  const path = join(dataDir, 'credentials.json');
  // A folder that holds credentials is Kairos's own: made private even when an older version made it.
  ensurePrivateDir(dataDir);
  if (existsSync(path)) {
    chmodSync(path, 0o600);
    return JSON.parse(readFileSync(path, 'utf8')) as Credentials;
  }
  const credentials: Credentials = {
    adminToken: `kairos_admin_${randomBytes(18).toString('base64url')}`,
    workerToken: `kairos_worker_${randomBytes(18).toString('base64url')}`,
  };
  writeFileSync(path, JSON.stringify(credentials, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return credentials;
}

/**
 * Makes the data folder private to this user (0700), creating it when missing: it holds the
 * credentials and, in embedded mode, the database.
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/** The secret keys from `secretKeys`, or else the key file; validated (32 bytes, unique ids). */
function resolveSecretKeys(o: KairosOptions): SecretKey[] {
  if (o.secretKeys !== undefined) return parseSecretKeys(o.secretKeys, 'secretKeys');
  if (o.secretKeyFile === undefined) return [];
  let text: string;
  try {
    text = readFileSync(o.secretKeyFile, 'utf8');
  } catch (error) {
    throw new KairosError(
      'VALIDATION_FAILED',
      `secretKeyFile ${o.secretKeyFile}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`,
    );
  }
  const keys = parseSecretKeys(text, `secretKeyFile ${o.secretKeyFile}`);
  if (keys.length === 0) {
    throw new KairosError('VALIDATION_FAILED', `secretKeyFile ${o.secretKeyFile}: no key in it`);
  }
  return keys;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The node's retention: every limit a duration from a minute to ten years, the interval 0 (off) to a day. */
function resolveRetention(o: KairosOptions): RetentionConfig {
  const age = (key: keyof typeof DEFAULTS & keyof KairosOptions, min = MIN_RUN_AGE_MS) =>
    parseDuration((o[key] as Duration | undefined) ?? (DEFAULTS[key] as Duration), key, {
      min,
      max: RETENTION_MAX_MS,
    });
  const batch = o.retentionBatch ?? DEFAULTS.retentionBatch;
  if (!Number.isInteger(batch) || batch < 1 || batch > 100_000) {
    throw new KairosError(
      'VALIDATION_FAILED',
      `retentionBatch: expected a whole number from 1 to 100000, got ${o.retentionBatch}`,
    );
  }
  const intervalMs = parseDuration(o.retentionInterval ?? DEFAULTS.retentionInterval, 'retentionInterval', {
    min: 0,
    max: 86_400_000,
  });
  if (intervalMs > 0 && intervalMs < 1000) {
    throw new KairosError('INVALID_DURATION', 'retentionInterval: expected 0 (off) or at least 1s', {
      field: 'retentionInterval',
    });
  }
  return Object.freeze({
    finishedMs: age('retentionFinished'),
    failedMs: age('retentionFailed'),
    skippedFiresMs: age('retentionSkippedFires'),
    auditMs: age('retentionAudit'),
    logsMs: age('retentionLogs'),
    workersMs: age('retentionWorkers'),
    intervalMs,
    batch,
  });
}

const OIDC_KEYS = [
  'oidcIssuer',
  'oidcClientId',
  'oidcClientSecret',
  'oidcRedirectUrl',
  'oidcScopes',
  'oidcRoleClaim',
  'oidcRoles',
  'oidcNameClaim',
  'oidcProviderName',
] as const;

/**
 * Single sign-on: null when `oidcIssuer` is unset (and then no other `oidc*` option may be set).
 * The issuer and redirect URL are https, or http on a loopback host (a provider on this machine).
 */
function resolveOidc(o: KairosOptions): OidcConfig | null {
  if (o.oidcIssuer === undefined) {
    const stray = OIDC_KEYS.filter((key) => o[key] !== undefined);
    if (stray.length > 0) {
      throw new KairosError('VALIDATION_FAILED', `${stray.join(', ')}: set oidcIssuer too, or none of them`);
    }
    return null;
  }
  const issuer = secureUrl(o.oidcIssuer, 'oidcIssuer');
  if (issuer.search || issuer.hash) {
    throw new KairosError('VALIDATION_FAILED', 'oidcIssuer: expected a URL without a query or fragment');
  }
  const redirect = secureUrl(o.oidcRedirectUrl, 'oidcRedirectUrl');
  if (redirect.hash)
    throw new KairosError('VALIDATION_FAILED', 'oidcRedirectUrl: expected a URL without a fragment');
  const text = (value: unknown, key: string, fallback?: string): string => {
    const given = value ?? fallback;
    if (typeof given !== 'string' || given.trim() === '') {
      throw new KairosError('VALIDATION_FAILED', `${key}: expected a non-empty string`);
    }
    return given.trim();
  };
  const scopes = text(o.oidcScopes, 'oidcScopes', 'openid profile email').split(/\s+/);
  if (!scopes.includes('openid')) {
    throw new KairosError(
      'VALIDATION_FAILED',
      `oidcScopes: expected openid among them, got ${scopes.join(' ')}`,
    );
  }
  if (o.oidcRoles === undefined) {
    throw new KairosError(
      'VALIDATION_FAILED',
      'oidcRoles: expected the role of each claim value, such as kairos-admins=admin,kairos-ops=operator,*=viewer',
    );
  }
  return Object.freeze({
    // The issuer as written (openid-client compares it with the discovered one, trailing slash included).
    issuer: o.oidcIssuer,
    clientId: text(o.oidcClientId, 'oidcClientId'),
    clientSecret: o.oidcClientSecret === undefined ? undefined : text(o.oidcClientSecret, 'oidcClientSecret'),
    redirectUrl: redirect.href,
    scopes: scopes.join(' '),
    roleClaim: text(o.oidcRoleClaim, 'oidcRoleClaim', 'groups'),
    roles: Object.freeze(parseRoleRules(o.oidcRoles)),
    nameClaim: text(o.oidcNameClaim, 'oidcNameClaim', 'preferred_username'),
    providerName: text(o.oidcProviderName, 'oidcProviderName', 'SSO'),
  });
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** An absolute https URL, or http on a loopback host. */
function secureUrl(value: unknown, key: string): URL {
  let url: URL;
  try {
    url = new URL(String(value ?? ''));
  } catch {
    throw new KairosError(
      'VALIDATION_FAILED',
      `${key}: expected an absolute URL, got ${JSON.stringify(value ?? '')}`,
    );
  }
  if (url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname))) return url;
  throw new KairosError(
    'VALIDATION_FAILED',
    `${key}: expected https (http only on localhost), got ${url.href}`,
  );
}
