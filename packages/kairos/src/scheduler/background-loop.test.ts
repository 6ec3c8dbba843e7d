import { describe, expect, it } from 'vitest';
import { BackgroundLoop } from './background-loop.ts';
import { FakeClock } from './clock.ts';

describe('BackgroundLoop', () => {
  it('runs its body from start until stop, whose abort ends the sleep at once', async () => {
    const clock = new FakeClock();
    let rounds = 0;
    const loop: BackgroundLoop = new BackgroundLoop(async () => {
      while (loop.running) {
        rounds++;
        await clock.sleep(60_000, loop.signal);
      }
    });
    expect(loop.running).toBe(false);
    expect(loop.stopped).toBe(false);
    loop.start();
    loop.start(); // a second start changes nothing
    expect(rounds).toBe(1);
    await clock.advance(60_000);
    expect(rounds).toBe(2);
    await loop.stop(); // the sleep ends without the clock moving
    expect(loop.running).toBe(false);
    expect(loop.stopped).toBe(true);
    expect(loop.signal.aborted).toBe(true);
    loop.start();
    expect(loop.signal.aborted).toBe(false);
    expect(rounds).toBe(3);
    await loop.stop();
  });
});
