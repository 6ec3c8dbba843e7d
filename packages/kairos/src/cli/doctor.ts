import { resolve } from 'node:path';
import type { DoctorCheck, DoctorReport } from '@kairos/client';
import type { Command } from 'commander';
import { printJson, table } from './format.ts';
import { clientFrom, type GlobalFlags } from './options.ts';

/** This host's clock this far off the store's is reported, as the node reports its own (server/doctor.ts). */
const HOST_CLOCK_WARN_MS = 1000;

interface DoctorFlags extends GlobalFlags {
  config?: string;
  strict?: boolean;
}

/**
 * Registers `kairos doctor`: the node's checks (`GET /v1/doctor`) plus this host's clock and, with
 * `--config`, a local config file. Exit code 1 when a check fails (with `--strict`, also on a warning).
 */
export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check a node, its store, the cluster clocks and whether live workers can run the jobs')
    .option(
      '--config <file>',
      'also check this config file (with the KAIROS_* variables) as a node would read it',
    )
    .option('--strict', 'exit 1 on warnings too')
    .action(async (_options: unknown, cmd: Command) => {
      const flags = cmd.optsWithGlobals<DoctorFlags>();
      const checks: DoctorCheck[] = [];
      if (flags.config) checks.push(await localConfigCheck(flags.config));
      const sent = Date.now();
      const report = await clientFrom(flags).doctor();
      checks.push(hostClockCheck(sent, Date.now(), report), ...report.checks);
      const status = checks.some((c) => c.status === 'fail')
        ? 'fail'
        : checks.some((c) => c.status === 'warn')
          ? 'warn'
          : 'ok';
      const full: DoctorReport = { ...report, status, checks };
      if (flags.json) printJson(full);
      else print(full);
      if (status === 'fail' || (status === 'warn' && flags.strict)) process.exitCode = 1;
    });
}

function print(report: DoctorReport): void {
  console.log(
    `node ${report.nodeId} (kairos ${report.version}, ${report.store}); schema: code ${report.schema.code}, store ${report.schema.store ?? '-'}`,
  );
  const rows: string[][] = [];
  for (const check of report.checks) {
    rows.push([check.name, check.status.toUpperCase(), check.message]);
    for (const item of check.items ?? []) rows.push(['', '', `- ${item}`]);
  }
  console.log(table(['CHECK', 'STATUS', 'DETAIL'], rows));
  console.log(
    report.status === 'ok'
      ? 'all checks passed'
      : report.status === 'warn'
        ? 'warnings only (--strict fails on them)'
        : 'problems found',
  );
}

/** This host's clock against the store's (the node's when the store did not answer), half a round trip allowed. */
function hostClockCheck(sent: number, received: number, report: DoctorReport): DoctorCheck {
  const reference = Date.parse(report.databaseTime ?? report.nodeTime);
  const skewMs = Math.round((sent + received) / 2 - reference);
  const what = report.databaseTime ? "the store's" : "the node's";
  const within = `±${Math.ceil((received - sent) / 2)} ms round trip`;
  if (Math.abs(skewMs) <= HOST_CLOCK_WARN_MS)
    return {
      name: 'host-clock',
      status: 'ok',
      message: `this host ${skewMs} ms off ${what} clock (${within})`,
    };
  return {
    name: 'host-clock',
    status: 'warn',
    message: `this host's clock is ${skewMs} ms off ${what} clock (${within}): times you pass (--at, --since) are off`,
  };
}

/** A config file read as `kairos server --config` would; nothing is written (the tokens are not resolved). */
async function localConfigCheck(file: string): Promise<DoctorCheck> {
  const { resolveConfig } = await import('../config.ts');
  try {
    resolveConfig(
      { adminToken: 'doctor', workerToken: 'doctor' },
      { ...process.env, KAIROS_CONFIG: resolve(file) },
    );
    return { name: 'local-config', status: 'ok', message: `${file} is valid` };
  } catch (error) {
    return { name: 'local-config', status: 'fail', message: `${file}: ${(error as Error).message}` };
  }
}
