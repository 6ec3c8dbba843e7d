import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../../test/helpers.ts';
import * as retention from './retention.ts';
import { SqliteStore } from './sqlite-store.ts';

const path = join(tempDir(), 'retention-plans.db');
let db: Database.Database;

beforeAll(async () => {
  const store = new SqliteStore(path);
  await store.migrate();
  await store.close();
  db = new Database(path);
});
afterAll(() => db?.close());

function plan(sql: string, params: unknown[] | Record<string, unknown>): string[] {
  const statement = db.prepare(`EXPLAIN QUERY PLAN ${sql}`);
  const rows = (Array.isArray(params) ? statement.all(...params) : statement.all(params)) as Array<{
    detail: string;
  }>;
  const out = rows.map((row) => row.detail);
  if (process.env.SHOW_PLANS) console.log(out);
  return out;
}

// Each batch of the pruner is a range of an index, whatever the size of the table.
describe('SQLite: the pruner’s statements read ranges of indexes', () => {
  it('the age pass: a range of runs_finished, a probe of runs_job per run, each job by id', () => {
    const details = plan(retention.RUNS_TO_PRUNE, { until: 0, at: 0, id: 0, limit: 10 });
    expect(details).toEqual(
      expect.arrayContaining([
        'SEARCH r USING INDEX runs_finished (finished_at>? AND finished_at<?)',
        'SEARCH j USING INTEGER PRIMARY KEY (rowid=?)',
        'SEARCH n USING INDEX runs_job (job_id=? AND id>?)',
      ]),
    );
    expect(details.filter((d) => /^SCAN/.test(d) || /TEMP B-TREE/.test(d))).toEqual([]);
    expect(details[0]).toBe('SEARCH r USING INDEX runs_finished (finished_at>? AND finished_at<?)');
  });

  it('the job pass: runs_job from the id after, and from the newest for the id kept from', () => {
    const job = plan(retention.JOB_RUNS, { job: 1, after: 0, limit: 10 });
    expect(job).toContain('SEARCH runs USING INDEX runs_job (job_id=? AND id>?)');
    expect(job.filter((d) => /^SCAN|TEMP B-TREE/.test(d))).toEqual([]);
    expect(plan(retention.KEEP_FROM, [1, 0])).toEqual(['SEARCH runs USING INDEX runs_job (job_id=?)']);
  });

  it('deletes by id, and the ledger and the audit log by their time indexes', () => {
    // The cascade to attempts, logs, log state and progress: each by its key, leading with run_id.
    expect(plan(retention.DELETE_FINISHED_RUNS, ['[]'])).toEqual(
      expect.arrayContaining([
        'SEARCH runs USING INTEGER PRIMARY KEY (rowid=?)',
        'SEARCH run_progress USING INTEGER PRIMARY KEY (rowid=?)',
        'SEARCH run_log_state USING INTEGER PRIMARY KEY (rowid=?)',
        'SEARCH run_logs USING COVERING INDEX sqlite_autoindex_run_logs_1 (run_id=?)',
        'SEARCH attempts USING PRIMARY KEY (run_id=?)',
      ]),
    );
    expect(plan(retention.PRUNE_SKIPPED_FIRES, [0, 10])).toContain(
      'SEARCH skipped_fires USING COVERING INDEX skipped_fires_recorded (recorded_at<?)',
    );
    expect(plan(retention.PRUNE_AUDIT_LOG, [0, 10])).toContain(
      'SEARCH audit_log USING COVERING INDEX audit_log_at (at<?)',
    );
  });
  it('workflow instances: a range of workflow_instances_finished, their steps and items by key', () => {
    const read = plan(retention.INSTANCES_TO_PRUNE, { until: 0, at: 0, id: 0, limit: 10 });
    expect(read[0]).toBe(
      'SEARCH i USING INDEX workflow_instances_finished (finished_at>? AND finished_at<?)',
    );
    expect(read.filter((d) => /^SCAN|TEMP B-TREE/.test(d))).toEqual([]);
    const items = plan(retention.PRUNE_MAP_ITEMS, ['[]', 10]);
    expect(items.filter((d) => /^SCAN (m|i|workflow)|TEMP B-TREE/.test(d))).toEqual([]);
    const instances = plan(retention.DELETE_ENDED_INSTANCES, ['[]']);
    expect(instances.filter((d) => /^SCAN (m|workflow)/.test(d))).toEqual([]);
    // The guard on step runs of unfinished instances: a probe of the instance by its key.
    expect(plan(retention.DELETE_FINISHED_RUNS, ['[]'])).toContain(
      'SEARCH wi USING INTEGER PRIMARY KEY (rowid=?)',
    );
  });
});
