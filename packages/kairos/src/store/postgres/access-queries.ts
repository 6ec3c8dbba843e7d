// Runtime SQL of the access part of the PostgreSQL store: users, sessions, API tokens, audit log,
// console counts. One statement per constant; parameters are listed in each header.

/** Serializes changes that could remove the last admin user (two deletes in parallel). */
export const ADMIN_LOCK = 7_245_100_005;

/** Inserts a user. $1 name, $2 role, $3 password hash, $4 now. */
export const CREATE_USER = `
  INSERT INTO users (name, role, password_hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
  RETURNING *`;

/** Changes role and/or password. $1 role or null, $2 password hash or null, $3 now, $4 name. */
export const UPDATE_USER = `
  UPDATE users SET role = coalesce($1, role), password_hash = coalesce($2, password_hash), updated_at = $3
  WHERE name = $4 RETURNING *`;

/**
 * Signs in an external user: found by (issuer, subject), never by name; their name and role are the
 * provider's now. A name held by another user violates users.name's UNIQUE constraint.
 * $1 name, $2 role, $3 password hash (`external`), $4 issuer, $5 subject, $6 now.
 */
export const UPSERT_EXTERNAL_USER = `
  INSERT INTO users (name, role, password_hash, issuer, subject, created_at, updated_at)
  VALUES ($1, $2, $3, $4, $5, $6, $6)
  ON CONFLICT (issuer, subject) DO UPDATE SET name = excluded.name, role = excluded.role, updated_at = excluded.updated_at
  RETURNING *`;

/** A session with its user, unless expired. $1 id hash, $2 now. */
export const GET_SESSION = `
  SELECT s.id_hash, s.user_id, s.csrf_token, s.created_at AS s_created_at, s.expires_at,
    u.id, u.name, u.role, u.password_hash, u.issuer, u.subject, u.created_at, u.updated_at
  FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1 AND s.expires_at > $2`;

/** Inserts a session. $1 id hash, $2 user id, $3 csrf token, $4 now, $5 expiry. */
export const CREATE_SESSION = `
  INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`;

/** Records a login under way at the provider. $1 id hash, $2 state, $3 nonce, $4 code verifier, $5 now, $6 expiry. */
export const CREATE_OIDC_LOGIN = `
  INSERT INTO oidc_logins (id_hash, state, nonce, code_verifier, created_at, expires_at)
  VALUES ($1, $2, $3, $4, $5, $6)`;

/** Takes a login under way: deleted whether or not it expired, answered only when it did not. $1 id hash. */
export const TAKE_OIDC_LOGIN = `
  DELETE FROM oidc_logins WHERE id_hash = $1 RETURNING *`;

/** Inserts an API token. $1 name, $2 hash, $3 role, $4 groups (jsonb text or null), $5 created by, $6 now, $7 namespace. */
export const CREATE_API_TOKEN = `
  INSERT INTO api_tokens (name, token_hash, role, groups, created_by, created_at, namespace)
  VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7) RETURNING *`;

/** Appends one audit entry. $1 at, $2 actor, $3 action, $4 target, $5 details (jsonb text), $6 namespace. */
export const APPEND_AUDIT = `
  INSERT INTO audit_log (at, actor, action, target, details, namespace) VALUES ($1, $2, $3, $4, $5::jsonb, $6)`;

/**
 * Appends one audit entry in a transaction of its own that does not wait for its WAL flush
 * (asynchronous commit, for this transaction only): the entry of a change that the API committed in
 * an earlier transaction, which a crash between the two may lose anyway (server/audit.ts). A crash
 * within the next WAL writer round may lose it too; the change stays. $1..$6 as APPEND_AUDIT.
 */
export const APPEND_AUDIT_AFTER = `
  WITH async AS (SELECT set_config('synchronous_commit', 'off', true))
  INSERT INTO audit_log (at, actor, action, target, details, namespace)
  SELECT $1::bigint, $2::text, $3::text, $4::text, $5::jsonb, $6::text FROM async`;

/** Audit entries newest first. $1 before id or null, $2 limit, $3 namespaces or null (all). */
export const LIST_AUDIT = `
  SELECT * FROM audit_log WHERE ($1::bigint IS NULL OR id < $1) AND ($3::text[] IS NULL OR namespace = ANY($3::text[]))
  ORDER BY id DESC LIMIT $2`;

