// Failed logins counted per remote IP: past a limit within a sliding window, the address is
// refused without checking anything for one window, which caps password guessing from one host.

export interface FailureLimits {
  /** Failures within `windowMs` that block the address. */
  failureLimit: number;
  windowMs: number;
  /** Addresses tracked at once; the least recently failing one is forgotten first. */
  maxTrackedAddresses: number;
}

export const DEFAULT_FAILURE_LIMITS: FailureLimits = { failureLimit: 10, windowMs: 10_000, maxTrackedAddresses: 10_000 };

interface Entry {
  /** Times of the failures within the window, oldest first; never more than failureLimit. */
  failures: number[];
  /** Refused until this time; 0 when not blocked. */
  blockedUntil: number;
}

export class FailureLimiter {
  private readonly entries = new Map<string, Entry>();

  constructor(
    readonly limits: FailureLimits,
    private readonly clock: () => number,
  ) {
    for (const [k, v] of Object.entries(limits)) {
      if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`${k} must be a positive integer, got ${v}`);
    }
  }

  /** Milliseconds until `ip` may try again; 0 when it may try now. */
  blockedFor(ip: string): number {
    const e = this.entries.get(ip);
    if (e === undefined) return 0;
    const now = this.clock();
    if (e.blockedUntil > now) return e.blockedUntil - now;
    this.prune(e, now);
    if (e.failures.length === 0) this.entries.delete(ip);
    return 0;
  }

  /**
   * Counts a failure. Successes do not clear the count: a valid login to one account must not
   * reset the guessing budget for others from the same address. Attempts refused while blocked
   * are not counted, so a client that backs off is let in after one window.
   */
  recordFailure(ip: string): void {
    const now = this.clock();
    let e = this.entries.get(ip);
    if (e === undefined) {
      if (this.entries.size >= this.limits.maxTrackedAddresses) this.evictOne(now);
      e = { failures: [], blockedUntil: 0 };
    } else {
      this.entries.delete(ip); // re-inserted below: Map order is recency order
    }
    this.entries.set(ip, e);
    if (e.blockedUntil > now) return;
    e.blockedUntil = 0;
    this.prune(e, now);
    e.failures.push(now);
    if (e.failures.length >= this.limits.failureLimit) {
      e.failures = [];
      e.blockedUntil = now + this.limits.windowMs;
    }
  }

  get trackedAddresses(): number {
    return this.entries.size;
  }

  private prune(e: Entry, now: number): void {
    const since = now - this.limits.windowMs;
    let drop = 0;
    while (drop < e.failures.length && (e.failures[drop] ?? 0) <= since) drop++;
    if (drop > 0) e.failures.splice(0, drop);
  }

  /** Forgets the oldest idle entry among the first few, else the oldest entry. */
  private evictOne(now: number): void {
    let scanned = 0;
    for (const [ip, e] of this.entries) {
      if (++scanned > 64) break;
      this.prune(e, now);
      if (e.blockedUntil <= now && e.failures.length === 0) {
        this.entries.delete(ip);
        return;
      }
    }
    const oldest = this.entries.keys().next();
    if (oldest.done !== true) this.entries.delete(oldest.value);
  }
}
