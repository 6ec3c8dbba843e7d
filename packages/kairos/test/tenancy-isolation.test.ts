import { randomBytes } from 'node:crypto';
import { KairosClient } from '@kairos/client';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config.ts';
import { type KairosNode, startNode } from '../src/node.ts';
import { PostgresStore } from '../src/store/postgres/postgres-store.ts';
import { dropTestSchemas, testDatabaseUrl, testSchema } from '../src/store/postgres/test-database.ts';
import type { Store } from '../src/store/store.ts';
import { tempDir } from './helpers.ts';

/**
 * A caller of one namespace neither reads nor changes another's, nor gains a role outside its own
 * (docs/tenancy.md, docs/security.md): cases beside the role matrix of access.test.ts, on a real
 * node over SQLite and over PostgreSQL.
 */

describe.each(['sqlite', 'postgres'] as const)('on %s', (dialect) => {
  let node: KairosNode;
  let store: Store | undefined;
  /** The config's admin token: a global admin, in `default` unless told otherwise. */
  let admin: KairosClient;
  /** The config's admin token in namespace `red`. */
  let redAdmin: KairosClient;

  beforeAll(async () => {
    store =
      dialect === 'postgres'
        ? new PostgresStore({ connectionString: testDatabaseUrl(), schema: testSchema() })
        : undefined;
    const config = resolveConfig(
      {
        port: 0,
        dataDir: tempDir(),
        adminToken: 'admin-t',
        workerToken: 'worker-t',
        secretKeys: `k1:${randomBytes(32).toString('base64')}`,
      },
      {},
    );
    node = await startNode(config, { logger: pino({ level: 'silent' }), ...(store ? { store } : {}) });
    admin = new KairosClient({ url: node.url, token: 'admin-t' });
    redAdmin = new KairosClient({ url: node.url, token: 'admin-t', namespace: 'red' });
    await admin.createNamespace({ name: 'red' });
  });
  afterAll(async () => {
    await node.stop();
    await store?.close();
  });

  it("a preview in one namespace does not read another namespace's calendar", async () => {
    // `default` keeps a calendar that excludes every Monday; `red` previews a schedule naming it.
    await admin.createCalendar({ name: 'default-mondays', weekdays: [1] });
    const { token } = await redAdmin.createToken({ name: 'red-viewer', role: 'viewer' });
    const redViewer = new KairosClient({ url: node.url, token, namespace: 'red' });
    const request = {
      trigger: { kind: 'cron' as const, cron: '0 12 * * *', timezone: 'UTC' },
      schedule: { calendars: ['default-mondays'] },
      from: '2030-01-05T00:00:00Z',
      count: 3,
    };
    // In its own namespace the calendar skips Monday 7 January.
    expect((await admin.preview(request)).skipped).toEqual([
      { fireTime: '2030-01-07T12:00:00.000Z', reason: 'calendar' },
    ]);
    // In `red` it is as unknown as a calendar that does not exist: nothing of it shows.
    const fromRed = await redViewer.preview(request);
    const unknown = await redViewer.preview({ ...request, schedule: { calendars: ['no-such-calendar'] } });
    expect(fromRed).toEqual(unknown);
    expect(fromRed.skipped).toEqual([]);
  });
});

afterAll(dropTestSchemas);
