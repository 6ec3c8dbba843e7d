// Run before `npm test` (the `pretest` script): the suite needs a few Debian packages that
// `npm install` cannot bring — Chromium for the console's browser test (driven through
// playwright-core; no browser download), iproute2 and nftables for the chaos suite's network
// namespaces, pgbouncer for the connection-pooler test (/usr/sbin/pgbouncer). When one is missing:
// as root on Debian/Ubuntu, install it with apt-get; otherwise stop with what to do, rather than
// let the suite fail late. KAIROS_CHROMIUM names another browser.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const chromium = process.env.KAIROS_CHROMIUM ?? '/usr/bin/chromium';
const tools = [
  { pkg: 'chromium', found: () => existsSync(chromium), why: "the console's browser test" },
  { pkg: 'iproute2', found: () => onPath('ip'), why: "the chaos suite's network namespaces" },
  { pkg: 'nftables', found: () => onPath('nft'), why: "the chaos suite's network faults" },
  { pkg: 'pgbouncer', found: () => existsSync('/usr/sbin/pgbouncer'), why: 'the connection-pooler test' },
];

function onPath(name) {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'];
  return dirs.some((dir) => dir && existsSync(`${dir}/${name}`));
}

const missing = tools.filter((tool) => !tool.found());
if (missing.length > 0) {
  const names = missing.map((tool) => tool.pkg);
  const root = process.getuid?.() === 0;
  const browserElsewhere = process.env.KAIROS_CHROMIUM && names.includes('chromium');
  if (browserElsewhere || !root || !existsSync('/usr/bin/apt-get')) {
    console.error(
      `npm test needs ${missing.map((tool) => `${tool.pkg} (${tool.why})`).join(', ')}.\n` +
        `Install (as root): apt-get update && apt-get install -y ${names.join(' ')}\n` +
        (names.includes('chromium') ? 'or set KAIROS_CHROMIUM to a Chromium binary.\n' : ''),
    );
    process.exit(1);
  }
  console.error(`installing the Debian packages ${names.join(', ')} for the test suite (apt-get)…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', ...names], { stdio: 'inherit', env });
  const still = missing.filter((tool) => !tool.found());
  if (still.length > 0) {
    console.error(`apt-get ran, but ${still.map((tool) => tool.pkg).join(', ')} is still missing`);
    process.exit(1);
  }
}
