import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KairosError } from '../errors.ts';

/**
 * Migrations are expand or contract steps (docs/operations.md, "Upgrades and backups"):
 * - `expand` adds (a table, a nullable or defaulted column, an index): every older code that ran on
 *   the schema before keeps running on it after.
 * - `contract` removes or changes what code reads or writes (drops a column, changes what a row
 *   means): code older than its `oldest code` no longer works on the schema after it. It ships
 *   only in a release after the one whose code stopped using what it removes, so `oldest code` is
 *   an earlier release than its own: nodes of the previous release keep running while a cluster
 *   is upgraded node by node.
 * Each file declares its step in its first line:
 * `-- migration: expand; release: 0.2.0` or `-- migration: contract; release: 0.3.0; oldest code: 0.2.0`.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
  step: 'expand' | 'contract';
  /** The code release that first ships it. */
  release: string;
  /** The oldest code release that works on the schema after it: a contract's own, an expand's none. */
  oldestCode: string | null;
}

const HEADER =
  /^-- migration: (expand|contract); release: (\d+\.\d+\.\d+)(?:; oldest code: (\d+\.\d+\.\d+))?\s*$/;

/** The numbered `.sql` migrations of a dialect (`<dialect>/migrations/0001_name.sql`), in order. Forward only. */
export function readMigrations(dialect: 'sqlite' | 'postgres'): Migration[] {
  const dir = fileURLToPath(new URL(`./${dialect}/migrations/`, import.meta.url));
  return readdirSync(dir)
    .filter((file) => /^\d{4}_[a-z0-9_]+\.sql$/.test(file))
    .sort()
    .map((file) => parseMigration(file, readFileSync(dir + file, 'utf8')));
}

/** A migration file with its declaration; a file without a valid first line is refused. */
export function parseMigration(file: string, sql: string): Migration {
  const header = HEADER.exec(sql.split('\n', 1)[0] ?? '');
  if (!header || (header[1] === 'contract') !== (header[3] !== undefined))
    throw new Error(
      `migration ${file} must start with "-- migration: expand; release: X.Y.Z" or ` +
        `"-- migration: contract; release: X.Y.Z; oldest code: X.Y.Z"`,
    );
  return {
    version: Number(file.slice(0, 4)),
    name: file,
    sql,
    step: header[1] as Migration['step'],
    release: header[2]!,
    oldestCode: header[3] ?? null,
  };
}

/** Orders `major.minor.patch` versions: negative, 0 or positive as `a` is older, the same, newer. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The one row of `schema_meta`: what the node that migrated last wrote. */
export interface SchemaMeta {
  /** The highest migration applied. */
  schemaVersion: number;
  /** The oldest code version that may run on the schema. */
  minCodeVersion: string;
  /** The code version of the node that applied the last migration. */
  migratedBy: string;
}

/** The newest of some versions; undefined for none. */
function newest(versions: readonly string[]): string | undefined {
  return versions.reduce<string | undefined>(
    (a, b) => (a === undefined || compareVersions(b, a) > 0 ? b : a),
    undefined,
  );
}

/**
 * The oldest code version that works on a schema with all of `migrations` applied: the newest
 * `oldest code` of its contract steps, and never older than the release of its first migration.
 */
export function minCodeVersion(migrations: readonly Migration[]): string {
  return (
    newest([
      ...migrations.slice(0, 1).map((m) => m.release),
      ...migrations.flatMap((m) => (m.oldestCode ? [m.oldestCode] : [])),
    ]) ?? '0.0.0'
  );
}

/**
 * What a node of `codeVersion` does with a store: apply the migrations it has that the store lacks
 * (and write `schema_meta`), or, when the store has migrations this code does not know (a newer
 * node migrated it), run on it unchanged if the schema still supports this code, and refuse
 * (SCHEMA_UNSUPPORTED) if not. Pure: the dialects read `applied` and `meta` under their migration
 * lock and act on the plan in the same transaction.
 */
export function planMigrations(input: {
  known: readonly Migration[];
  applied: readonly number[];
  meta: SchemaMeta | null;
  codeVersion: string;
  /** Other nodes alive on the store (cluster mode), with their code versions. */
  liveNodes?: ReadonlyArray<{ id: string; version: string }>;
}): { pending: Migration[]; meta: SchemaMeta | null } {
  const { known, applied, meta, codeVersion, liveNodes = [] } = input;
  const knownVersions = new Set(known.map((m) => m.version));
  const appliedVersions = new Set(applied);
  const unknown = applied.filter((v) => !knownVersions.has(v)).sort((a, b) => a - b);
  const pending = known.filter((m) => !appliedVersions.has(m.version));
  if (unknown.length === 0) {
    if (pending.length === 0 && meta !== null) return { pending, meta: null };
    // A contract step would break nodes still running code older than it keeps working for.
    const needed = newest(pending.flatMap((m) => (m.oldestCode ? [m.oldestCode] : [])));
    const behind = needed ? liveNodes.filter((n) => compareVersions(n.version, needed) < 0) : [];
    if (needed && behind.length > 0)
      throw new KairosError(
        'SCHEMA_UNSUPPORTED',
        `this node (${codeVersion}) would migrate the store to a schema that needs Kairos ${needed} or newer, ` +
          `while older nodes still run on it (${behind.map((n) => `${n.id} at ${n.version}`).join(', ')}): ` +
          `upgrade every node to ${needed} first, one release at a time`,
        { codeVersion, minCodeVersion: needed, nodes: behind.map((n) => ({ ...n })) },
      );
    return {
      pending,
      meta: {
        schemaVersion: Math.max(0, ...known.map((m) => m.version)),
        minCodeVersion: minCodeVersion(known),
        migratedBy: codeVersion,
      },
    };
  }
  const schemaVersion = Math.max(...applied);
  const needs = meta?.minCodeVersion ?? 'a newer version';
  const by = meta ? ` (migrated by ${meta.migratedBy})` : '';
  if (!meta || compareVersions(meta.minCodeVersion, codeVersion) > 0)
    throw new KairosError(
      'SCHEMA_UNSUPPORTED',
      `the store's schema is version ${schemaVersion}${by} and needs Kairos ${needs} or newer; this node ` +
        `is ${codeVersion} and knows schema versions up to ${Math.max(0, ...knownVersions)}: run this node ` +
        `at ${needs} or newer (to go back to ${codeVersion}, restore the backup taken before the upgrade)`,
      {
        schemaVersion,
        minCodeVersion: meta?.minCodeVersion ?? null,
        codeVersion,
        unknownMigrations: unknown,
      },
    );
  if (pending.length > 0)
    throw new KairosError(
      'SCHEMA_UNSUPPORTED',
      `the store's schema is version ${schemaVersion}${by} but lacks migrations this node (${codeVersion}) ` +
        `needs (${pending.map((m) => m.name).join(', ')}): its migrations differ from this code's; ` +
        `run this node at the version that migrated the store`,
      {
        schemaVersion,
        codeVersion,
        unknownMigrations: unknown,
        missingMigrations: pending.map((m) => m.name),
      },
    );
  return { pending: [], meta: null };
}
