import type { RunStatus } from '@kairos/client';
import { useState } from 'react';
import { api } from '../api.ts';
import { Empty, ErrorBox } from '../components.tsx';
import { fromLocalInput, toLocalInput } from '../format.ts';
import { usePoll } from '../hooks.ts';
import { href, navigate } from '../router.ts';
import { RunsTable } from './runs-table.tsx';

const STATUSES: RunStatus[] = ['queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled'];

/** Runs newest first, paged by id cursor (the store walks its index from the cursor: fast at any depth). */
export function RunsPage({ query }: { query: URLSearchParams }) {
  const job = query.get('job') ?? '';
  const status = query.get('status') ?? '';
  const worker = query.get('worker') ?? '';
  const cursor = query.get('cursor') ?? '';
  // Created after / before: ISO instants in the URL, local time in the inputs.
  const since = query.get('since') ?? '';
  const until = query.get('until') ?? '';
  const [jobText, setJobText] = useState(job);
  const [workerText, setWorkerText] = useState(worker);
  const [sinceText, setSinceText] = useState(toLocalInput(since));
  const [untilText, setUntilText] = useState(toLocalInput(until));
  // The first page follows new runs live; older pages stay still.
  const runs = usePoll(
    () =>
      api.listRuns({
        job: job || undefined,
        status: (status || undefined) as RunStatus | undefined,
        worker: worker || undefined,
        since: since || undefined,
        until: until || undefined,
        cursor: cursor || undefined,
        limit: 50,
      }),
    [job, status, worker, since, until, cursor],
    cursor ? 0 : 1500,
  );
  // Suggestions for the filter fields: job names and the workers the node knows.
  const known = usePoll(
    async () => ({
      jobs: (await api.listJobs({ limit: 500 })).items.map((j) => j.name),
      workers: (await api.listWorkers({ all: true })).items.map((w) => ({ id: w.id, name: w.name })),
    }),
    [],
    10_000,
  );
  const go = (changes: Record<string, string>) =>
    navigate(href('/runs', { job, status, worker, since, until, ...changes }).slice(1));

  return (
    <>
      <h1>Runs</h1>
      <form
        className="filters"
        onSubmit={(e) => {
          e.preventDefault();
          go({
            job: jobText.trim(),
            worker: workerText.trim(),
            since: fromLocalInput(sinceText),
            until: fromLocalInput(untilText),
            cursor: '',
          });
        }}
      >
        <input
          aria-label="Job"
          className="narrow"
          placeholder="Job name"
          value={jobText}
          onChange={(e) => setJobText(e.target.value)}
        />
        <select
          aria-label="Status"
          value={status}
          onChange={(e) => go({ status: e.target.value, cursor: '' })}
        >
          <option value="">Any status</option>
          {STATUSES.map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
        <input
          aria-label="Worker"
          className="narrow"
          placeholder="Worker id"
          list="run-filter-workers"
          value={workerText}
          onChange={(e) => setWorkerText(e.target.value)}
        />
        <datalist id="run-filter-workers">
          {known.data?.workers.map((w) => (
            <option key={w.id} value={w.id}>
              {w.name}
            </option>
          ))}
        </datalist>
        <label className="inline">
          Created after
          <input
            type="datetime-local"
            aria-label="Created after"
            value={sinceText}
            onChange={(e) => setSinceText(e.target.value)}
          />
        </label>
        <label className="inline">
          Created before
          <input
            type="datetime-local"
            aria-label="Created before"
            value={untilText}
            onChange={(e) => setUntilText(e.target.value)}
          />
        </label>
        <button type="submit">Filter</button>
        {(since || until) && (
          <button
            type="button"
            onClick={() => {
              setSinceText('');
              setUntilText('');
              go({ since: '', until: '', cursor: '' });
            }}
          >
            Any time
          </button>
        )}
      </form>
      <ErrorBox error={runs.error} />
      {runs.data && runs.data.items.length === 0 && (
        <Empty>{since || until ? 'No runs were created in this time range.' : 'No runs match.'}</Empty>
      )}
      {runs.data && runs.data.items.length > 0 && <RunsTable runs={runs.data.items} />}
      <div className="pager">
        {cursor && (
          <button type="button" onClick={() => go({ cursor: '' })}>
            ← Newest
          </button>
        )}
        {runs.data?.nextCursor && (
          <button type="button" onClick={() => go({ cursor: runs.data!.nextCursor! })}>
            Older →
          </button>
        )}
      </div>
    </>
  );
}
