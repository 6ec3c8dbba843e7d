import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

/**
 * The workspace runs its packages from their sources, never from a (maybe stale) `dist/`: the
 * `@kairos/source` export condition resolves `@kairos/client`, `@kairos/worker` and
 * `@kairos/server` to `src/`, here and in every process a test spawns (NODE_OPTIONS).
 */
const SOURCE = '@kairos/source';
/**
 * As Node.js resolves: without Vite's bundler-only `module` condition, which picks builds that Node
 * cannot load when Vitest leaves a dependency to it (`@opentelemetry/api`'s `build/esm` imports
 * files without extensions).
 */
const CONDITIONS = [SOURCE, ...defaultServerConditions.filter((condition) => condition !== 'module')];

export default defineConfig({
  resolve: { conditions: CONDITIONS },
  ssr: { resolve: { conditions: CONDITIONS } },
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'packages/*/test/**/*.test.ts',
      'bench/src/**/*.test.ts',
      'test/**/*.test.ts',
    ],
    env: { NODE_OPTIONS: [process.env.NODE_OPTIONS, `--conditions=${SOURCE}`].filter(Boolean).join(' ') },
    testTimeout: 30_000,
    // Hooks start nodes and workers as processes: on two busy cores a start can take a minute.
    hookTimeout: 180_000,
    // Two noisy cores: the process-spawning suites fight for CPU when run wide.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
