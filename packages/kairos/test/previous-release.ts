import { execFileSync } from 'node:child_process';
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
