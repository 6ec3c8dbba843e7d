// Run before `npm test` (the `pretest` script): the console's browser test drives a real
// Chromium (the Debian `chromium` package, through playwright-core; no browser download).
// When it is missing: as root on Debian/Ubuntu, install it with apt-get; otherwise stop with
// what to do, rather than let the suite fail late. KAIROS_CHROMIUM names another binary.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const chromium = process.env.KAIROS_CHROMIUM ?? '/usr/bin/chromium';
if (!existsSync(chromium)) {
  const root = process.getuid?.() === 0;
  if (process.env.KAIROS_CHROMIUM || !root || !existsSync('/usr/bin/apt-get')) {
    console.error(
      `npm test needs Chromium for the console's browser test, and there is none at ${chromium}.\n` +
        `Install it (as root): apt-get update && apt-get install -y chromium\n` +
        'or set KAIROS_CHROMIUM to a Chromium binary.',
    );
    process.exit(1);
  }
  console.error(`no Chromium at ${chromium}: installing the Debian package (apt-get install chromium)…`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', 'chromium'], { stdio: 'inherit', env });
  if (!existsSync(chromium)) {
    console.error(`apt-get installed chromium, but there is still no ${chromium}`);
    process.exit(1);
  }
}
