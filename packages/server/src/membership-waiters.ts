// Callers waiting for their membership change to apply: answered when the entry at the index the
// change was proposed at applies, with the term it was proposed in or (replaced by a new leader)
// another.
import { OutcomeUnknownError } from "./node-errors.ts";

interface Waiter {
  term: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

export class MembershipWaiters {
  private readonly byIndex = new Map<number, Waiter>();

  /** Resolves once the change proposed at (index, term) is applied; rejects if another entry took its place. */
  wait(index: number, term: number): Promise<void> {
    return new Promise((resolve, reject) => this.byIndex.set(index, { term, resolve, reject }));
  }

  /** The conf-change entry at `index` of `term` was applied. */
  applied(index: number, term: number): void {
    const waiter = this.byIndex.get(index);
    if (waiter === undefined) return;
    this.byIndex.delete(index);
    if (waiter.term === term) waiter.resolve();
    else waiter.reject(new OutcomeUnknownError(`the membership change at index ${index} was replaced`));
  }

  failAll(error: Error): void {
    const waiters = [...this.byIndex.values()];
    this.byIndex.clear();
    for (const w of waiters) w.reject(error);
  }
}
