// Idempotent publish: per producer, the results of its last `window` sequences. Producers are kept
// in least-recently-seen order (a Map re-inserted on use), so expiry and eviction walk from the front.
import type { PublishResult } from "./command-result.ts";

export interface ProducerState {
  lastSeenAt: number;
  /** Sequence -> original result, oldest first. */
  readonly results: Map<number, PublishResult>;
  /** Highest sequence that fell out of the window; -1 when none has. */
  evictedUpTo: number;
  /**
   * Lowest sequence recorded since the broker last had no record of this producer. A retry below
   * it that is not in the window may have been applied before the producer was forgotten.
   */
  lowest: number;
}

export type DedupLookup =
  | { kind: "new" }
  /** No record of the producer: never seen, or forgotten (idle expiry, eviction by count). */
  | { kind: "unseen" }
  /** Not recorded since the producer was last unseen, and below everything that was. */
  | { kind: "belowRecord"; lowest: number }
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
    if (p === undefined) return { kind: "unseen" };
    const r = p.results.get(sequence);
    if (r !== undefined) return { kind: "duplicate", result: r };
    if (sequence <= p.evictedUpTo) return { kind: "tooOld", evictedUpTo: p.evictedUpTo };
    if (sequence < p.lowest) return { kind: "belowRecord", lowest: p.lowest };
    return { kind: "new" };
  }

  /**
   * Sets every producer's `lowest` to the lowest sequence in its window: the record a state that
   * did not track it (older code, an older snapshot) shares with every other node.
   */
  resetLowest(): void {
    for (const p of this.#producers.values()) p.lowest = lowestKey(p.results);
  }

  record(producerId: string, sequence: number, result: PublishResult, now: number): void {
    let p = this.#producers.get(producerId);
    if (p === undefined) {
      p = { lastSeenAt: now, results: new Map(), evictedUpTo: -1, lowest: sequence };
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
    if (sequence < p.lowest) p.lowest = sequence;
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

/** The lowest key of a window; -1 for an empty one (every sequence is at least 0). */
export function lowestKey(results: ReadonlyMap<number, unknown>): number {
  let lowest = Number.POSITIVE_INFINITY;
  for (const k of results.keys()) if (k < lowest) lowest = k;
  return lowest === Number.POSITIVE_INFINITY ? -1 : lowest;
}
