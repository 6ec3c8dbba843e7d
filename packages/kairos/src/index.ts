export { type KairosConfig, type KairosOptions, resolveConfig } from './config.ts';
export { compileJob } from './core/job.ts';
export { firstFire } from './core/trigger.ts';
export { KairosError } from './errors.ts';
export { type KairosNode, type NodeDependencies, startNode } from './node.ts';
export { type Clock, FakeClock, systemClock } from './scheduler/clock.ts';
export { openStore } from './store/open.ts';
export { SqliteStore } from './store/sqlite/sqlite-store.ts';
export type { Store } from './store/store.ts';
