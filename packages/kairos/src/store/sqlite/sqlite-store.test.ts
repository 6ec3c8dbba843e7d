import { join } from 'node:path';
import { tempDir } from '../../../test/helpers.ts';
import { describeStoreConformance } from '../conformance.ts';
import { SqliteStore } from './sqlite-store.ts';

const dir = tempDir();
let n = 0;

// A real SQLite file per test, in WAL mode, as the embedded node runs it.
describeStoreConformance('sqlite', async () => new SqliteStore(join(dir, `store-${n++}.db`)));
