import { join } from 'node:path';
import { describeWorkflowReview } from '../../../test/conformance/workflow-review.ts';
import { tempDir } from '../../../test/helpers.ts';
import { SqliteStore } from './sqlite-store.ts';

const dir = tempDir();
let n = 0;
describeWorkflowReview('sqlite', async () => new SqliteStore(join(dir, `review-${n++}.db`)));
