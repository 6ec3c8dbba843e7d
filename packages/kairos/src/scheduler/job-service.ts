import type {
  BackfillRequest,
  BackfillResponse,
  JobPatch,
  JobSpec,
  Json,
  JsonObject,
  TraceContext,
  TriggerRequest,
} from '@kairos/client';
import { BACKFILL_DEFAULT_MAX, backfillFires } from '../core/backfill.ts';
import { firstScheduledFire, planResume, type SkippedRange } from '../core/fire-plan.ts';
import { parseRfc3339 } from '../core/instant.ts';
import {
  checkParams,
  checkRoutingKeyNotSecret,
  compileJob,
  describeJob,
  type JobDefinition,
  type JobRecord,
  patchJob,
  sameDefinition,
  sameSchedule,
} from '../core/job.ts';
import { runTiming, sameRunRequest } from '../core/manual-run.ts';
import {
  checkInterval,
  checkJobCountAndRate,
  checkParamsBytes,
  NO_QUOTAS,
  type QuotaConfig,
} from '../core/quotas.ts';
import { checkNoEnvelopes, compileSecretPaths, hasSecrets } from '../core/secret-params.ts';
import { KairosError, QuotaExceededError } from '../errors.ts';
import type { AuditEntry } from '../store/access.ts';
import { DEFAULT_NAMESPACE } from '../store/namespaces.ts';
import type { JobQuotaCheck, PollHandOff, RunRecord, Store } from '../store/store.ts';
import type { Clock } from './clock.ts';
import { SecretKeyring } from './secret-keyring.ts';

export const TRIGGER_BATCH_LIMIT = 1000;

