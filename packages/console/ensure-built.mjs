// Builds the console when its build is missing or older than its sources: run by `npm install`
// (the root `prepare` script, through scripts/build.mjs) and by `npm start` (after a `git pull`
// without `npm install`). A build costs about a second; the check, a few milliseconds.
// The build goes into the server package (packages/kairos/dist/console), which serves and ships it.
// It is written beside that folder and renamed into place, so a node serving the old build never
// sees a half-written one.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const out = join(here, '..', 'kairos', 'dist', 'console');
const built = join(out, 'index.html');
const vite = join(here, '..', '..', 'node_modules', 'vite', 'bin', 'vite.js');

function newest(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newest(join(path, name))));
}

const sources = Math.max(
  ...['src', 'index.html', 'vite.config.ts', '../client/src'].map((path) => newest(join(here, path))),
);
if (!existsSync(built) || statSync(built).mtimeMs < sources) {
  if (existsSync(vite)) {
    console.error('building the web console…');
    const next = `${out}.${process.pid}.tmp`;
    execFileSync(process.execPath, [vite, 'build', '--logLevel', 'warn', '--outDir', next], {
      cwd: here,
      stdio: 'inherit',
    });
    rmSync(out, { recursive: true, force: true });
    renameSync(next, out);
  } else {
    // An install without dev dependencies: the node still runs, and `/` says how to build the console.
    console.error(
      'the web console is not built and Vite is not installed: run `npm install` with dev dependencies',
    );
  }
}
