// A NodeClock a test moves by hand: timers fire only in advance(), in due order. Deferred work
// still goes through setImmediate, so real I/O (LevelDB writes) completes between steps.
import type { Cancel, NodeClock } from "../src/node-clock.ts";

interface Timer {
  at: number;
  every: number;
  fn: () => void;
  live: boolean;
}

export class ManualClock implements NodeClock {
  private ms = 1_700_000_000_000;
  private readonly timers: Timer[] = [];

  now(): number {
    return this.ms;
  }

  elapsed(): number {
    return this.ms;
  }

  every(ms: number, fn: () => void): Cancel {
    return this.add({ at: this.ms + ms, every: ms, fn, live: true });
  }

  after(ms: number, fn: () => void): Cancel {
    return this.add({ at: this.ms + ms, every: 0, fn, live: true });
  }

  defer(fn: () => void): void {
    setImmediate(fn);
  }

  /** Moves time forward by `ms`, firing each timer that falls due on the way. */
  advance(ms: number): void {
    const end = this.ms + ms;
    for (;;) {
      const next = this.timers.filter((t) => t.live && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (next === undefined) break;
      this.ms = next.at;
      if (next.every > 0) next.at += next.every;
      else next.live = false;
      next.fn();
    }
    this.ms = end;
  }

  private add(timer: Timer): Cancel {
    this.timers.push(timer);
    return () => {
      timer.live = false;
    };
  }
}
