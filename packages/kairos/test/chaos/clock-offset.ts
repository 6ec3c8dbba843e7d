// Loaded with `node --import` into a node under test: shifts this process's wall clock (Date) by
// the milliseconds written in the file CHAOS_CLOCK_FILE, re-read every 100 ms, so that the nemesis
// can step one node's clock forward or back. The monotonic clock (timers, performance.now) is
// left alone, as an NTP step leaves it.
import { readFileSync } from 'node:fs';

const file = process.env.CHAOS_CLOCK_FILE;
if (file) {
  let offset = 0;
  const read = () => {
    try {
      offset = Number(readFileSync(file, 'utf8').trim()) || 0;
    } catch {
      offset = 0;
    }
  };
  read();
  setInterval(read, 100).unref();
  const RealDate = Date;
  const realNow = RealDate.now.bind(RealDate);
  class ShiftedDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(realNow() + offset);
      else super(...(args as [string]));
    }
    static override now(): number {
      return realNow() + offset;
    }
  }
  globalThis.Date = ShiftedDate as DateConstructor;
}