/**
 * The overview's counts in one round trip. $1 since, $2 now, $3 namespace (null: all; the namespace
 * is a filter on the rows each index range finds).
 * Each branch is an index range: runs_status (or the runs_claim partial index) for running and
 * queued, runs_finished for ended runs. 300 000 runs, 1 000 ended in the window: 5 ms.
 */
export const OVERVIEW_COUNTS = `
  SELECT 'running' AS kind, count(*) AS n FROM runs WHERE status = 'running' AND ($3::text IS NULL OR namespace = $3)
  UNION ALL SELECT 'queued', count(*) FROM runs WHERE status = 'queued' AND ($3::text IS NULL OR namespace = $3)
  UNION ALL SELECT 'ended:' || status, count(*) FROM runs
    WHERE finished_at >= $1 AND ($3::text IS NULL OR namespace = $3) GROUP BY status
  UNION ALL SELECT 'workers', count(*) FROM workers WHERE status IN ('active', 'draining') AND lease_expires_at > $2
    AND ($3::text IS NULL OR namespace = $3)
  UNION ALL SELECT 'nodes', count(*) FROM nodes WHERE expires_at > $2`;

/**
 * Runs ended since $1 (of namespace $2, null: all), by minute and status: a range scan of
 * runs_finished (2 ms for 1 000 of 300 000 runs).
 */
export const RUNS_PER_MINUTE = `
  SELECT (finished_at / 60000) * 60000 AS minute, status, count(*) AS count
  FROM runs WHERE finished_at >= $1 AND ($2::text IS NULL OR namespace = $2) GROUP BY 1, 2 ORDER BY 1, 2`;

/**
 * Lateness of scheduled runs whose first attempt started in [$1, $2], newest $3: ended first attempts
 * by a backward range scan of attempts_first_start, each joined to its run by primary key, and first
 * attempts still running (they have no attempt row yet) from their runs, which are few.
 */
export const FIRE_LATENESS = `
  SELECT late FROM (
    (SELECT a.started_at AS started, a.started_at - r.fire_time AS late
      FROM attempts a JOIN runs r ON r.id = a.run_id
      WHERE a.attempt = 1 AND a.started_at >= $1 AND a.started_at <= $2
        AND r.cause = 'schedule' AND r.fire_time IS NOT NULL
      ORDER BY a.started_at DESC LIMIT $3)
    UNION ALL
    SELECT started_at, started_at - fire_time FROM runs
    WHERE status = 'running' AND attempt = 1 AND started_at >= $1 AND started_at <= $2
      AND cause = 'schedule' AND fire_time IS NOT NULL) first_starts
  ORDER BY started DESC LIMIT $3`;

/**
 * Queued runs by group, job and handler, the largest counts first. $1 now, $2 limit.
 * The count is an ordered pass over runs_queued_by_job (group, job, handler, available_at), which
 * holds every column it reads; live workers are few and read once. Runs with a request of their
 * own (workflow steps) are counted by request through runs_queued_requests, which holds only them.
 */
export const QUEUED_RUN_COUNTS = `
  WITH queued AS (
    SELECT group_name, job_id, handler, count(*) AS queued,
      min(available_at) FILTER (WHERE available_at <= $1) AS oldest
    FROM runs WHERE status = 'queued'
    GROUP BY group_name, job_id, handler
    ORDER BY count(*) DESC, group_name, job_id, handler LIMIT $2),
  live AS (SELECT namespace, group_name, handlers FROM workers WHERE status = 'active' AND lease_expires_at > $1)
  SELECT j.namespace, q.group_name, j.name AS job_name, q.handler, q.queued, q.oldest,
    j.dispatch->'resources' AS resources,
    (SELECT jsonb_agg(jsonb_build_object('resources', o.resources, 'queued', o.n))
      FROM (SELECT r.resources, count(*) AS n FROM runs r
        WHERE r.status = 'queued' AND r.resources IS NOT NULL AND r.group_name = q.group_name
          AND r.job_id = q.job_id AND r.handler = q.handler
        GROUP BY r.resources) o) AS own_requests,
    EXISTS (SELECT 1 FROM live l WHERE l.namespace = j.namespace AND l.group_name = q.group_name) AS group_served,
    EXISTS (SELECT 1 FROM live l WHERE l.namespace = j.namespace AND l.group_name = q.group_name
      AND l.handlers ? q.handler) AS handler_served
  FROM queued q JOIN jobs j ON j.id = q.job_id
  ORDER BY j.namespace, q.group_name, j.name, q.handler`;
