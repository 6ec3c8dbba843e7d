import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Assignment } from '@kairos/client';
import { describe, expect, it } from 'vitest';
import { createRunContext } from './context.ts';
import { CancelledError, NonRetryableError, TimeoutError } from './errors.ts';
import { compileIsolated, isolatedHandler } from './isolated.ts';
import { alive, until } from './process-probe.ts';

const MODULE = fileURLToPath(new URL('../test/fixtures/isolated-handlers.ts', import.meta.url));
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

function attempt(exportName: string, signal = new AbortController().signal, killGraceMs = 1000) {
  const lines: string[] = [];
  const progress: number[] = [];
  const assignment: Assignment = {
    runId: 3,
    attempt: 2,
    jobName: 'j',
    handler: 'h',
    params: { n: 1 },
    fireTime: null,
    timeout: 60_000,
    maxAttempts: 3,
  };
  const ctx = createRunContext(assignment, { signal }, Date.now(), quiet, {
    log: (entry) => lines.push(entry.message),
    progress: (p) => progress.push(p.value),
  });
  const handler = isolatedHandler(
    compileIsolated('h', { isolated: true, module: MODULE, export: exportName, killGraceMs }),
  );
  return { run: () => Promise.resolve(handler(ctx)), lines, progress };
}

describe('isolated handlers', () => {
  it('run in a child process with the attempt’s params; log and progress come back', async () => {
    const { run, lines, progress } = attempt('ok');
    const result = (await run()) as { pid: number; params: unknown; attempt: number };
    expect(result.pid).not.toBe(process.pid);
    expect(result).toMatchObject({ params: { n: 1 }, attempt: 2 });
    expect(lines).toEqual(['hello from the child']);
    expect(progress).toEqual([0.5]);
  });

  it('keep what the handler threw: a NonRetryableError stays one', async () => {
    await expect(attempt('refuse').run()).rejects.toBeInstanceOf(NonRetryableError);
  });

  it('a handler that kills its process fails its attempt, not the worker', async () => {
    await expect(attempt('crash').run()).rejects.toMatchObject({
      name: 'IsolatedProcessCrashed',
      message: expect.stringContaining('exited with code 3'),
    });
  });

  it('a handler that ignores its signal is killed within the grace period plus one second', async () => {
    const controller = new AbortController();
    const { run, lines } = attempt('hang', controller.signal);
    const done = run();
    await until(() => lines.length > 0, 20_000, 'the child to start');
    const pid = Number(lines[0]!.slice(4));
    expect(alive(pid)).toBe(true);
    const abortedAt = Date.now();
    controller.abort(new CancelledError('cancelled'));
    await expect(done).rejects.toBeInstanceOf(CancelledError);
    const took = Date.now() - abortedAt;
    expect(alive(pid)).toBe(false);
    // Grace 1 s; one more second of honest margin for a loaded machine.
    expect(took).toBeGreaterThanOrEqual(900);
    expect(took).toBeLessThan(1000 + 1000);
  });

  it('a handler that honours its signal ends without the kill, with the timeout as the reason', async () => {
    // A kill grace far beyond the test's timeout: only the handler's own stop can end the attempt
    // in time, however long a busy machine takes to start the child.
    const controller = new AbortController();
    const { run } = attempt('default', controller.signal, 600_000);
    const done = run();
    controller.abort(new TimeoutError('too slow', 50));
    await expect(done).rejects.toBeInstanceOf(TimeoutError);
  });

  it('children do not outlive the worker: a blocked isolated process and a shell group are killed at exit', async () => {
    const script = fileURLToPath(new URL('../test/fixtures/exit-with-children.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => {
      output += chunk;
    });
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    const pids = output.trim().split(' ').map(Number);
    expect(pids).toHaveLength(2);
    await until(() => pids.every((pid) => !alive(pid)), 2000, 'the children to die with their worker');
  });

  it('checks its options', () => {
    expect(() => compileIsolated('h', { isolated: true, module: '' })).toThrow(/module/);
    expect(() => compileIsolated('h', { isolated: true, module: 'x.ts', killGraceMs: -1 })).toThrow(
      /killGraceMs/,
    );
  });
});
