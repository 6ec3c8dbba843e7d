import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from './options.ts';
import { loadHandlers, workerTasksFromFlags } from './worker.ts';

function moduleFile(source: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'kairos-handlers-')), 'handlers.mjs');
  writeFileSync(path, source);
  return path;
}

describe('workerTasksFromFlags', () => {
  it('enables the kinds the flags name', () => {
    expect(workerTasksFromFlags({})).toBeUndefined();
    expect(workerTasksFromFlags({ shell: true })).toEqual({ shell: true });
    expect(workerTasksFromFlags({ shellAllow: ['/bin/backup'], httpAllow: ['https://x.example/'] })).toEqual({
      shell: { allow: ['/bin/backup'] },
      http: { allow: ['https://x.example/'] },
    });
    expect(() => workerTasksFromFlags({ shell: true, shellAllow: ['ls'] })).toThrow(UsageError);
  });
});

describe('loadHandlers', () => {
  it('reads the default export object', async () => {
    const handlers = await loadHandlers(
      moduleFile("export default { 'mail.send': async () => 1, note: 'x' };"),
    );
    expect(Object.keys(handlers)).toEqual(['mail.send']);
  });

  it('falls back to named function exports', async () => {
    const handlers = await loadHandlers(moduleFile('export async function hello() {}\nexport const n = 1;'));
    expect(Object.keys(handlers)).toEqual(['hello']);
  });

  it('rejects a module without handlers, and a missing file', async () => {
    await expect(loadHandlers(moduleFile('export const n = 1;'))).rejects.toThrow(UsageError);
    await expect(loadHandlers('/nonexistent/handlers.ts')).rejects.toThrow(/no such file/);
  });
});
