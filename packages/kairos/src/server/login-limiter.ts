/**
 * Login rate limiting: at most `maxFailures` failed logins per (user name, client address) within
 * `windowMs`; a success clears the count. Kept in memory per node: a cluster of n nodes allows up
 * to n × maxFailures guesses per window, which scrypt's cost still makes slow (docs/console.md).
 */
export class LoginLimiter {
  private readonly failures = new Map<string, { count: number; resetAt: number }>();

  constructor(
    private readonly maxFailures = 5,
    private readonly windowMs = 15 * 60_000,
  ) {}

  /** Milliseconds until the next attempt is allowed, or 0 when it is allowed now. */
  blockedFor(name: string, ip: string, now: number): number {
    const entry = this.failures.get(key(name, ip));
    if (!entry || entry.resetAt <= now) return 0;
    return entry.count >= this.maxFailures ? entry.resetAt - now : 0;
  }

  failed(name: string, ip: string, now: number): void {
    const k = key(name, ip);
    const entry = this.failures.get(k);
    if (!entry || entry.resetAt <= now) this.failures.set(k, { count: 1, resetAt: now + this.windowMs });
    else entry.count++;
    // Bounded memory: forget windows that ended.
    if (this.failures.size > 10_000) {
      for (const [k2, e] of this.failures) if (e.resetAt <= now) this.failures.delete(k2);
    }
  }

  succeeded(name: string, ip: string): void {
    this.failures.delete(key(name, ip));
  }
}

function key(name: string, ip: string): string {
  return `${name}\u0000${ip}`;
}