/** Job definitions and manual triggers: validation in the core, then one store write each. */
export class JobService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    /** Told of fires recorded as skipped by a resume (reason `paused`), for metrics. */
    private readonly onSkipped?: (job: string, skipped: SkippedRange) => void,
    /** Encrypts the secret fields of params before they are stored (docs/security.md). */
    private readonly keyring: SecretKeyring = new SecretKeyring([]),
    /** Where a trigger finds a waiting poll to hand its run to (the dispatcher; see Store.triggerRun). */
    private readonly handOff?: PollHandOff,
  ) {}

  /** Creates a job in a namespace (docs/tenancy.md); its calendars must be of that namespace. */
  async create(spec: JobSpec, namespace = DEFAULT_NAMESPACE, quotas = NO_QUOTAS): Promise<JobRecord> {
    checkNoEnvelopes(spec.params, 'params');
    const compiled = compileJob(spec);
    checkDefinitionQuotas(quotas, compiled);
    const job = this.sealed(compiled, null);
    await this.checkCalendars(job, namespace);
    const now = this.clock.now();
    return this.store.createJob(job, scheduleOf(job, now), now, namespace, countAndRateCheck(quotas, job));
  }

  /**
   * Creates or replaces: the next fire time survives when the schedule did not change, and so does
   * a pause when the spec does not say `paused` (a deploy that puts its jobs does not resume one an
   * operator paused). With a `version`, only replaces that version of the job (VERSION_CONFLICT
   * otherwise; JOB_NOT_FOUND when there is no job to replace).
   */
  async put(
    spec: JobSpec,
    condition: EditCondition = {},
    namespace = DEFAULT_NAMESPACE,
    quotas = NO_QUOTAS,
  ): Promise<JobRecord> {
    condition = { version: condition.version ?? spec.version };
    checkNoEnvelopes(spec.params, 'params');
    const job = compileJob(spec);
    checkDefinitionQuotas(quotas, job);
    await this.checkCalendars(job, namespace);
    for (let tries = 0; ; tries++) {
      const existing = await this.store.getJob(job.name);
      // A job of that name in another namespace is not this namespace's to replace.
      if (existing && existing.namespace !== namespace) throw notFound(job.name);
      if (existing) {
        const keepsPause = spec.paused === undefined;
        return this.replace(
          existing,
          (stored) => this.sealed(keepsPause ? { ...job, paused: stored.paused } : job, stored),
          condition,
          quotas,
        );
      }
      if (condition.version !== undefined) throw notFound(job.name);
      try {
        const now = this.clock.now();
        const sealed = this.sealed(job, null);
        return await this.store.createJob(
          sealed,
          scheduleOf(sealed, now),
          now,
          namespace,
          countAndRateCheck(quotas, sealed),
        );
      } catch (error) {
        // Another PUT of the same name won the race: replace what it wrote.
        if (!(error instanceof KairosError && error.code === 'JOB_NAME_TAKEN') || tries > 2) throw error;
      }
    }
  }

  /** Applies a partial update, to the job as stored when it writes (see `replace`). */
  async update(
    name: string,
    patch: JobPatch,
    condition: EditCondition = {},
    quotas = NO_QUOTAS,
  ): Promise<JobRecord> {
    const { version, ...fields } = patch;
    checkNoEnvelopes(fields.params, 'params');
    if (fields.params) checkParamsBytes(quotas, fields.params);
    const expected = { version: condition.version ?? version };
    return this.replace(
      await this.get(name),
      (existing) => this.sealed(patchJob(existing, fields), existing),
      expected,
      quotas,
    );
  }

  async get(name: string): Promise<JobRecord> {
    const job = await this.store.getJob(name);
    if (!job) throw new KairosError('JOB_NOT_FOUND', `no job named ${JSON.stringify(name)}`);
    return job;
  }

  /** Deletes a job and its runs; with `condition.version`, only that version (VERSION_CONFLICT otherwise). */
  async delete(name: string, condition: EditCondition = {}): Promise<void> {
    if (await this.store.deleteJob(name, condition.version, this.clock.now())) return;
    const current = condition.version === undefined ? null : await this.store.getJob(name);
    if (current && condition.version !== undefined) throw versionConflict(current, condition.version);
    throw notFound(name);
  }

  pause(name: string, condition: EditCondition = {}): Promise<JobRecord> {
    return this.update(name, { paused: true }, condition);
  }

  resume(name: string, condition: EditCondition = {}): Promise<JobRecord> {
    return this.update(name, { paused: false }, condition);
  }

  /**
   * Pauses or resumes a workflow's own job (docs/workflows.md#triggers), by the job's own path: a
   * pause keeps the next fire, a resume records the fires missed meanwhile (`paused`).
   */
  async setWorkflowPaused(jobName: string, paused: boolean): Promise<JobRecord> {
    const job = await this.store.getJob(jobName, { workflowJobs: true });
    if (!job) throw notFound(jobName);
    // Only the pause state changes: the job was written whole by the workflow (not a job spec, whose
    // name could not hold the `/` of its name).
    return this.replace(job, (existing) => ({ ...existing, paused }), {});
  }

  /** Queues runs of a job; `traceContext`: the trace they continue (the API request's span). */
  async trigger(
    name: string,
    requests: readonly TriggerRequest[],
    traceContext: TraceContext | null = null,
    quotas = NO_QUOTAS,
  ): Promise<number[]> {
    if (requests.length === 0 || requests.length > TRIGGER_BATCH_LIMIT) {
      throw new KairosError(
        'VALIDATION_FAILED',
        `runs: expected 1 to ${TRIGGER_BATCH_LIMIT} trigger requests`,
      );
    }
    for (const [i, request] of requests.entries())
      checkIdempotencyKey(request.idempotencyKey, `runs[${i}].idempotencyKey`);
    for (const request of requests) if (request.params) checkParamsBytes(quotas, request.params);
    const job = await this.get(name);
    const now = this.clock.now();
    const runs = requests.map((request, i) => ({
      params: this.runParams(job, request, `runs[${i}].`),
      priority: request.priority ?? job.priority,
      idempotencyKey: request.idempotencyKey,
      ...runTiming(request, now, `runs[${i}].`),
      traceContext,
    }));
    // Each round takes the envelopes of one more run an idempotency key holds (see `heldSecrets`).
    for (let round = 0; ; round++) {
      try {
        return await this.store.enqueueRuns(job.id, runs, now, quotas.maxQueuedRuns);
      } catch (error) {
        const held = round < runs.length ? await this.heldSecrets(error, runs) : null;
        if (!held) throw error;
        runs[held.index]!.params = held.params;
      }
    }
  }

  /**
   * One trigger, answered with its run, and `audit` committed with it: the request's params are
   * checked here and the job's defaults applied by the store in the same write, so that the job is
   * not read first; only params merged into the job's need the job read first.
   */
  async triggerOne(
    name: string,
    request: TriggerRequest,
    audit?: AuditEntry,
    traceContext: TraceContext | null = null,
    quotas = NO_QUOTAS,
  ): Promise<RunRecord> {
    checkIdempotencyKey(request.idempotencyKey, 'idempotencyKey');
    if (request.params) checkParamsBytes(quotas, request.params);
    let params: JsonObject | null = null;
    let priority = request.priority ?? null;
    if (request.params || request.secretParams) {
      // The job's secret fields apply to the params a trigger sends: the job is read first.
      const job = await this.get(name);
      params = this.runParams(job, request, '');
      priority ??= job.priority;
    }
    const now = this.clock.now();
    const timing = runTiming(request, now);
    const runRequest = { params, priority, idempotencyKey: request.idempotencyKey, ...timing, traceContext };
    for (let round = 0; ; round++) {
      try {
        const run = await this.store.triggerRun(
          name,
          runRequest,
          now,
          audit,
          quotas.maxQueuedRuns,
          this.handOff,
        );
        if (!run) throw new KairosError('JOB_NOT_FOUND', `no job named ${JSON.stringify(name)}`);
        return run;
      } catch (error) {
        const held =
          round === 0 && runRequest.params !== null && priority !== null
            ? await this.heldSecrets(error, [{ params: runRequest.params, priority }])
            : null;
        if (!held) throw error;
        runRequest.params = held.params;
      }
    }
  }

  /**
   * A run's params from a trigger: the request's (replacing or merged over the job's), checked, and
   * sealed: the fields the job or the trigger names secret are encrypted, and `"***"` takes the job's
   * stored value of that field.
   */
  private runParams(job: JobRecord, request: TriggerRequest, prefix: string): JsonObject {
    checkNoEnvelopes(request.params, `${prefix}params`);
    const paths = [...job.secretParams, ...compileSecretPaths(request.secretParams, `${prefix}secretParams`)];
    checkRoutingKeyNotSecret(job.dispatch, paths);
    const params = checkParams(paramsOf(job.params, request), `${prefix}params`);
    return this.keyring.seal(params, [...new Set(paths)], job.params);
  }

  /** A definition with its secret fields encrypted; `stored` is the job as stored, for an edit. */
  private sealed(job: JobDefinition, stored: JobRecord | null): JobDefinition {
    const params = this.keyring.seal(job.params, job.secretParams, stored?.params ?? null);
    return params === job.params ? job : { ...job, params };
  }

  /**
   * A trigger's secret fields are encrypted anew each time (a random IV), so a repeated request never
   * carries the envelopes of the run its idempotency key holds, and the store would answer
   * IDEMPOTENCY_CONFLICT. When it does, and the held run's params decrypt to the request's (with the
   * same priority), the request may take the held run's envelopes and be sent again: the store then
   * answers that run, as for any repeated request. Null when the conflict is a real one.
   */
  private async heldSecrets(
    error: unknown,
    requests: ReadonlyArray<{ params: JsonObject; priority: number; idempotencyKey?: string | undefined }>,
  ): Promise<{ index: number; params: JsonObject } | null> {
    if (!(error instanceof KairosError) || error.code !== 'IDEMPOTENCY_CONFLICT') return null;
    const details = error.details as { runId?: number; idempotencyKey?: string } | undefined;
    if (details?.runId === undefined) return null;
    const index =
      requests.length === 1 ? 0 : requests.findIndex((r) => r.idempotencyKey === details.idempotencyKey);
    const request = requests[index];
    if (!request || !hasSecrets(request.params)) return null;
    const held = await this.store.getRun(details.runId);
    if (!held || !hasSecrets(held.params)) return null;
    try {
      const same = sameRunRequest(
        { params: this.keyring.open(held.params), priority: held.priority },
        this.keyring.open(request.params),
        request.priority,
      );
      return same ? { index, params: held.params } : null;
    } catch {
      return null;
    }
  }

  /**
   * Checks that a job's calendars exist in its namespace (CALENDAR_NOT_FOUND). Its `after` chain is
   * checked by the store, inside the transaction that writes the job (DEPENDENCY_CYCLE), so that two
   * concurrent definitions cannot close a cycle between them (docs/schedules.md#dependencies).
   */
  private async checkCalendars(job: JobDefinition, namespace: string): Promise<void> {
    const names = job.schedule.calendars;
    if (names.length === 0) return;
    const found = new Set(
      (await this.store.getCalendars(names)).filter((c) => c.namespace === namespace).map((c) => c.name),
    );
    const missing = names.filter((name) => !found.has(name));
    if (missing.length > 0) {
      throw new KairosError(
        'CALENDAR_NOT_FOUND',
        `no calendar named ${missing.map((n) => JSON.stringify(n)).join(', ')}`,
        { missing },
      );
    }
  }

  /**
   * Runs a job for every fire time of its trigger in a past range (see `backfillFires`);
   * `traceContext`: the trace every run continues (the API request's span), as a trigger's do.
   */
  async backfill(
    name: string,
    request: BackfillRequest,
    traceContext: TraceContext | null = null,
    quotas = NO_QUOTAS,
  ): Promise<BackfillResponse> {
    const job = await this.get(name);
    const now = this.clock.now();
    const { fires, nextFrom } = backfillFires(
      job.trigger,
      instant(request.from, 'from'),
      instant(request.to, 'to'),
      request.max ?? BACKFILL_DEFAULT_MAX,
      now,
    );
    if (quotas.maxBackfillRuns !== null && fires.length > quotas.maxBackfillRuns) {
      throw new QuotaExceededError(
        'maxBackfillRuns',
        quotas.maxBackfillRuns,
        fires.length,
        `the backfill would create ${fires.length} runs; the namespace's quota is ${quotas.maxBackfillRuns} (send a smaller max)`,
      );
    }
    const { created, existing } = await this.store.backfillRuns(
      job.id,
      fires,
      request.overlap ?? 'buffer-all',
      now,
      traceContext,
      quotas.maxQueuedRuns,
    );
    return {
      runs: created.map((c) => ({ runId: c.runId, fireTime: new Date(c.fireTime).toISOString() })),
      existing: existing.map((t) => new Date(t).toISOString()),
      nextFrom: nextFrom === null ? null : new Date(nextFrom).toISOString(),
    };
  }

  /**
   * Writes the definition `build` makes of the job as stored, in one conditional write that applies
   * only while the job is still as read: same version (nobody edited, paused or resumed it since)
   * and same next fire (the schedule did not move it, e.g. a fixed-delay run ending). Otherwise the
   * job is read again and the edit made anew on what is stored, so no edit writes back a stale next
   * fire or pause state. With `condition.version`, a job at another version answers VERSION_CONFLICT
   * with the job as it is: the caller decided on a version that is gone.
   */
  private async replace(
    existing: JobRecord,
    build: (existing: JobRecord) => JobDefinition,
    condition: EditCondition,
    quotas: QuotaConfig = NO_QUOTAS,
  ): Promise<JobRecord> {
    for (let tries = 0; ; tries++) {
      if (condition.version !== undefined && condition.version !== existing.version) {
        throw versionConflict(existing, condition.version);
      }
      const job = build(existing);
      // The same owner's older definition (a worker of an older release, an older file): refused,
      // so that the newest definition stays whatever the order in which they arrive.
      if (
        job.owner !== null &&
        job.owner === existing.owner &&
        job.revision !== null &&
        existing.revision !== null &&
        job.revision < existing.revision
      ) {
        throw new KairosError(
          'STALE_REVISION',
          `job ${JSON.stringify(existing.name)} was written by revision ${existing.revision} of ${existing.owner}, newer than ${job.revision}`,
          { revision: existing.revision, job: describeJob(existing) as unknown as Json },
        );
      }
      // Nothing to change: nothing written, the version stays.
      if (sameDefinition(existing, job)) return existing;
      const scheduleKept = sameSchedule({ ...existing, paused: job.paused }, job);
      if (!scheduleKept) checkInterval(quotas, job.trigger);
      // maxFiresPerSecond on a new schedule, judged by the store in the write's transaction under
      // the namespace's lock, as a create is: concurrent edits never pass it together.
      const quota = scheduleKept ? undefined : rateCheck(quotas, job);
      await this.checkCalendars(job, existing.namespace);
      const now = this.clock.now();
      const expected = { version: existing.version, nextFireAt: existing.nextFireAt };
      // While paused a job keeps its next fire, so that resuming knows which fires it missed.
      const next = scheduleKept ? existing.nextFireAt : firstScheduledFire(job.trigger, job.schedule, now);
      if (existing.paused && !job.paused) {
        const resume = planResume(job.trigger, job.schedule, next, now);
        const resumed = await this.store.resumeJob(
          existing.id,
          job,
          resume.next,
          resume.skipped,
          now,
          expected,
          quota,
        );
        if (resumed) {
          if (resume.skipped) this.onSkipped?.(job.name, resume.skipped);
          return resumed;
        }
      } else {
        const updated = await this.store.updateJob(existing.id, job, next, now, expected, quota);
        if (updated) {
          if (job.paused && !existing.paused) {
            // A pause reaches the fires made ahead of their instant too, those no worker holds yet
            // (see the store's contract): a held one runs, as if the pause had come just after it.
            const withdrawn = await this.store.withdrawFiresAhead(updated.id, now);
            if (withdrawn > 0) return (await this.store.getJob(job.name)) ?? updated;
          }
          return updated;
        }
      }
      // Changed or deleted by someone else since we read it: judge again from what is stored now.
      // (A job's name never holds a `/`: only a workflow's own job is found by `workflowJobs`.)
      const current = await this.store.getJob(existing.name, { workflowJobs: true });
      if (!current || current.id !== existing.id) throw notFound(existing.name);
      // Each round lost to a write that landed; a job edited this fast by others is a conflict.
      if (tries >= EDIT_ROUNDS) throw versionConflict(current, condition.version ?? existing.version);
      existing = current;
    }
  }
}

