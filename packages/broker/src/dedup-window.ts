// Idempotent publish: per producer, the results of its last `window` sequences. Producers are kept
// in least-recently-seen order (a Map re-inserted on use), so expiry and eviction walk from the front.
import type { PublishResult } from "./command-result.ts";

export interface ProducerState {
  lastSeenAt: number;
  /** Sequence -> original result, oldest first. */
  readonly results: Map<number, PublishResult>;
  /** Highest sequence that fell out of the window; -1 when none has. */
  evictedUpTo: number;
}

export type DedupLookup =
  | { kind: "new" }
  | { kind: "duplicate"; result: PublishResult }
  | { kind: "tooOld"; evictedUpTo: number };

export class DedupWindows {
  readonly #producers = new Map<string, ProducerState>();
  /** The producer inserted last, so the one at the back of the order: it needs no move. */
  #newest: string | undefined;

  constructor(
    private window: number,
    private maxProducers: number,
    private idleMs: number,
  ) {}

  /**
   * Takes new limits. Smaller ones apply at once (results beyond the window and the least recently
   * seen producers beyond the count are forgotten now), so what a retry answers depends only on
   * the limits in force, not on when each producer next publishes.
   */
  configure(window: number, maxProducers: number, idleMs: number): void {
    this.window = window;
    this.maxProducers = maxProducers;
    this.idleMs = idleMs;
    while (this.#producers.size > maxProducers) {
      const oldest = this.#producers.keys().next();
      if (oldest.done === true) break;
      this.#producers.delete(oldest.value);
      if (oldest.value === this.#newest) this.#newest = undefined;
    }
    for (const p of this.#producers.values()) this.trim(p);
  }

  /** Producers, least recently seen first. */
  get producers(): ReadonlyMap<string, ProducerState> {
    return this.#producers;
  }

  /** Adds a producer from a snapshot, as the most recently seen so far. */
  restore(producerId: string, state: ProducerState): void {
    this.#producers.delete(producerId);
    this.#producers.set(producerId, state);
    this.#newest = producerId;
  }

  lookup(producerId: string, sequence: number): DedupLookup {
    const p = this.#producers.get(producerId);
    if (p === undefined) return { kind: "new" };
    const r = p.results.get(sequence);
    if (r !== undefined) return { kind: "duplicate", result: r };
    if (sequence <= p.evictedUpTo) return { kind: "tooOld", evictedUpTo: p.evictedUpTo };
    return { kind: "new" };
  }

  record(producerId: string, sequence: number, result: PublishResult, now: number): void {
    let p = this.#producers.get(producerId);
    if (p === undefined) {
      p = { lastSeenAt: now, results: new Map(), evictedUpTo: -1 };
      if (this.#producers.size >= this.maxProducers) {
        const oldest = this.#producers.keys().next();
        if (oldest.done !== true) this.#producers.delete(oldest.value);
      }
      this.#producers.set(producerId, p);
      this.#newest = producerId;
    } else if (this.#newest !== producerId) {
      // Re-inserting moves it to the back; a producer publishing many times in a row is there already.
      this.#producers.delete(producerId);
      this.#producers.set(producerId, p);
      this.#newest = producerId;
    }
    p.lastSeenAt = now;
    p.results.set(sequence, result);
    this.trim(p);
  }

  private trim(p: ProducerState): void {
    while (p.results.size > this.window) {
      const first = p.results.keys().next();
      if (first.done === true) break;
      p.results.delete(first.value);
      p.evictedUpTo = Math.max(p.evictedUpTo, first.value);
    }
  }

  /** Forgets producers idle longer than the limit. */
  expire(now: number): void {
    for (const [id, p] of this.#producers) {
      if (now - p.lastSeenAt <= this.idleMs) break;
      this.#producers.delete(id);
      if (id === this.#newest) this.#newest = undefined;
    }
  }
}
