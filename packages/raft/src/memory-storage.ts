// LogStorage held in memory, with the write side the application drives from each Ready.
// Tests, the simulator and the benchmark use it; packages/storage offers the same on LevelDB.
import { CompactedError, type InitialState, type LogStorage, UnavailableError } from "./log-storage.ts";
import type { ConfState, Entry, HardState, Snapshot } from "./types.ts";

export class StorageError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = "StorageError";
  }
}

export function emptySnapshot(): Snapshot {
  return { meta: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) };
}

export class MemoryStorage implements LogStorage {
  private hardState: HardState = { term: 0, vote: 0, commit: 0 };
  private snap: Snapshot = emptySnapshot();
  // The log starts after `offset` (whose term is kept): entriesHeld[i] has index offset + 1 + i.
  // Compaction moves offset up to, never past, the snapshot's index.
  private offset = 0;
  private offsetTerm = 0;
  private entriesHeld: Entry[] = [];

  initialState(): InitialState {
    return { hardState: { ...this.hardState }, confState: this.snap.meta.confState };
  }

  firstIndex(): number {
    return this.offset + 1;
  }

  lastIndex(): number {
    return this.offset + this.entriesHeld.length;
  }

  term(index: number): number {
    if (index < this.offset) throw new CompactedError(index, this.offset + 1);
    if (index === this.offset) return this.offsetTerm;
    const entry = this.entriesHeld[index - this.offset - 1];
    if (entry === undefined) throw new UnavailableError(index, this.lastIndex());
    return entry.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo <= this.offset) throw new CompactedError(lo, this.offset + 1);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1, this.lastIndex());
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; i++) {
      const entry = this.entriesHeld[i - this.offset - 1];
      if (entry === undefined) break;
      bytes += entry.data.length;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(entry);
    }
    return out;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  setHardState(hardState: HardState): void {
    this.hardState = { ...hardState };
  }

  /** Appends entries, replacing any held suffix that conflicts with them. */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    // Entries already compacted away are skipped.
    const fresh = first.index <= this.offset ? entries.slice(this.offset + 1 - first.index) : entries;
    const head = fresh[0];
    if (head === undefined) return;
    if (head.index > this.lastIndex() + 1) {
      throw new StorageError(`append at ${head.index} leaves a gap after ${this.lastIndex()}`);
    }
    this.entriesHeld.length = head.index - this.offset - 1;
    for (const entry of fresh) this.entriesHeld.push(entry);
  }

  /** Replaces the whole log with a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): void {
    if (snapshot.meta.index <= this.snap.meta.index) {
      throw new StorageError(`snapshot ${snapshot.meta.index} is older than the held one at ${this.snap.meta.index}`);
    }
    this.snap = snapshot;
    this.offset = snapshot.meta.index;
    this.offsetTerm = snapshot.meta.term;
    this.entriesHeld = [];
  }

  /** Records a snapshot of the application's state as of `index` (which must be held). */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.meta.index) {
      throw new StorageError(`snapshot at ${index} is not newer than the held one at ${this.snap.meta.index}`);
    }
    if (index > this.lastIndex()) throw new StorageError(`snapshot at ${index} is past the last index ${this.lastIndex()}`);
    const term = this.term(index);
    this.snap = { meta: { index, term, confState: { voters: [...confState.voters], learners: [...confState.learners] } }, data };
    return this.snap;
  }

  /** Drops the entries below `index`; the snapshot must already cover them. */
  compact(index: number): void {
    if (index <= this.offset) return;
    if (index > this.snap.meta.index) {
      throw new StorageError(`compact at ${index} is past the snapshot at ${this.snap.meta.index}`);
    }
    const term = this.term(index);
    this.entriesHeld = this.entriesHeld.slice(index - this.offset);
    this.offset = index;
    this.offsetTerm = term;
  }
}
