// The newest persisted entries, held decoded in memory up to a byte budget, so replication
// to followers that keep up never reads LevelDB. It only ever holds a contiguous range that
// ends at the log's last index.
import type { Entry } from "@raftmq/raft";

/** What one cached entry costs beyond its data: the object, its fields, the array slot. */
const ENTRY_OVERHEAD_BYTES = 96;

export function cachedEntryBytes(entry: Entry): number {
  return entry.data.byteLength + ENTRY_OVERHEAD_BYTES;
}

export class TailCache {
  // slots[head] is the oldest cached entry; evicted slots before it hold undefined until they
  // are reclaimed in bulk, so eviction is O(1).
  private slots: (Entry | undefined)[] = [];
  private head = 0;
  private size = 0;

  constructor(readonly maxBytes: number) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError(`cacheBytes must be a non-negative integer, got ${maxBytes}`);
  }

  get bytes(): number {
    return this.size;
  }

  get count(): number {
    return this.slots.length - this.head;
  }

  /** Index of the oldest cached entry, or undefined when empty. */
  firstIndex(): number | undefined {
    return this.slots[this.head]?.index;
  }

  get(index: number): Entry | undefined {
    const first = this.firstIndex();
    if (first === undefined || index < first) return undefined;
    const entry = this.slots[this.head + (index - first)];
    if (entry !== undefined && entry.index !== index) {
      throw new Error(`tail cache holds entry ${entry.index} in the slot of ${index}`);
    }
    return entry;
  }

  /**
   * Adds contiguous entries that became the log's tail. Cached entries at or after the first
   * new index are dropped first: they belonged to a conflicting suffix that was replaced.
   */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const cachedFirst = this.firstIndex();
    if (cachedFirst !== undefined) {
      const cachedLast = cachedFirst + this.count - 1;
      if (first.index <= cachedLast) this.truncateFrom(first.index);
      else if (first.index > cachedLast + 1) this.clear();
    }
    for (const entry of entries) {
      this.slots.push(entry);
      this.size += cachedEntryBytes(entry);
    }
    while (this.size > this.maxBytes && this.count > 0) this.evictOldest();
    this.reclaim();
  }

  /** Drops cached entries at or after `index`. */
  truncateFrom(index: number): void {
    const first = this.firstIndex();
    if (first === undefined) return;
    const keep = Math.max(0, index - first);
    while (this.count > keep) {
      const entry = this.slots.pop();
      if (entry !== undefined) this.size -= cachedEntryBytes(entry);
    }
    this.reclaim();
  }

  /** Drops cached entries up to and including `index`. */
  dropThrough(index: number): void {
    let first = this.firstIndex();
    while (first !== undefined && first <= index) {
      this.evictOldest();
      first = this.firstIndex();
    }
    this.reclaim();
  }

  clear(): void {
    this.slots = [];
    this.head = 0;
    this.size = 0;
  }

  private evictOldest(): void {
    const entry = this.slots[this.head];
    if (entry === undefined) return;
    this.size -= cachedEntryBytes(entry);
    this.slots[this.head] = undefined;
    this.head++;
  }

  private reclaim(): void {
    if (this.head === this.slots.length) {
      this.clear();
    } else if (this.head > 1024 && this.head * 2 > this.slots.length) {
      this.slots = this.slots.slice(this.head);
      this.head = 0;
    }
  }
}
