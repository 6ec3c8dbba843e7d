// Result files: every benchmark writes its own file in bench/results/, named after the benchmark and the
// instant it ended, and never overwrites one (docs/benchmarks.md quotes numbers only from such files).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machine } from './environment.ts';
import { BENCH_DIR } from './util.ts';

/** The code a result was measured with: the commit checked out, and whether files differed from it. */
export interface Source {
  commit: string;
  dirty: boolean;
}

function readSource(): Source {
  const git = (...args: string[]) => execFileSync('git', args, { cwd: BENCH_DIR, encoding: 'utf8' }).trim();
  try {
    return {
      commit: git('rev-parse', 'HEAD'),
      dirty: git('status', '--porcelain', '--untracked-files=no') !== '',
    };
  } catch {
    return { commit: 'unknown', dirty: false };
  }
}

/** Read when the benchmark's process loads this module, before it measures anything. */
const atStart = readSource();

/**
 * The commit of the repository `bench/` lives in when the benchmark began, and whether the code it
 * measured may differ from that commit: dirty when tracked files differed from it when the benchmark
 * began or when it ended, or when the commit changed in between (processes forked during a run load
 * the files as they are then); `unknown` outside a git checkout.
 */
export function source(): Source {
  const atEnd = readSource();
  return {
    commit: atStart.commit,
    dirty: atStart.dirty || atEnd.dirty || atEnd.commit !== atStart.commit,
  };
}

/** `2026-12-06T01-02-03-456Z`: an ISO instant usable in a file name. */
export function stamp(date: Date | string = new Date()): string {
  return (typeof date === 'string' ? date : date.toISOString()).replace(/[:.]/g, '-');
}

/** Paths of the files {@link writeResult} wrote. */
export interface Written {
  json: string;
  md?: string;
}

/**
 * Writes `bench/results/<name>.json` (and `<name>.md` when `markdown` is given). Fails rather than
 * overwrite an existing file (`name` carries a timestamp: see {@link stamp}). A name ending in
 * `-quick` is git-ignored (bench/results/.gitignore).
 */
export function writeResult(name: string, body: unknown, markdown?: string): Written {
  const dir = join(BENCH_DIR, 'results');
  mkdirSync(dir, { recursive: true });
  const json = join(dir, `${name}.json`);
  writeFileSync(json, `${JSON.stringify(body, null, 2)}\n`, { flag: 'wx' });
  if (markdown === undefined) return { json };
  const md = join(dir, `${name}.md`);
  writeFileSync(md, markdown, { flag: 'wx' });
  return { json, md };
}

/**
 * Writes the result of one standalone benchmark run (`npm run bench:<name>`) as
 * `bench/results/<benchmark>-<timestamp>.json` (and `.md` when `markdown` is given), with the date,
 * the code and the machine, and prints where it went.
 */
export function saveResult(benchmark: string, body: Record<string, unknown>, markdown?: string): Written {
  const date = new Date().toISOString();
  const written = writeResult(
    `${benchmark}-${stamp(date)}`,
    { benchmark, date, source: source(), machine: machine(), ...body },
    markdown,
  );
  console.log(`wrote ${written.json}${written.md ? ` and ${written.md}` : ''}`);
  return written;
}
