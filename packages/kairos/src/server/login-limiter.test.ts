import { describe, expect, it } from 'vitest';
import { LoginLimiter } from './login-limiter.ts';

describe('LoginLimiter', () => {
  it('blocks a (name, address) after the failures of one window, until the window ends', () => {
    const limiter = new LoginLimiter(3, 1000);
    for (let i = 0; i < 3; i++) {
      expect(limiter.blockedFor('ana', '10.0.0.1', i)).toBe(0);
      limiter.failed('ana', '10.0.0.1', i);
    }
    expect(limiter.blockedFor('ana', '10.0.0.1', 10)).toBe(990);
    expect(limiter.blockedFor('ana', '10.0.0.2', 10)).toBe(0);
    expect(limiter.blockedFor('bob', '10.0.0.1', 10)).toBe(0);
    expect(limiter.blockedFor('ana', '10.0.0.1', 1000)).toBe(0);
    // A new window starts counting from one.
    limiter.failed('ana', '10.0.0.1', 1000);
    expect(limiter.blockedFor('ana', '10.0.0.1', 1001)).toBe(0);
  });

  it('forgets the failures of a user who logged in', () => {
    const limiter = new LoginLimiter(2, 1000);
    limiter.failed('ana', 'ip', 0);
    limiter.succeeded('ana', 'ip');
    limiter.failed('ana', 'ip', 1);
    expect(limiter.blockedFor('ana', 'ip', 2)).toBe(0);
  });
});
