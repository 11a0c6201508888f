// Exponential reconnect backoff with jitter: delays double from initialMs up to maxMs, and each
// is spread by ±jitter so peers that lost each other at the same moment do not retry in step.

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  /** Fraction of the delay, in [0, 1], by which it is randomly widened or shortened. */
  jitter: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = { initialMs: 50, maxMs: 2_000, jitter: 0.2 };

export function validateBackoff(options: BackoffOptions): void {
  const { initialMs, maxMs, jitter } = options;
  if (!(Number.isFinite(initialMs) && initialMs > 0)) throw new RangeError(`backoff initialMs must be > 0, got ${initialMs}`);
  if (!(Number.isFinite(maxMs) && maxMs >= initialMs)) {
    throw new RangeError(`backoff maxMs must be >= initialMs (${initialMs}), got ${maxMs}`);
  }
  if (!(jitter >= 0 && jitter <= 1)) throw new RangeError(`backoff jitter must be in [0, 1], got ${jitter}`);
}

/** The delay before retry number `attempt` (0 for the first retry); `random` returns [0, 1). */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number): number {
  // Capping the exponent first keeps 2 ** attempt finite however long a peer stays down.
  const base = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 52));
  const spread = base * options.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(base + spread));
}

/** Counts failed attempts; `reset` once a connection has been established. */
export class Backoff {
  private attempt = 0;
  private readonly options: BackoffOptions;
  private readonly random: () => number;

  constructor(options: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random) {
    validateBackoff(options);
    this.options = { ...options };
    this.random = random;
  }

  next(): number {
    const delay = backoffDelay(this.attempt, this.options, this.random);
    this.attempt += 1;
    return delay;
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
