import { describe, expect, it } from 'vitest';
import { compileJob, patchJob, specOf } from './job.ts';

const manual = { kind: 'manual' } as const;

describe('job dispatch policy', () => {
  it('compiles routing, limits and the schedule-to-start timeout, and back', () => {
    const job = compileJob({
      name: 'j',
      handler: 'h',
      trigger: manual,
      routing: { strategy: 'consistent-hash', key: 'customer', selector: { region: 'eu' } },
      maxConcurrency: 4,
      scheduleToStartTimeout: '30s',
      rateLimit: { limit: 10, per: '1m' },
      resources: { cpu: 0.5, memory: '512Mi', gpu: 1 },
    });
    expect(job.dispatch).toEqual({
      routing: { strategy: 'consistent-hash', key: 'customer', selector: { region: 'eu' } },
      maxConcurrency: 4,
      scheduleToStartMs: 30_000,
      rateLimit: { limit: 10, perMs: 60_000 },
      resources: { cpu: 500, memory: 512 * 2 ** 20, gpu: 1 },
    });
    expect(compileJob(specOf(job))).toEqual(job);
  });

  it.each([
    [{ routing: { strategy: 'fastest' } }, 'INVALID_ROUTING', 'routing.strategy'],
    [{ routing: { strategy: 'round-robin', key: 'k' } }, 'INVALID_ROUTING', 'routing.key'],
    [
      { routing: { strategy: 'any', selector: { 'bad label!': 'x' } } },
      'INVALID_ROUTING',
      'routing.selector.bad label!',
    ],
    [{ maxConcurrency: 0 }, 'VALIDATION_FAILED', 'maxConcurrency'],
    [{ rateLimit: { limit: 0, per: '1s' } }, 'VALIDATION_FAILED', 'rateLimit.limit'],
    [{ resources: { cpu: 0 } }, 'INVALID_RESOURCES', 'resources.cpu'],
    [{ resources: { memory: '2 lots' } }, 'INVALID_RESOURCES', 'resources.memory'],
    [{ resources: { GPU: 1 } }, 'INVALID_RESOURCES', 'resources.GPU'],
    [{ resources: { gpu: 1.5 } }, 'INVALID_RESOURCES', 'resources.gpu'],
    [{ rateLimit: { limit: 1, per: '10ms' } }, 'INVALID_DURATION', 'rateLimit.per'],
    [{ scheduleToStartTimeout: '10ms' }, 'INVALID_DURATION', 'scheduleToStartTimeout'],
  ])('refuses %j with %s', (extra, code, field) => {
    expect(() => compileJob({ name: 'j', handler: 'h', trigger: manual, ...(extra as object) })).toThrow(
      expect.objectContaining({ code, details: { field } }),
    );
  });
});

describe('job tasks', () => {
  it('a shell or http task brings its built-in handler', () => {
    const shell = compileJob({
      name: 's',
      trigger: manual,
      task: { kind: 'shell', command: 'backup', args: ['--all'] },
    });
    expect(shell).toMatchObject({
      handler: 'kairos:shell',
      task: { kind: 'shell', command: 'backup', args: ['--all'], env: {}, cwd: null },
    });
    expect(compileJob(specOf(shell))).toEqual(shell);
    const http = compileJob({
      name: 'h',
      handler: 'kairos:http',
      trigger: manual,
      task: {
        kind: 'http',
        method: 'POST',
        url: 'https://api.example.com/hook',
        body: '{}',
        timeout: '5s',
        expectStatus: [202],
      },
    });
    expect(http.task).toEqual({
      kind: 'http',
      method: 'POST',
      url: 'https://api.example.com/hook',
      headers: {},
      body: '{}',
      timeoutMs: 5000,
      expectStatus: [202],
    });
    expect(compileJob(specOf(http))).toEqual(http);
    // A new task by patch brings its handler; a handler job stays one.
    expect(patchJob(shell, { task: { kind: 'http', url: 'https://x.example/' } }).handler).toBe(
      'kairos:http',
    );
  });

  it.each([
    [{ handler: 'h', task: { kind: 'shell', command: 'ls' } }, 'INVALID_TASK', 'handler'],
    [{ handler: 'kairos:shell' }, 'INVALID_TASK', 'handler'],
    [{}, 'VALIDATION_FAILED', 'handler'],
    [{ task: { kind: 'shell', command: '' } }, 'INVALID_TASK', 'task.command'],
    [{ task: { kind: 'shell', command: 'ls', url: 'http://x' } }, 'INVALID_TASK', 'task.url'],
    [{ task: { kind: 'shell', command: 'ls', env: { 'A-B': 'x' } } }, 'INVALID_TASK', 'task.env.A-B'],
    [{ task: { kind: 'http', url: 'ftp://x/' } }, 'INVALID_TASK', 'task.url'],
    [{ task: { kind: 'http', url: 'https://x/', method: 'BREW' } }, 'INVALID_TASK', 'task.method'],
    [{ task: { kind: 'http', url: 'https://x/', body: 'b' } }, 'INVALID_TASK', 'task.body'],
    [
      { task: { kind: 'http', url: 'https://x/', headers: { 'X-A': 'a\r\nb' } } },
      'INVALID_TASK',
      'task.headers.X-A',
    ],
    [{ task: { kind: 'http', url: 'https://x/', expectStatus: [99] } }, 'INVALID_TASK', 'task.expectStatus'],
    [{ task: { kind: 'ssh' } }, 'INVALID_TASK', 'task.kind'],
  ])('refuses %j with %s', (extra, code, field) => {
    expect(() => compileJob({ name: 'j', trigger: manual, ...(extra as object) })).toThrow(
      expect.objectContaining({ code, details: { field } }),
    );
  });
});
