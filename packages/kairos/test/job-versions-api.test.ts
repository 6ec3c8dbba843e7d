import type { KairosClient } from '@kairos/client';
import { beforeAll, describe, expect, it } from 'vitest';
import type { KairosNode } from '../src/node.ts';
import { apiError, startTestNode } from './helpers.ts';

let node: KairosNode;
let admin: KairosClient;

beforeAll(async () => {
  ({ node, admin } = await startTestNode());
});

/** A raw request, to see headers the client does not show. */
function send(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  return fetch(node.url + path, {
    method,
    headers: {
      authorization: 'Bearer admin-t',
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

describe('job versions over HTTP (optimistic concurrency)', () => {
  it('two operators edit the job they both read: the second gets 409 VERSION_CONFLICT with the current job', async () => {
    await admin.createJob({ name: 'shared', handler: 'h', trigger: { kind: 'every', every: '1h' } });
    const read = await send('GET', '/v1/jobs/shared');
    expect(read.headers.get('etag')).toBe('"1"');
    const seen = (await read.json()) as { version: number };
    expect(seen.version).toBe(1);

    const first = await admin.updateJob('shared', { description: 'first' }, { ifMatch: seen.version });
    expect(first.version).toBe(2);
    const second = await apiError(
      admin.updateJob('shared', { description: 'second' }, { ifMatch: seen.version }),
    );
    expect(second).toMatchObject({ status: 409, code: 'VERSION_CONFLICT' });
    expect(second.details).toMatchObject({ expected: 1, job: { version: 2, description: 'first' } });
    // The version in the body works the same way.
    expect(await apiError(admin.updateJob('shared', { description: 'third', version: 1 }))).toMatchObject({
      code: 'VERSION_CONFLICT',
    });
    expect((await admin.getJob('shared')).description).toBe('first');

    // Pause, resume and replace take it too; each bumps the version and answers the new ETag.
    const paused = await send('POST', '/v1/jobs/shared/pause', {}, { 'if-match': 'W/"2"' });
    expect(paused.status).toBe(200);
    expect(paused.headers.get('etag')).toBe('"3"');
    expect(await apiError(admin.resumeJob('shared', { ifMatch: 2 }))).toMatchObject({
      code: 'VERSION_CONFLICT',
    });
    expect((await admin.resumeJob('shared', { ifMatch: 3 })).version).toBe(4);
    const spec = { name: 'shared', handler: 'h', trigger: { kind: 'every' as const, every: '2h' } };
    expect(await apiError(admin.putJob(spec, { ifMatch: 3 }))).toMatchObject({ code: 'VERSION_CONFLICT' });
    expect((await admin.putJob({ ...spec, version: 4 })).version).toBe(5);
    // Without a version, an edit applies to the job as it is when it writes.
    expect((await admin.updateJob('shared', { priority: 3 })).version).toBe(6);
  });

  it('refuses a malformed If-Match, or one that disagrees with the body, and changes nothing', async () => {
    await admin.createJob({ name: 'strict', handler: 'h', trigger: { kind: 'manual' } });
    for (const [headers, body] of [
      [{ 'if-match': 'soon' }, { description: 'x' }],
      [{ 'if-match': '"1"' }, { description: 'x', version: 2 }],
      [{}, { description: 'x', version: 0 }],
    ] as const) {
      const answer = await send('PATCH', '/v1/jobs/strict', body, headers);
      expect(answer.status).toBe(400);
      expect(((await answer.json()) as { error: { code: string } }).error.code).toBe('VALIDATION_FAILED');
    }
    expect(await admin.getJob('strict')).toMatchObject({ version: 1, description: '' });
    // `*` matches any version.
    expect((await send('PATCH', '/v1/jobs/strict', { description: 'y' }, { 'if-match': '*' })).status).toBe(
      200,
    );
  });
});
