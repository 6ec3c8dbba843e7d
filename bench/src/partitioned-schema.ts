// The runs table and its child tables turned into range partitions by run id, on a database that
// Kairos's own migrations just made (empty), for `bench:prune` (prune-strategies.ts). Nothing in
// Kairos uses this: it is the schema a retention by dropping partitions would need, measured before
// deciding whether to build it (docs/retention.md, "Batched deletes or partitions").
//
// Why the run id, not a time column, is the partition key: every primary key and every ON CONFLICT
// target of these tables already contains the run id (runs.id; attempts, run_logs, late_reports by
// (run_id, …); run_log_state, run_progress by run_id), so every statement Kairos runs works unchanged
// and a statement by run id touches one partition. Partitions still follow time: each slot of time
// (20 s in the benchmark, an hour or a day in production) owns a range of SLOT_IDS ids, and at the start of a slot the runs id sequence is
// moved to its range (see `advanceSequence`), so the runs created in a slot land in its partition.
//
// What it costs the schema (listed in docs/retention.md):
// - A unique index must contain the partition key: `runs_fire (job_id, fire_time, shard)` and
//   `runs_idempotency (job_id, idempotency_key)` become plain indexes here, so exactly-once firing
//   would need its own table keyed by the fire (partitioned by fire time, or pruned by deletes).
// - Foreign keys between the tables are dropped: a partition of runs goes with the same range of
//   each child table (the cascade is the drop), not row by row.
import type pg from 'pg';

/** Ids one time slot owns: 10^7 (≈ 166,000 runs a second in a 1-minute slot; ids stay < 2^53). */
export const SLOT_IDS = 10_000_000;

/** The tables partitioned, children first (the order they are detached in), with their key. */
export const PARTITIONED: ReadonlyArray<{ table: string; key: string }> = [
  { table: 'late_reports', key: 'run_id' },
  { table: 'run_progress', key: 'run_id' },
  { table: 'run_log_state', key: 'run_id' },
  { table: 'run_logs', key: 'run_id' },
  { table: 'attempts', key: 'run_id' },
  { table: 'runs', key: 'id' },
];

const names = PARTITIONED.map((p) => p.table);

/** Rewrites the empty tables of {@link PARTITIONED} as partitioned tables; answers what it changed. */
export async function partitionRunTables(db: pg.Client): Promise<string[]> {
  const notes: string[] = [];
  // Foreign keys that point at one of the tables, from anywhere.
  const fks = await db.query<{ name: string; owner: string }>(
    `SELECT c.conname AS name, c.conrelid::regclass::text AS owner FROM pg_constraint c
     WHERE c.contype = 'f' AND c.confrelid::regclass::text = ANY($1)`,
    [names],
  );
  for (const fk of fks.rows) {
    await db.query(`ALTER TABLE ${fk.owner} DROP CONSTRAINT ${fk.name}`);
    notes.push(`dropped foreign key ${fk.owner}.${fk.name}`);
  }
  const seq = (await db.query<{ seq: string }>(`SELECT pg_get_serial_sequence('runs', 'id') AS seq`)).rows[0]!
    .seq;
  await db.query(`ALTER SEQUENCE ${seq} OWNED BY NONE`);
  for (const { table, key } of PARTITIONED) {
    const indexes = await db.query<{ name: string; def: string; unique: boolean; primary: boolean }>(
      `SELECT i.relname AS name, pg_get_indexdef(x.indexrelid) AS def, x.indisunique AS unique, x.indisprimary AS primary
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = $1::regclass`,
      [table],
    );
    const constraints = await db.query<{ name: string; def: string; type: string }>(
      `SELECT conname AS name, pg_get_constraintdef(oid) AS def, contype AS type FROM pg_constraint
       WHERE conrelid = $1::regclass AND contype IN ('p', 'u', 'f', 'c')`,
      [table],
    );
    const triggers = await db.query<{ def: string; name: string; enabled: string }>(
      `SELECT pg_get_triggerdef(oid) AS def, tgname AS name, tgenabled AS enabled FROM pg_trigger
       WHERE tgrelid = $1::regclass AND NOT tgisinternal`,
      [table],
    );
    await db.query(
      `CREATE TABLE ${table}_partitioned (LIKE ${table} INCLUDING DEFAULTS INCLUDING GENERATED) PARTITION BY RANGE (${key})`,
    );
    await db.query(`DROP TABLE ${table}`);
    await db.query(`ALTER TABLE ${table}_partitioned RENAME TO ${table}`);
    for (const c of constraints.rows) {
      if (c.type === 'f' && names.some((n) => new RegExp(`REFERENCES ${n}\\(`).test(c.def))) continue;
      await db.query(`ALTER TABLE ${table} ADD CONSTRAINT ${c.name} ${c.def}`);
    }
    const byConstraint = new Set(constraints.rows.map((c) => c.name));
    for (const index of indexes.rows) {
      if (byConstraint.has(index.name)) continue;
      const columns = /\(([^)]*)\)/.exec(index.def.slice(index.def.indexOf(' USING ')))?.[1] ?? '';
      const hasKey = columns.split(',').some((column) => column.trim().split(' ')[0] === key);
      if (index.unique && !hasKey) {
        await db.query(index.def.replace('CREATE UNIQUE INDEX', 'CREATE INDEX'));
        notes.push(`${table}.${index.name} is no longer unique (it lacks the partition key ${key})`);
      } else {
        await db.query(index.def);
      }
    }
    for (const trigger of triggers.rows) {
      await db.query(trigger.def);
      if (trigger.enabled === 'D') await db.query(`ALTER TABLE ${table} DISABLE TRIGGER ${trigger.name}`);
    }
  }
  await db.query(`ALTER SEQUENCE ${seq} OWNED BY runs.id`);
  return notes;
}

