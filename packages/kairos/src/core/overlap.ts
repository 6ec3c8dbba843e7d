import type { OverlapPolicy } from '@kairos/client';

/**
 * The available time of a buffered run: queued, but never claimable until the job's previous run
 * ends and promotes it (the claim query takes `available_at <= now` only).
 */
export const BUFFERED_AT = 8_640_000_000_000_000;

/**
 * The available time of a workflow `job` step's run queued while its job is paused: queued, never
 * claimable until the job is resumed, which makes it available in the resume's transaction
 * (docs/workflows.md). A valid date, and not BUFFERED_AT: no overlap promotion releases it.
 */
export const HELD_WHILE_PAUSED_AT = BUFFERED_AT - 1;

/** A job's active runs as the fire transaction reads them from the store. */
export interface ActiveRuns {
  /** Queued (claimable) or running. */
  inFlight: number;
  /** Queued behind the previous run (buffer policies). */
  buffered: number;
}

export interface OverlapDecision {
  /** Per fire, in order: run now, buffer behind the previous run, or skip (ledger reason `overlap`). */
  fires: Array<'run' | 'buffer' | 'skip'>;
  /** Cancel every active run first (`cancel-previous`). */
  cancelActive: boolean;
  /**
   * Promote the oldest buffered run first: nothing is in flight although runs are buffered (the
   * node that ended the previous run died before promoting), so the queue moves on.
   */
  promoteOldest: boolean;
}

/**
 * What the fires of one plan do, given the job's active runs. Pure: the store reads `active` and
 * applies the answer inside the fire transaction, so the decision is cluster-wide.
 */
export function decideOverlap(policy: OverlapPolicy, fires: number, active: ActiveRuns): OverlapDecision {
  const none: OverlapDecision = { fires: [], cancelActive: false, promoteOldest: false };
  if (fires === 0) return none;
  const busy = active.inFlight + active.buffered > 0;
  switch (policy) {
    case 'allow':
      return { ...none, fires: Array(fires).fill('run') };
    case 'skip':
      return { ...none, fires: Array.from({ length: fires }, (_, i) => (i === 0 && !busy ? 'run' : 'skip')) };
    case 'cancel-previous':
      return {
        ...none,
        cancelActive: busy,
        fires: Array.from({ length: fires }, (_, i) => (i === fires - 1 ? 'run' : 'skip')),
      };
    default: {
      const promoteOldest = active.inFlight === 0 && active.buffered > 0;
      let inFlight = active.inFlight + (promoteOldest ? 1 : 0);
      let buffered = active.buffered - (promoteOldest ? 1 : 0);
      const out: OverlapDecision['fires'] = [];
      for (let i = 0; i < fires; i++) {
        if (inFlight === 0) {
          out.push('run');
          inFlight = 1;
        } else if (policy === 'buffer-all' || buffered === 0) {
          out.push('buffer');
          buffered++;
        } else {
          out.push('skip');
        }
      }
      return { fires: out, cancelActive: false, promoteOldest };
    }
  }
}

/** A workflow's unfinished instances (running, or paused by hand) and held fires, as a fire or an end reads them. */
export interface WorkflowOverlap {
  unfinished: number;
  held: number;
}

/**
 * The overlap decision for the fires of a workflow (docs/workflows.md#triggers): the rules of a
 * job's runs, with the workflow's unfinished instances in flight and its held fires buffered. A
 * `buffer` fire is held (a row of its own, no instance yet); `cancelActive` cancels the unfinished
 * instances and drops the held fires to the ledger; `promoteOldest` starts the oldest held fire
 * first (nothing is unfinished although fires are held: an end that should have started it did not
 * commit that start, so the fire does).
 */
export function decideWorkflowOverlap(
  policy: OverlapPolicy,
  fires: number,
  state: WorkflowOverlap,
): OverlapDecision {
  return decideOverlap(policy, fires, { inFlight: state.unfinished, buffered: state.held });
}

/**
 * Whether the transaction that ended an instance starts the workflow's oldest held fire: fires are
 * held and no instance of the workflow is unfinished any more (after this end). One at a time: the
 * instance it starts is unfinished, and the next held fire waits for its end.
 */
export function startsHeldFire(state: WorkflowOverlap): boolean {
  return state.unfinished === 0 && state.held > 0;
}
