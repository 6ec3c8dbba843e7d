import pg from 'pg';
import { decideOutcome } from '../src/core/outcome.ts';
import type { AttemptOutcome } from '../src/store/store.ts';

const created: string[] = [];
let counter = 0;

/** The PostgreSQL that tests use: `KAIROS_TEST_DATABASE_URL`, or the machine's local server. */
export function testDatabaseUrl(): string {
  return process.env.KAIROS_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
}

/** A fresh schema name for one store under test; {@link dropTestSchemas} removes them all. */
export function testSchema(prefix = 'kairos_test'): string {
  const name = `${prefix}_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  created.push(name);
  return name;
}

export async function dropTestSchemas(): Promise<void> {
  if (created.length === 0) return;
  const client = new pg.Client({ connectionString: testDatabaseUrl() });
  await client.connect();
  try {
    for (const schema of created.splice(0)) await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/**
 * The outcome of a run's first and only attempt, succeeded with a null result at `now`, for the race
 * tests that end runs by hand; `workerId` binds the report to the worker that holds the run.
 */
export function succeededOutcome(runId: number, now: number, workerId?: string): AttemptOutcome {
  const retry = {
    maxAttempts: 1,
    backoff: 'fixed' as const,
    delay: 0,
    maxDelay: 0,
    jitter: false,
    nonRetryable: [],
  };
  return {
    ...decideOutcome(retry, 1, { kind: 'succeeded', result: null }, now, 0),
    runId,
    attempt: 1,
    group: 'default',
    ...(workerId === undefined ? {} : { workerId }),
  };
}
