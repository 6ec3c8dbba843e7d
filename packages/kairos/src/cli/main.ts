import { buildProgram, reportError } from './program.ts';

/** The `kairos` command line: `kairos --help` lists the commands. */
const program = buildProgram();
try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.exitCode = reportError(error, program.opts<{ url: string }>().url);
}
