import { readFileSync } from 'node:fs';

/**
 * The code version of this node (`packages/kairos/package.json`): what `/v1/health` and the
 * `nodes` table show, and what a store's schema is checked against at start (store/migrations.ts).
 */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
