import type { Job, JobSpec } from './wire.ts';

/**
 * The spec of a job as the API answers it: every setting, written out. Sent back with `PUT
 * /v1/jobs/:name` it changes nothing — what `kairos export` and the console's job form start from.
 */
export function jobToSpec(job: Job): JobSpec {
  const { schedule } = job;
  const spec: JobSpec = {
    name: job.name,
    description: job.description,
    group: job.group,
    params: job.params,
    ...(job.secretParams.length === 0 ? {} : { secretParams: job.secretParams }),
    trigger: job.trigger,
    retry: job.retry,
    timeout: job.timeout,
    priority: job.priority,
    paused: job.paused,
    retention: job.retention,
    owner: job.owner,
    revision: job.revision,
    schedule: {
      misfire:
        schedule.misfire.policy === 'catch-up'
          ? { ...schedule.misfire }
          : { policy: schedule.misfire.policy },
      overlap: schedule.overlap,
      jitter: schedule.jitter,
      ...(schedule.startAt === null ? {} : { startAt: schedule.startAt }),
      ...(schedule.endAt === null ? {} : { endAt: schedule.endAt }),
      ...(schedule.maxRuns === null ? {} : { maxRuns: schedule.maxRuns }),
      ...(schedule.calendars.length === 0 ? {} : { calendars: schedule.calendars }),
    },
    routing: {
      strategy: job.routing.strategy,
      selector: job.routing.selector,
      ...(job.routing.key === null ? {} : { key: job.routing.key }),
    },
    ...(job.maxConcurrency === null ? {} : { maxConcurrency: job.maxConcurrency }),
    ...(job.rateLimit === null ? {} : { rateLimit: job.rateLimit }),
    ...(job.scheduleToStartTimeout === null ? {} : { scheduleToStartTimeout: job.scheduleToStartTimeout }),
    ...(job.resources ? { resources: job.resources } : {}),
  };
  if (job.task === null) spec.handler = job.handler;
  else spec.task = job.task;
  return spec;
}
