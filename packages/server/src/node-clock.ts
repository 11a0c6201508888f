// Time as the node sees it: wall-clock stamps, a monotonic clock for slicing work, and timers.
// Production uses the system's; tests pass a clock they advance themselves.

/** Stops a timer; calling it again does nothing. */
export type Cancel = () => void;

export interface NodeClock {
  /** Wall-clock milliseconds: log timestamps, the idle tick. */
  now(): number;
  /** Monotonic milliseconds: how long a slice of work has run. */
  elapsed(): number;
  every(ms: number, fn: () => void): Cancel;
  after(ms: number, fn: () => void): Cancel;
  /** Runs `fn` after pending I/O has had a turn. */
  defer(fn: () => void): void;
}

export const systemClock: NodeClock = {
  now: () => Date.now(),
  elapsed: () => performance.now(),
  every: (ms, fn) => {
    const timer = setInterval(fn, ms);
    return () => clearInterval(timer);
  },
  after: (ms, fn) => {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
  defer: (fn) => {
    setImmediate(fn);
  },
};

/** Resolves after the clock has deferred once: lets a long job yield to I/O between slices. */
export function yieldTo(clock: NodeClock): Promise<void> {
  return new Promise((resolve) => clock.defer(resolve));
}
