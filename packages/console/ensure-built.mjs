// Builds the console when its build is missing or older than its sources (`npm start` after a
// `git pull` without `npm install`). A fresh build costs about a second; the check, a few ms.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const built = join(here, 'dist', 'index.html');

function newest(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newest(join(path, name))));
}

const sources = Math.max(
  newest(join(here, 'src')),
  newest(join(here, 'index.html')),
  newest(join(here, 'vite.config.ts')),
);
if (!existsSync(built) || statSync(built).mtimeMs < sources) {
  console.error('building the web console…');
  execFileSync(
    process.execPath,
    [join(here, '..', '..', 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--logLevel', 'warn'],
    {
      cwd: here,
      stdio: 'inherit',
    },
  );
}
