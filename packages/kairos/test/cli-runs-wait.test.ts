import { afterAll, describe, expect, it } from 'vitest';
import { waitWithProgress } from '../src/cli/runs.ts';
import { startTestNode, testWorker } from './helpers.ts';

/** `kairos runs wait` on a terminal: one status line with the handler's progress, cleared at the end. */
describe('kairos runs wait on a terminal', async () => {
  const { node, admin } = await startTestNode();
  let release: () => void = () => {};
  const worker = testWorker(node, 'default').handle('steps', async (ctx) => {
    ctx.progress(0.25, 'rendering');
    await new Promise<void>((resolve) => {
      release = resolve;
    });
    ctx.progress(1, 'sent');
    return { ok: true };
  });
  await worker.start();
  afterAll(() => worker.stop());
  await admin.createJob({ name: 'steps', handler: 'steps', trigger: { kind: 'manual' } });

  it('shows state, attempt and progress while it waits, and leaves the line clean', async () => {
    const { id } = await admin.triggerJob('steps');
    const written: string[] = [];
    let sawProgress!: () => void;
    const progressShown = new Promise<void>((resolve) => {
      sawProgress = resolve;
    });
    const waiting = waitWithProgress(admin, id, 60_000, (text) => {
      written.push(text);
      if (text.includes('25% rendering')) sawProgress();
    });
    await progressShown;
    release();
    const run = await waiting;
    expect(run).toMatchObject({ id, status: 'succeeded' });
    const shown = written.find((t) => t.includes('25% rendering'))!;
    expect(shown).toMatch(new RegExp(`^\\r\\x1b\\[Krun ${id} running · attempt 1/3 · \\S+ · 25% rendering$`));
    expect(written.at(-1)).toBe('\r\x1b[K');
  });

  it('gives up at its time limit with the state it saw', async () => {
    await admin.createJob({ name: 'nobody', handler: 'no-such-handler', trigger: { kind: 'manual' } });
    const { id } = await admin.triggerJob('nobody');
    const run = await waitWithProgress(admin, id, 300, () => {});
    expect(run.status).toBe('queued');
  });
});
