import type { JobPatch, RetentionSpec } from '@kairos/client';
import type { Command } from 'commander';
import { parseDurationFlag, parseIntFlag } from './options.ts';

/** The retention flags of a job, as commander hands them over. */
export interface RetentionFlags {
  keepFinished?: string;
  keepFailed?: string;
  keepLast?: string;
}

/** Adds the retention flags to `jobs create|put|update` (docs/retention.md). */
export function addRetentionFlags(cmd: Command): Command {
  return cmd
    .option(
      '--keep-finished <dur>',
      "delete succeeded and cancelled runs this long after they ended (default: the node's)",
    )
    .option(
      '--keep-failed <dur>',
      "delete failed and timed-out runs this long after they ended (default: the node's)",
    )
    .option('--keep-last <n>', 'keep only the newest N finished runs (failed ones until --keep-failed)');
}

/** The `retention` field the flags set, if any. @throws UsageError on a bad value. */
export function retentionFromFlags(flags: RetentionFlags): JobPatch {
  const retention: RetentionSpec = {};
  if (flags.keepFinished !== undefined)
    retention.finished = parseDurationFlag(flags.keepFinished, '--keep-finished');
  if (flags.keepFailed !== undefined) retention.failed = parseDurationFlag(flags.keepFailed, '--keep-failed');
  if (flags.keepLast !== undefined)
    retention.keepLast = parseIntFlag(flags.keepLast, '--keep-last', { min: 1, max: 1_000_000 });
  return Object.keys(retention).length > 0 ? { retention } : {};
}