/** Partitions of slot `slot` (ids [slot·SLOT_IDS, (slot+1)·SLOT_IDS)), made apart and then attached:
 * `CREATE TABLE … PARTITION OF` would take an ACCESS EXCLUSIVE lock on the parent, ATTACH takes
 * SHARE UPDATE EXCLUSIVE, and the CHECK spares it a scan (the new table is empty anyway). */
export async function addSlot(db: pg.Client, slot: number): Promise<void> {
  const from = slot * SLOT_IDS;
  const to = from + SLOT_IDS;
  for (const { table, key } of [...PARTITIONED].reverse()) {
    const part = `${table}_s${slot}`;
    await db.query(`CREATE TABLE ${part} (LIKE ${table} INCLUDING DEFAULTS INCLUDING GENERATED)`);
    await db.query(
      `ALTER TABLE ${part} ADD CONSTRAINT ${part}_range CHECK (${key} >= ${from} AND ${key} < ${to})`,
    );
    await db.query(`ALTER TABLE ${table} ATTACH PARTITION ${part} FOR VALUES FROM (${from}) TO (${to})`);
    await db.query(`ALTER TABLE ${part} DROP CONSTRAINT ${part}_range`);
  }
}

/** Detaches (CONCURRENTLY: the hot path's statements never wait behind it) and drops every table of
 * slot `slot`, children first. */
export async function dropSlot(db: pg.Client, slot: number): Promise<void> {
  for (const { table } of PARTITIONED) {
    await db.query(`ALTER TABLE ${table} DETACH PARTITION ${table}_s${slot} CONCURRENTLY`);
    await db.query(`DROP TABLE ${table}_s${slot}`);
  }
}

/** Moves the runs id sequence to the start of `slot` unless it is already past it. */
export async function advanceSequence(db: pg.Client, slot: number): Promise<void> {
  await db.query(
    `SELECT setval(pg_get_serial_sequence('runs', 'id'), $1, false)
     WHERE (SELECT last_value FROM runs_id_seq) < $1`,
    [slot * SLOT_IDS],
  );
}

/** Slots that have partitions now. */
export async function slots(db: pg.Client): Promise<number[]> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'runs'::regclass`,
  );
  return rows.map((r) => Number(r.name.slice('runs_s'.length))).sort((a, b) => a - b);
}
