import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../src/cli/program.ts';
import { tempDir } from './helpers.ts';

/** `kairos completion`: the script completes in a real bash as a user would press Tab. */
describe('kairos completion', async () => {
  async function script(shell: string): Promise<string> {
    let out = '';
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      out += String(chunk);
      return true;
    });
    try {
      await buildProgram().parseAsync(['node', 'kairos', 'completion', shell]);
    } finally {
      write.mockRestore();
    }
    return out;
  }
  const file = join(tempDir(), 'kairos.bash');
  writeFileSync(file, await script('bash'));
  /** What bash offers for the line with the cursor after its last word. */
  const complete = (...words: string[]) =>
    execFileSync(
      'bash',
      [
        '-c',
        `source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _kairos; printf '%s\\n' "\${COMPREPLY[@]}"`,
        file,
        'kairos',
        ...words,
      ],
      { encoding: 'utf8' },
    )
      .split('\n')
      .filter(Boolean);

  it('commands, subcommands and options, past global options and their values', () => {
    expect(complete('jo')).toEqual(['jobs']);
    expect(complete('--url', 'http://127.0.0.1:7071', 'jobs', 'pa')).toEqual(['pause']);
    expect(complete('runs', '')).toEqual(expect.arrayContaining(['list', 'get', 'wait', 'cancel', 'logs']));
    expect(complete('jobs', 'create', 'nightly', '--cro')).toEqual(['--cron']);
    expect(complete('jobs', 'create', 'nightly', '--cron', '0 2 * * *', '--ti')).toEqual(['--timeout']);
    expect(complete('import', 'crontab', '--dr')).toEqual(['--dry-run']);
    expect(complete('workflows', '')).toEqual(
      expect.arrayContaining([
        'list',
        'get',
        'apply',
        'start',
        'instances',
        'instance',
        'cancel',
        'rerun-step',
        'pause-trigger',
        'resume-trigger',
        'skipped',
      ]),
    );
    expect(complete('workflows', 'start', 'etl', '--id')).toEqual(['--idempotency-key']);
  });

  it('zsh through bashcompinit; fish with its own commands; another shell is a usage error', async () => {
    expect(await script('zsh')).toMatch(/^autoload -U \+X bashcompinit && bashcompinit\n# kairos completion/);
    const fish = await script('fish');
    expect(fish).toContain(
      "complete -c kairos -n '__fish_seen_subcommand_from jobs; and not __fish_seen_subcommand_from create put update list get delete pause resume trigger backfill skipped preview' -a 'create put update list get delete pause resume trigger backfill skipped preview'",
    );
    await expect(buildProgram().parseAsync(['node', 'kairos', 'completion', 'tcsh'])).rejects.toThrow(
      /expected bash, zsh or fish/,
    );
  });
});