/** How many times an edit is made anew on a job that others keep changing before it gives up. */
const EDIT_ROUNDS = 10;

/** What an edit expects of the job it changes: `version`, the job's version it was decided on. */
export interface EditCondition {
  version?: number | undefined;
}

function notFound(name: string): KairosError {
  return new KairosError('JOB_NOT_FOUND', `no job named ${JSON.stringify(name)}`);
}

function versionConflict(current: JobRecord, expected: number): KairosError {
  return new KairosError(
    'VERSION_CONFLICT',
    `job ${JSON.stringify(current.name)} is at version ${current.version}, not ${expected}: it changed since it was read`,
    { expected, job: describeJob(current) as unknown as Json },
  );
}

function scheduleOf(job: JobDefinition, now: number): number | null {
  return job.paused ? null : firstScheduledFire(job.trigger, job.schedule, now);
}

function instant(value: string, field: string): number {
  const ms = parseRfc3339(value);
  if (ms === null)
    throw new KairosError(
      'VALIDATION_FAILED',
      `${field}: expected an RFC 3339 instant with an offset, such as 2030-01-01T09:00:00Z`,
      { field },
    );
  return ms;
}

function paramsOf(base: JsonObject, request: TriggerRequest): JsonObject {
  if (!request.params) return base;
  return request.mergeParams ? { ...base, ...request.params } : request.params;
}

