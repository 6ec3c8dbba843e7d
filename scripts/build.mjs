// Builds what the packages publish, from the workspace's sources:
// - the web console into packages/kairos/dist/console (packages/console/ensure-built.mjs: only
//   when its build is missing or older than its sources);
// - @kairos/client, @kairos/worker and @kairos/server into their dist/ (JavaScript, declarations,
//   source maps) with `tsc -b`, which is incremental: about a second when nothing changed;
// - the server's SQL migrations beside its compiled store (dist/store/<dialect>/migrations).
// `npm install` runs it (the root `prepare` script, which warns instead of failing); `npm run build` too.
// --clean first removes the TypeScript builds (tsc -b never deletes what a deleted source left).
//
// The workspace does not need these builds: tests, tsx-run scripts and type checks resolve the
// packages to their sources through the `@kairos/source` export condition.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The published packages, in dependency order: folder and name. */
export const PACKAGES = [
  { dir: 'packages/client', name: '@kairos/client' },
  { dir: 'packages/worker', name: '@kairos/worker' },
  { dir: 'packages/kairos', name: '@kairos/server' },
];

/** Builds the console and the packages; answers false when the build tools are not installed. */
export function build({ clean = false } = {}) {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!existsSync(tsc)) {
    console.error(
      'the packages are not built: TypeScript is not installed (run `npm install` with dev dependencies)',
    );
    return false;
  }
  if (clean) {
    for (const { dir } of PACKAGES) {
      const dist = join(ROOT, dir, 'dist');
      if (!existsSync(dist)) continue;
      // The console's build stays: ensure-built.mjs replaces it when its sources changed.
      for (const entry of readdirSync(dist)) {
        if (entry !== 'console') rmSync(join(dist, entry), { recursive: true, force: true });
      }
    }
  }
  execFileSync(process.execPath, [join(ROOT, 'packages', 'console', 'ensure-built.mjs')], {
    stdio: 'inherit',
  });
  execFileSync(process.execPath, [tsc, '-b', join(ROOT, 'packages', 'kairos', 'tsconfig.build.json')], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  for (const dialect of ['sqlite', 'postgres']) {
    const from = join(ROOT, 'packages', 'kairos', 'src', 'store', dialect, 'migrations');
    const to = join(ROOT, 'packages', 'kairos', 'dist', 'store', dialect, 'migrations');
    rmSync(to, { recursive: true, force: true });
    cpSync(from, to, {
      recursive: true,
      filter: (path) => statSync(path).isDirectory() || path.endsWith('.sql'),
    });
  }
  return true;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  try {
    build({ clean: process.argv.includes('--clean') });
  } catch (error) {
    // `npm install` (--prepare) does not fail on a type error: the workspace runs from its
    // sources, and `npm run typecheck` reports it. `npm run build` and scripts/pack.mjs do fail.
    if (!process.argv.includes('--prepare')) throw error;
    console.error(`the packages' build failed (${error.message}); the workspace still runs from its sources`);
  }
}
