/** What `kairos apply` and `kairos workflows apply` change, entry by entry: the diff and its print. */

/** One change `apply` makes (or would make). */
export interface Change {
  kind: 'calendar' | 'group' | 'job' | 'workflow';
  name: string;
  action: 'create' | 'update' | 'unchanged' | 'delete';
  /** The fields that differ, `field: before → after`. */
  fields: string[];
  /** The job's version the diff was read from: the update applies only over it (If-Match). */
  version?: number;
  /** The job's revision as stored (its declaring code's): kept when the file gives none. */
  revision?: number | null;
}

/** The fields of `desired` that differ from `now` (none: the entry is new), read the same way. */
export function diff(kind: Change['kind'], name: string, now: object | undefined, desired: object): Change {
  if (now === undefined) return { kind, name, action: 'create', fields: [] };
  const before = now as Record<string, unknown>;
  const after = desired as Record<string, unknown>;
  const fields = [...new Set([...Object.keys(before), ...Object.keys(after)])]
    .filter((key) => key !== 'name' && JSON.stringify(before[key]) !== JSON.stringify(after[key]))
    .map((key) => `${key}: ${JSON.stringify(before[key]) ?? '-'} → ${JSON.stringify(after[key]) ?? '-'}`);
  return { kind, name, action: fields.length === 0 ? 'unchanged' : 'update', fields };
}

/** One line per change and its fields, then the counts. */
export function printPlan(plan: Change[], dryRun: boolean): void {
  const verb = {
    create: dryRun ? 'would create' : 'created',
    update: dryRun ? 'would update' : 'updated',
    delete: dryRun ? 'would delete' : 'deleted',
    unchanged: 'unchanged',
  };
  for (const change of plan) {
    console.log(`${verb[change.action]} ${change.kind} ${change.name}`);
    for (const field of change.fields) console.log(`    ${field}`);
  }
  const count = (action: Change['action']) => plan.filter((c) => c.action === action).length;
  console.log(
    `${count('create')} to create, ${count('update')} to update, ${count('delete')} to delete, ${count('unchanged')} unchanged${dryRun ? ' (dry run: nothing changed)' : ''}`,
  );
}
