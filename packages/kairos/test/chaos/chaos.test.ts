import { expect, it } from 'vitest';
import { PROFILES, runChaos } from './chaos.ts';

// The quick chaos profile on every `npm test`: a 3-node PostgreSQL cluster, workers in network
// namespaces, and a seeded nemesis for a minute; the verdict checks the whole history. A fixed
// seed keeps CI reproducible; CHAOS_SEED runs another (docs/reliability.md).

const seed = Number(process.env.CHAOS_SEED ?? 20261205);

it(`the quick chaos profile (seed ${seed}) keeps every promise`, async () => {
  const result = await runChaos(PROFILES.quick!, seed, () => {});
  // The verdict's summary in the test output (the re-executions it excused are in verdict.txt).
  console.log(
    result.report
      .split('\n')
      .filter((line) => !line.startsWith('re-executed'))
      .join('\n'),
  );
  console.log(`history and verdict: ${result.dir}`);
  expect(
    result.verdict.invariants.flatMap((i) => i.violations.map((v) => `${v.kind}: ${v.message}`)),
  ).toEqual([]);
  // The run did what it claims: faults injected, fires and enqueues checked, executions recorded.
  expect(result.verdict.counts.faultsInjected).toBeGreaterThan(5);
  expect(result.verdict.counts.firesChecked).toBeGreaterThan(100);
  expect(result.verdict.counts.acknowledgedEnqueues).toBeGreaterThan(20);
}, 420_000);
