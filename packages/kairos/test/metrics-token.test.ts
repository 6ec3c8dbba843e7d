import { beforeAll, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config.ts';
import type { KairosNode } from '../src/node.ts';
import { startTestNode } from './helpers.ts';

// `/metrics` names every namespace's groups and jobs: with KAIROS_METRICS_TOKEN set it answers only
// the scraper that sends that token.
describe('metrics token', () => {
  const token = 'metrics-token-0123456789';
  let node: KairosNode;
  beforeAll(async () => {
    ({ node } = await startTestNode({}, { metricsToken: token }));
  });

  it('answers 401 UNAUTHORIZED without the token or with another, and the exposition with it', async () => {
    const get = (authorization?: string) =>
      fetch(`${node.url}/metrics`, { headers: authorization ? { authorization } : {} });

    for (const authorization of [undefined, 'Bearer admin-t', `Bearer ${token}x`, token, 'Bearer ']) {
      const refused = await get(authorization);
      expect(refused.status).toBe(401);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
    }
    const ok = await get(`Bearer ${token}`);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('kairos_runs_created_total');
  });

  it('refuses a short token in the config', () => {
    expect(() => resolveConfig({ adminToken: 'a', workerToken: 'w', metricsToken: 'short' }, {})).toThrow(
      /metricsToken/,
    );
    expect(
      resolveConfig({ adminToken: 'a', workerToken: 'w' }, { KAIROS_METRICS_TOKEN: 'from-the-environment-1' })
        .metricsToken,
    ).toBe('from-the-environment-1');
  });
});
