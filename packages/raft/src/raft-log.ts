// The node's view of its log: what storage holds, plus the unstable tail (entries and perhaps a
// snapshot) handed out in Ready but not yet confirmed persisted by advance(). Tracks commit and
// applied, and refuses to truncate anything committed.
import { RaftInvariantError } from "./errors.ts";
import { CompactedError, type LogStorage, UnavailableError } from "./log-storage.ts";
import type { Entry, Snapshot } from "./types.ts";

export class RaftLog {
  committed: number;
  applied: number;
  private unstableSnapshot: Snapshot | null = null;
  private unstableEntries: Entry[] = [];
  /** Index of unstableEntries[0]. */
  private unstableOffset: number;

  constructor(
    readonly storage: LogStorage,
    private readonly nodeId: number,
  ) {
    const first = storage.firstIndex();
    this.unstableOffset = storage.lastIndex() + 1;
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    if (this.unstableSnapshot !== null) return this.unstableSnapshot.meta.index + 1;
    return this.storage.firstIndex();
  }

  lastIndex(): number {
    if (this.unstableEntries.length > 0) return this.unstableOffset + this.unstableEntries.length - 1;
    if (this.unstableSnapshot !== null) return this.unstableSnapshot.meta.index;
    return this.storage.lastIndex();
  }

  /** The term at `index`, or undefined when it is compacted or beyond the log. */
  term(index: number): number | undefined {
    if (index === 0) return 0;
    const snap = this.unstableSnapshot;
    if (snap !== null) {
      if (index === snap.meta.index) return snap.meta.term;
      if (index < snap.meta.index) return undefined;
    }
    if (index >= this.unstableOffset) return this.unstableEntries[index - this.unstableOffset]?.term;
    if (snap !== null) return undefined;
    try {
      return this.storage.term(index);
    } catch (error) {
      if (error instanceof CompactedError || error instanceof UnavailableError) return undefined;
      throw error;
    }
  }

  lastTerm(): number {
    const term = this.term(this.lastIndex());
    if (!(term !== undefined)) throw new RaftInvariantError(this.nodeId, `no term for the last index ${this.lastIndex()}`);
    return term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** §5.4.1: a candidate's log is at least as up-to-date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * The AppendEntries consistency check and append. Returns the last index the leader's message
   * proves we share, or null when the entry before `entries` does not match.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: readonly Entry[]): number | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNew = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      if (!(conflict > this.committed)) throw new RaftInvariantError(this.nodeId, `conflict at ${conflict} is at or below commit ${this.committed}`);
      const first = entries[0];
      if (!(first !== undefined)) throw new RaftInvariantError(this.nodeId, "conflict found in no entries");
      this.append(entries.slice(conflict - first.index));
    }
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  /** The index of the first entry that is new or has a different term than ours; 0 when none. */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The conflict hint: walking back from `index`, the last entry whose term is at most `term`.
   * Lets the leader skip a whole term of mismatching entries in one round trip.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = index;
    for (;;) {
      const t = this.term(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
      i--;
    }
  }

  append(entries: readonly Entry[]): number {
    const first = entries[0];
    if (first === undefined) return this.lastIndex();
    const after = first.index - 1;
    if (!(after >= this.committed)) throw new RaftInvariantError(this.nodeId, `append after ${after} would truncate committed ${this.committed}`);
    if (!(after <= this.lastIndex())) throw new RaftInvariantError(this.nodeId, `append after ${after} leaves a gap after ${this.lastIndex()}`);
    if (after + 1 === this.unstableOffset + this.unstableEntries.length) {
      for (const e of entries) this.unstableEntries.push(e);
    } else if (after + 1 <= this.unstableOffset) {
      // Replaces the whole unstable tail; the application's storage drops its conflicting suffix.
      this.unstableOffset = after + 1;
      this.unstableEntries = [...entries];
    } else {
      this.unstableEntries = this.unstableEntries.slice(0, after + 1 - this.unstableOffset);
      for (const e of entries) this.unstableEntries.push(e);
    }
    return this.lastIndex();
  }

  /**
   * Entries in [lo, hi) up to `maxBytes` of data (at least one). Throws CompactedError when
   * lo is below the first index.
   */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo >= hi) return [];
    const first = this.firstIndex();
    if (lo < first) throw new CompactedError(lo, first);
    if (!(hi <= this.lastIndex() + 1)) throw new RaftInvariantError(this.nodeId, `slice to ${hi} past the last index ${this.lastIndex()}`);
    let out: Entry[] = [];
    let bytes = 0;
    if (lo < this.unstableOffset) {
      const stableHi = Math.min(hi, this.unstableOffset);
      out = this.storage.entries(lo, stableHi, maxBytes);
      if (out.length < stableHi - lo) return out;
      for (const e of out) bytes += e.data.length;
    }
    const from = Math.max(lo, this.unstableOffset);
    for (let i = from; i < hi; i++) {
      const e = this.unstableEntries[i - this.unstableOffset];
      if (e === undefined) break;
      bytes += e.data.length;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    if (!(index <= this.lastIndex())) throw new RaftInvariantError(this.nodeId, `commit ${index} is past the last index ${this.lastIndex()}`);
    this.committed = index;
  }

  appliedTo(index: number): void {
    if (index === 0) return;
    if (!(index <= this.committed)) throw new RaftInvariantError(this.nodeId, `applied ${index} is past commit ${this.committed}`);
    if (!(index >= this.applied)) throw new RaftInvariantError(this.nodeId, `applied moves back from ${this.applied} to ${index}`);
    this.applied = index;
  }

  /** Committed entries not yet applied, up to `maxBytes` of data (at least one). */
  nextCommittedEntries(maxBytes: number): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    const hi = this.committed + 1;
    if (lo >= hi) return [];
    return this.slice(lo, hi, maxBytes);
  }

  /** The last index the application has confirmed persisted: entries up to it are on disk. */
  lastStableIndex(): number {
    return this.unstableOffset - 1;
  }

  hasNextCommittedEntries(): boolean {
    return Math.max(this.applied + 1, this.firstIndex()) <= this.committed;
  }

  pendingEntries(): Entry[] {
    return this.unstableEntries;
  }

  pendingSnapshot(): Snapshot | null {
    return this.unstableSnapshot;
  }

  /** The application persisted entries through `index` (written at `term`). */
  stableTo(index: number, term: number): void {
    if (this.term(index) !== term || index < this.unstableOffset) return;
    this.unstableEntries = this.unstableEntries.slice(index + 1 - this.unstableOffset);
    this.unstableOffset = index + 1;
  }

  stableSnapTo(index: number): void {
    if (this.unstableSnapshot !== null && this.unstableSnapshot.meta.index === index) this.unstableSnapshot = null;
  }

  /** Replaces the log with a snapshot from the leader. */
  restore(snapshot: Snapshot): void {
    if (!(snapshot.meta.index > this.committed)) throw new RaftInvariantError(this.nodeId, `snapshot ${snapshot.meta.index} is not past commit ${this.committed}`);
    this.committed = snapshot.meta.index;
    this.unstableSnapshot = snapshot;
    this.unstableEntries = [];
    this.unstableOffset = snapshot.meta.index + 1;
  }
}