/** The quotas a job's own definition must meet (422 QUOTA_EXCEEDED): params bytes and interval. */
function checkDefinitionQuotas(quotas: QuotaConfig, job: JobDefinition): void {
  checkParamsBytes(quotas, job.params);
  checkInterval(quotas, job.trigger);
}

/** The check a create runs under the namespace's lock (Store.createJob), when a count or rate quota is set. */
function countAndRateCheck(quotas: QuotaConfig, job: JobDefinition): JobQuotaCheck | undefined {
  if (quotas.maxJobs === null && quotas.maxFiresPerSecond === null) return undefined;
  return (triggers) => checkJobCountAndRate(quotas, job.trigger, triggers, true);
}

/**
 * The check an edit that changes a job's schedule runs under the namespace's lock (Store.updateJob,
 * Store.resumeJob), when maxFiresPerSecond is set: the job's new rate with its namespace's other
 * jobs'. An edit adds no job: maxJobs is not judged.
 */
function rateCheck(quotas: QuotaConfig, job: JobDefinition): JobQuotaCheck | undefined {
  if (quotas.maxFiresPerSecond === null) return undefined;
  return (others) => checkJobCountAndRate(quotas, job.trigger, others, false);
}

/**
 * A trigger's idempotency key must not take the form of a workflow step run's key
 * (`workflow:<instance>:<step>`, store/workflows.ts): that step's run would then not be inserted
 * (the key's unique index) and its instance would wait for it forever. `workflow:` is reserved.
 */
function checkIdempotencyKey(key: string | undefined, field: string): void {
  if (key?.startsWith('workflow:'))
    throw new KairosError('VALIDATION_FAILED', `${field}: keys starting with 'workflow:' are reserved`, {
      field,
    });
}
