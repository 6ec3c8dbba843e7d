// Builds the published packages from scratch and packs them as the registry would serve them:
//   node scripts/pack.mjs --out DIR [--install PROJECT] [--prefer-offline] [--json]
// --out      where the tarballs go (kairos-client-*.tgz, kairos-worker-*.tgz, kairos-server-*.tgz)
// --install  then `npm install` the tarballs into PROJECT (created when missing), as a user's
//            project installs them from the registry
// --json     print what was packed (name, tarball, size, files) as JSON on stdout
// deploy/Dockerfile builds its image with this script, and the packaging test
// (test/packaging.test.ts) runs it the same way, so the image's steps are tested here.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { build, PACKAGES, ROOT } from './build.mjs';

const { values } = parseArgs({
  options: {
    out: { type: 'string' },
    install: { type: 'string' },
    'prefer-offline': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
if (!values.out) {
  console.error('usage: node scripts/pack.mjs --out DIR [--install PROJECT] [--prefer-offline] [--json]');
  process.exit(2);
}
const out = resolve(values.out);
mkdirSync(out, { recursive: true });

if (!build({ clean: true })) process.exit(1);
const npm = (args, cwd) =>
  execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const packed = JSON.parse(
  npm(['pack', '--json', '--pack-destination', out, ...PACKAGES.flatMap(({ name }) => ['-w', name])], ROOT),
).map((entry) => ({
  name: entry.name,
  version: entry.version,
  tarball: join(out, entry.filename),
  size: entry.size,
  unpackedSize: entry.unpackedSize,
  files: entry.files.map((file) => file.path),
}));
for (const { name, tarball, size, unpackedSize, files } of packed) {
  console.error(
    `${name}: ${tarball} ${(size / 1024).toFixed(1)} kB packed, ${(unpackedSize / 1024).toFixed(1)} kB unpacked, ${files.length} files`,
  );
}

if (values.install) {
  const project = resolve(values.install);
  mkdirSync(project, { recursive: true });
  if (!existsSync(join(project, 'package.json'))) {
    // npm 11 runs install scripts only of packages the project allows: better-sqlite3 fetches
    // or builds its native binding in one.
    const manifest = { name: 'kairos-app', private: true, allowScripts: { 'better-sqlite3': true } };
    writeFileSync(join(project, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  }
  npm(
    [
      'install',
      '--no-audit',
      '--no-fund',
      ...(values['prefer-offline'] ? ['--prefer-offline'] : []),
      ...packed.map(({ tarball }) => tarball),
    ],
    project,
  );
  console.error(`installed into ${project}`);
}

if (values.json) process.stdout.write(`${JSON.stringify(packed, null, 2)}\n`);
