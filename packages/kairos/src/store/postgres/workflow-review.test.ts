import { afterAll } from 'vitest';
import { describeWorkflowReview } from '../workflow-review.ts';
import { PostgresStore } from './postgres-store.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from './test-database.ts';

afterAll(dropTestSchemas);
describeWorkflowReview(
  'postgres',
  async () => new PostgresStore({ connectionString: testDatabaseUrl(), schema: testSchema() }),
);
