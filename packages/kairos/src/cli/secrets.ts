import type { Command } from 'commander';
import { printJson } from './format.ts';
import { clientFrom, type GlobalFlags } from './options.ts';

/** Registers `kairos secrets …`: the keys of secret params (docs/security.md). */
export function registerSecrets(program: Command): void {
  const secrets = program.command('secrets').description('secret params and their keys (admin only)');

  secrets
    .command('rotate')
    .description(
      "re-encrypt every stored secret param with the node's first key (after adding a new key first on every node)",
    )
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<GlobalFlags>();
      const report = await clientFrom(flags).rotateSecrets();
      // Secrets left under a key this node lacks fail the command, whatever the output form.
      const unreadable = report.unreadable.jobs + report.unreadable.runs;
      if (unreadable > 0) process.exitCode = 1;
      if (flags.json) return printJson(report);
      console.log(
        `secrets are under key ${report.keyId}: ${report.rotated.jobs} jobs and ${report.rotated.runs} runs re-encrypted`,
      );
      if (unreadable > 0) {
        console.log(
          `${report.unreadable.jobs} jobs and ${report.unreadable.runs} runs hold secrets under a key this node does not have: give it that key and rotate again`,
        );
      }
    });
}
