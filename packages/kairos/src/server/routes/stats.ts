import type { MinuteStats, Overview, Run } from '@kairos/client';
import type { Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { parseInstant } from '../../core/trigger.ts';
import { KairosError } from '../../errors.ts';
import { RunsPerMinuteQuery } from '../access-schemas.ts';
import type { NodeContext } from '../context.ts';
import { runView } from '../views.ts';

const HOUR_MS = 60 * 60_000;
const MAX_RANGE_MS = 24 * HOUR_MS;

/** The small stats API behind the console's overview: counts and runs per minute, from store indexes. */
export function statsRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const { store, clock } = ctx;
  const viewer = { onRequest: ctx.requireRole('viewer') };

  app.get('/v1/stats/overview', { ...viewer, schema: { tags: ['stats'] } }, async () => {
    const now = clock.now();
    const [counts, failed, timedOut] = await Promise.all([
      store.overviewCounts(now - HOUR_MS, now),
      store.listRuns({ status: 'failed', limit: 10 }),
      store.listRuns({ status: 'timed_out', limit: 10 }),
    ]);
    const { succeeded, failed: failedCount, timed_out, cancelled } = counts.ended;
    const judged = succeeded + failedCount + timed_out;
    const recentFailures: Run[] = [...failed, ...timedOut]
      .sort((a, b) => b.id - a.id)
      .slice(0, 10)
      .map((run) => runView(run));
    const overview: Overview = {
      running: counts.running,
      queued: counts.queued,
      lastHour: { succeeded, failed: failedCount, timedOut: timed_out, cancelled },
      successRate: judged === 0 ? null : succeeded / judged,
      workersOnline: counts.workersOnline,
      nodesOnline: counts.nodesOnline,
      recentFailures,
    };
    return overview;
  });

  app.get<{ Querystring: Static<typeof RunsPerMinuteQuery> }>(
    '/v1/stats/runs-per-minute',
    { ...viewer, schema: { tags: ['stats'], querystring: RunsPerMinuteQuery } },
    async (request) => {
      const now = clock.now();
      const since = request.query.since === undefined ? now - HOUR_MS : instant(request.query.since);
      if (since < now - MAX_RANGE_MS) {
        throw new KairosError('VALIDATION_FAILED', 'since: at most 24 hours back', { path: '/since' });
      }
      const byMinute = new Map<number, MinuteStats>();
      for (const row of await store.runsPerMinute(since)) {
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

function instant(value: string): number {
  try {
    return parseInstant(value, 'since');
  } catch {
    throw new KairosError(
      'VALIDATION_FAILED',
      'since: expected an ISO-8601 instant such as 2030-01-01T09:00:00Z',
      {
        path: '/since',
      },
    );
  }
}
