// Builds the console when its build is missing or older than its sources: run by `npm install`
// (the root `prepare` script) and by `npm start` (after a `git pull` without `npm install`).
// A build costs about a second; the check, a few milliseconds.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const built = join(here, 'dist', 'index.html');
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
    execFileSync(process.execPath, [vite, 'build', '--logLevel', 'warn'], { cwd: here, stdio: 'inherit' });
  } else {
    // An install without dev dependencies: the node still runs, and `/` says how to build the console.
    console.error(
      'the web console is not built and Vite is not installed: run `npm install` with dev dependencies',
    );
  }
}
