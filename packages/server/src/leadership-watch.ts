// Waiters on who leads: resolved by the driver's leader-changed event, never by polling.
import type { Cancel, NodeClock } from "./node-clock.ts";

export class LeadershipWatch {
  private leaderId = 0;
  private waiters: { until: (leaderId: number) => boolean; resolve: (met: boolean) => void; cancelTimer: Cancel }[] = [];

  constructor(private readonly clock: NodeClock) {}

  /** The driver saw the known leader change (0: none known). */
  changed(leaderId: number): void {
    this.leaderId = leaderId;
    if (this.waiters.length === 0) return;
    const kept = [];
    for (const w of this.waiters) {
      if (w.until(leaderId)) {
        w.cancelTimer();
        w.resolve(true);
      } else {
        kept.push(w);
      }
    }
    this.waiters = kept;
  }

  /** Resolves true once `until(leaderId)` holds (checked now and on each change), false after `timeoutMs`. */
  waitFor(until: (leaderId: number) => boolean, timeoutMs: number): Promise<boolean> {
    if (until(this.leaderId)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = {
        until,
        resolve,
        cancelTimer: this.clock.after(timeoutMs, () => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve(false);
        }),
      };
      this.waiters.push(waiter);
    });
  }

  /** Resolves every waiter as unmet (the node stops). */
  close(): void {
    for (const w of this.waiters) {
      w.cancelTimer();
      w.resolve(false);
    }
    this.waiters = [];
  }
}
