import type { JobPatch, JobSpec, JsonObject, TriggerRequest } from '@kairos/client';
import { firstScheduledFire, planResume, type SkippedRange } from '../core/fire-plan.ts';
import {
  checkParams,
  compileJob,
  type JobDefinition,
  type JobRecord,
  patchJob,
  sameSchedule,
} from '../core/job.ts';
import { KairosError } from '../errors.ts';
import type { Store } from '../store/store.ts';
import type { Clock } from './clock.ts';

export const TRIGGER_BATCH_LIMIT = 1000;

/** Job definitions and manual triggers: validation in the core, then one store write each. */
export class JobService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    /** Told of fires recorded as skipped by a resume (reason `paused`), for metrics. */
    private readonly onSkipped?: (job: string, skipped: SkippedRange) => void,
  ) {}

  async create(spec: JobSpec): Promise<JobRecord> {
    const job = compileJob(spec);
    const now = this.clock.now();
    return this.store.createJob(job, scheduleOf(job, now), now);
  }

  /** Creates or replaces: the next fire time survives when the schedule did not change. */
  async put(spec: JobSpec): Promise<JobRecord> {
    const job = compileJob(spec);
    for (let tries = 0; ; tries++) {
      const existing = await this.store.getJob(job.name);
      if (existing) return this.replace(existing, job);
      try {
        const now = this.clock.now();
        return await this.store.createJob(job, scheduleOf(job, now), now);
      } catch (error) {
        // Another PUT of the same name won the race: replace what it wrote.
        if (!(error instanceof KairosError && error.code === 'JOB_NAME_TAKEN') || tries > 2) throw error;
      }
    }
  }

  async update(name: string, patch: JobPatch): Promise<JobRecord> {
    const existing = await this.get(name);
    return this.replace(existing, patchJob(existing, patch));
  }

  async get(name: string): Promise<JobRecord> {
    const job = await this.store.getJob(name);
    if (!job) throw new KairosError('JOB_NOT_FOUND', `no job named ${JSON.stringify(name)}`);
    return job;
  }

  async delete(name: string): Promise<void> {
    if (!(await this.store.deleteJob(name)))
      throw new KairosError('JOB_NOT_FOUND', `no job named ${JSON.stringify(name)}`);
  }

  pause(name: string): Promise<JobRecord> {
    return this.update(name, { paused: true });
  }

  resume(name: string): Promise<JobRecord> {
    return this.update(name, { paused: false });
  }

  async trigger(name: string, requests: readonly TriggerRequest[]): Promise<number[]> {
    if (requests.length === 0 || requests.length > TRIGGER_BATCH_LIMIT) {
      throw new KairosError(
        'VALIDATION_FAILED',
        `runs: expected 1 to ${TRIGGER_BATCH_LIMIT} trigger requests`,
      );
    }
    const job = await this.get(name);
    const runs = requests.map((request) => ({
      params: checkParams(paramsOf(job.params, request), 'params'),
      priority: request.priority ?? job.priority,
      idempotencyKey: request.idempotencyKey,
    }));
    return this.store.enqueueRuns(job.id, runs, this.clock.now());
  }

  private async replace(existing: JobRecord, job: JobDefinition): Promise<JobRecord> {
    for (let tries = 0; ; tries++) {
      const now = this.clock.now();
      // While paused a job keeps its next fire, so that resuming knows which fires it missed.
      const next = sameSchedule({ ...existing, paused: job.paused }, job)
        ? existing.nextFireAt
        : firstScheduledFire(job.trigger, job.schedule, now);
      if (existing.paused && !job.paused) {
        const resume = planResume(job.trigger, job.schedule, next, now);
        const resumed = await this.store.resumeJob(existing.id, job, resume.next, resume.skipped, now);
        if (resumed) {
          if (resume.skipped) this.onSkipped?.(job.name, resume.skipped);
          return resumed;
        }
        // Resumed or deleted by someone else since we read it: judge again from what is stored now.
        if (tries > 2) throw new KairosError('JOB_NOT_FOUND', `no job named ${JSON.stringify(job.name)}`);
        existing = await this.get(job.name);
        continue;
      }
      const updated = await this.store.updateJob(existing.id, job, next, now);
      if (!updated) throw new KairosError('JOB_NOT_FOUND', `no job named ${JSON.stringify(job.name)}`);
      return updated;
    }
  }
}

function scheduleOf(job: JobDefinition, now: number): number | null {
  return job.paused ? null : firstScheduledFire(job.trigger, job.schedule, now);
}

function paramsOf(base: JsonObject, request: TriggerRequest): JsonObject {
  if (!request.params) return base;
  return request.mergeParams ? { ...base, ...request.params } : request.params;
}
