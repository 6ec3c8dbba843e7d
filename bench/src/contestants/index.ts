// The contestants by name. Each module is loaded only when asked for, so that no process loads a
// library it does not run (the peers' libraries need Node 22; Kairos's SQLite binding is built for Node 20).
import type { Contestant } from '../contestant.ts';

const factories: Record<string, () => Promise<Contestant>> = {
  kairos: async () => (await import('./kairos.ts')).create('sqlite'),
  'kairos-pg': async () => (await import('./kairos.ts')).create('postgres'),
  'pg-boss': async () => (await import('./pg-boss.ts')).create(),
  'graphile-worker': async () => (await import('./graphile-worker.ts')).create(),
  bullmq: async () => (await import('./bullmq.ts')).create(),
};

/** Every contestant's name, in the order of the tables. */
export const CONTESTANTS = Object.keys(factories);

/** A fresh instance of contestant `name`. */
export function loadContestant(name: string): Promise<Contestant> {
  const factory = factories[name];
  if (!factory) throw new Error(`unknown contestant ${name}; known: ${CONTESTANTS.join(', ')}`);
  return factory();
}
