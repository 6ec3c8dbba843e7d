-- migration: expand; release: 0.2.0
-- Who registered the worker (the token's actor: `worker-token`, `token:<name>`): only that token (or
-- the admin token) may heartbeat, poll, report, send logs and unregister as this worker. Empty for
-- workers registered before: any worker token may act for them, as before.
ALTER TABLE workers ADD COLUMN registered_by TEXT NOT NULL DEFAULT '';
