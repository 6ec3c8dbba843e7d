import { join } from 'node:path';
import { tempDir } from '../../../test/helpers.ts';
import { describeWorkflowReview } from '../workflow-review.ts';
import { SqliteStore } from './sqlite-store.ts';

const dir = tempDir();
let n = 0;
describeWorkflowReview('sqlite', async () => new SqliteStore(join(dir, `review-${n++}.db`)));
