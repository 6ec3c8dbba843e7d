import {
  type MinuteStats,
  MinuteStatsListSchema,
  type Overview,
  OverviewQuery,
  OverviewSchema,
  type RunSummary,
  RunsPerMinuteQuery,
  type StatsWindow,
} from '@kairos/client';
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { KairosError } from '../../errors.ts';
import { answers } from '../answers.ts';
import type { NodeContext } from '../context.ts';
import { queryInstant } from '../query-instant.ts';
import { runSummaryView } from '../views.ts';

const HOUR_MS = 60 * 60_000;
const MAX_RANGE_MS = 24 * HOUR_MS;
/**
 * Fire lateness is read from the newest this many scheduled starts of the window: percentiles of
 * 10 000 starts are steady, and the read stays a few milliseconds however busy the day was.
 */
const LATENESS_SAMPLE = 10_000;

/** The small stats API behind the console's overview: counts and runs per minute, from store indexes. */
export function statsRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const { store, clock } = ctx;
  const viewer = { onRequest: ctx.requireRole('viewer') };

  app.get<{ Querystring: Static<typeof OverviewQuery> }>(
    '/v1/stats/overview',
    {
      ...viewer,
      schema: {
        operationId: 'overview',
        tags: ['stats'],
        querystring: OverviewQuery,
        response: answers({ 200: OverviewSchema }),
      },
    },
    async (request) => {
      const window: StatsWindow = request.query.window ?? '1h';
      const now = clock.now();
      const since = now - (window === '24h' ? MAX_RANGE_MS : HOUR_MS);
      const [counts, failed, timedOut, lateness] = await Promise.all([
        store.overviewCounts(since, now, request.namespace),
        store.listRuns({ namespace: request.namespace, status: 'failed', limit: 10, summary: true }),
        store.listRuns({ namespace: request.namespace, status: 'timed_out', limit: 10, summary: true }),
        store.fireLateness(since, now, LATENESS_SAMPLE),
      ]);
      const { succeeded, failed: failedCount, timed_out, cancelled } = counts.ended;
      const judged = succeeded + failedCount + timed_out;
      const recentFailures: RunSummary[] = [...failed, ...timedOut]
        .sort((a, b) => b.id - a.id)
        .slice(0, 10)
        .map(runSummaryView);
      const ended = { succeeded, failed: failedCount, timedOut: timed_out, cancelled };
      const overview: Overview = {
        running: counts.running,
        queued: counts.queued,
        window,
        ended,
        lastHour: ended,
        successRate: judged === 0 ? null : succeeded / judged,
        lateness: {
          count: lateness.count,
          p50Ms: lateness.p50,
          p99Ms: lateness.p99,
          sampled: lateness.sampled,
        },
        workersOnline: counts.workersOnline,
        nodesOnline: counts.nodesOnline,
        recentFailures,
      };
      return overview;
    },
  );

  app.get<{ Querystring: Static<typeof RunsPerMinuteQuery> }>(
    '/v1/stats/runs-per-minute',
    {
      ...viewer,
      schema: {
        operationId: 'runsPerMinute',
        tags: ['stats'],
        querystring: RunsPerMinuteQuery,
        response: answers({ 200: MinuteStatsListSchema }),
      },
    },
    async (request) => {
      const now = clock.now();
      const since = queryInstant(request.query.since, 'since') ?? now - HOUR_MS;
      if (since < now - MAX_RANGE_MS) {
        throw new KairosError('VALIDATION_FAILED', 'since: at most 24 hours back', { path: '/since' });
      }
      const byMinute = new Map<number, MinuteStats>();
      for (const row of await store.runsPerMinute(since, request.namespace)) {
        let entry = byMinute.get(row.minute);
        if (!entry) {
          entry = {
            minute: new Date(row.minute).toISOString(),
            succeeded: 0,
            failed: 0,
            timedOut: 0,
            cancelled: 0,
          };
          byMinute.set(row.minute, entry);
        }
        if (row.status === 'succeeded') entry.succeeded += row.count;
        else if (row.status === 'failed') entry.failed += row.count;
        else if (row.status === 'timed_out') entry.timedOut += row.count;
        else if (row.status === 'cancelled') entry.cancelled += row.count;
      }
      return { items: [...byMinute.values()] };
    },
  );
}
