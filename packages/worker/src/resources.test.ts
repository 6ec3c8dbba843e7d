import { availableParallelism, totalmem } from 'node:os';
import { describe, expect, it } from 'vitest';
import { resolveResources } from './options.ts';

describe('the resources a worker advertises', () => {
  it('default to the host, then the environment, then the option; false advertises nothing', () => {
    expect(resolveResources(undefined, undefined)).toEqual({
      cpu: availableParallelism(),
      memory: totalmem(),
    });
    expect(resolveResources(undefined, 'cpu=2, memory=4Gi,gpu=1')).toEqual({ cpu: 2, memory: '4Gi', gpu: 1 });
    expect(resolveResources({ gpu: 2, memory: '16Gi' }, 'gpu=1')).toEqual({
      cpu: availableParallelism(),
      memory: '16Gi',
      gpu: 2,
    });
    expect(resolveResources(false, 'gpu=1')).toBeNull();
  });

  it('refuses what is not name=amount or an object of amounts', () => {
    expect(() => resolveResources(undefined, 'gpu')).toThrow(/KAIROS_WORKER_RESOURCES/);
    expect(() => resolveResources({ gpu: true as unknown as number }, undefined)).toThrow(/resources\.gpu/);
    expect(() => resolveResources([] as never, undefined)).toThrow(/resources/);
  });
});
