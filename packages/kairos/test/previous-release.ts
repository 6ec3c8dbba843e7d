import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root folder. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * The release before this code: nodes of it must keep running while a cluster is upgraded to this
 * code node by node. Update it (tag and commit) when a release is tagged.
 */
export const PREVIOUS_RELEASE = {
  version: '0.1.0',
  tag: 'v0.1.0',
  commit: '9b5b050b174f7eee4f382018a97a77ff40de48f2',
} as const;

function git(args: string[]): string {
  return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/**
 * The commit of the previous release: its tag, or its commit where a clone lacks the tag. Fails
 * with what to do when the clone has neither (a shallow clone).
 */
export function previousReleaseCommit(): string {
  for (const ref of [PREVIOUS_RELEASE.tag, PREVIOUS_RELEASE.commit]) {
    try {
      return git(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
    } catch {
      // not in this clone; try the next
    }
  }
  throw new Error(
    `neither the tag ${PREVIOUS_RELEASE.tag} nor its commit ${PREVIOUS_RELEASE.commit} is in this clone: ` +
      `fetch them (git fetch --tags, or a clone that is not shallow)`,
  );
}

/** The files under `path` in the previous release. */
export function previousReleaseFiles(path: string): string[] {
  return git(['ls-tree', '--name-only', `${previousReleaseCommit()}:${path}`])
    .split('\n')
    .filter(Boolean);
}

export interface PreviousReleaseCheckout {
  /** The worktree's root: run its code with `spawnKairos(args, env, root)`. */
  root: string;
  /** How long `git worktree add` and `npm ci` took. */
  installMs: number;
  /** Removes the worktree and its folder. */
  remove(): Promise<void>;
}

/**
 * Checks the previous release out into a temporary git worktree and installs its dependencies
 * (`npm ci --prefer-offline`), to run its nodes and workers from their TypeScript sources beside
 * this code. Scripts are skipped: the previous release runs here on PostgreSQL only, so it needs
 * neither better-sqlite3's native build nor the console's build (with them: ~115 s; without: ~20 s
 * on two busy cores).
 */
export async function checkOutPreviousRelease(): Promise<PreviousReleaseCheckout> {
  const commit = previousReleaseCommit();
  const dir = mkdtempSync(join(tmpdir(), `kairos-${PREVIOUS_RELEASE.tag}-`));
  const root = join(dir, 'tree');
  const started = Date.now();
  const remove = async () => {
    await run('git', ['worktree', 'remove', '--force', root], ROOT).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await run('git', ['worktree', 'add', '--detach', root, commit], ROOT);
    await run(
      'npm',
      ['ci', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund'],
      root,
      npmEnv(),
    );
  } catch (error) {
    await remove();
    throw error;
  }
  return { root, installMs: Date.now() - started, remove };
}

/**
 * The environment for npm in the worktree. Under `npm test` the environment carries the running
 * npm's settings (`npm_config_local_prefix` names this checkout, and would make `npm ci` install
 * here); only where the cache and the user's settings are stays.
 */
function npmEnv(): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_userconfig', 'npm_config_registry']);
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) => !/^(npm_|init_cwd$)/i.test(key) || keep.has(key.toLowerCase()),
    ),
  );
}

/** Runs a command without blocking the test's event loop; fails with its output. */
function run(command: string, args: string[], cwd: string, env = process.env): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      error
        ? reject(
            new Error(
              `${command} ${args.join(' ')} (in ${cwd}) failed: ${error.message}\n${stdout}${stderr}`,
            ),
          )
        : resolve(),
    );
  });
}
