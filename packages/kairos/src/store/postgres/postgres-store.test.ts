import { afterAll } from 'vitest';
import { describeStoreConformance } from '../conformance.ts';
import { PostgresStore } from './postgres-store.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

afterAll(dropTestSchemas);

// The real PostgreSQL of the machine, a schema of its own per test.
describeStoreConformance(
  'postgres',
  async () => new PostgresStore({ connectionString: testDatabaseUrl(), schema: testSchema() }),
);
