import { afterAll } from 'vitest';
import { describeWorkflowReview } from '../../../test/conformance/workflow-review.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from '../../../test/test-database.ts';
import { PostgresStore } from './postgres-store.ts';

afterAll(dropTestSchemas);
describeWorkflowReview(
  'postgres',
  async () => new PostgresStore({ connectionString: testDatabaseUrl(), schema: testSchema() }),
);
