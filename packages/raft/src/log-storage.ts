// The read side of the durable log, as the core sees it. The application writes to it
// (from each Ready) and the core reads from it; reads are synchronous so the core stays a
// plain stepped object. packages/storage implements it on LevelDB, memory-storage.ts in memory.
import type { ConfState, Entry, HardState, Snapshot } from "./types.ts";

export interface InitialState {
  hardState: HardState;
  confState: ConfState;
}

export interface LogStorage {
  /** Hard state and membership as last persisted (membership as of the last persisted entry). */
  initialState(): InitialState;
  /** Index of the first entry still held: the latest snapshot's index + 1. */
  firstIndex(): number;
  /** Index of the last entry held, or the snapshot index when the log is empty. */
  lastIndex(): number;
  /**
   * Term of the entry at `index`, for firstIndex()-1 (the snapshot's index) through lastIndex().
   * Throws CompactedError below that range and UnavailableError above it.
   */
  term(index: number): number;
  /**
   * Entries in [lo, hi), stopping early once their data exceeds `maxBytes` but always
   * returning at least one entry when lo < hi. Throws CompactedError when lo < firstIndex().
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** The latest snapshot; a snapshot with meta.index 0 when there is none. */
  snapshot(): Snapshot;
}

export class CompactedError extends Error {
  constructor(readonly index: number, readonly firstIndex: number) {
    super(`log index ${index} is compacted; the log starts at ${firstIndex}`);
    this.name = "CompactedError";
  }
}

export class UnavailableError extends Error {
  constructor(readonly index: number, readonly lastIndex: number) {
    super(`log index ${index} is not available; the log ends at ${lastIndex}`);
    this.name = "UnavailableError";
  }
}
