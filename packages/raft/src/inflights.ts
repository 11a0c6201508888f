// The bounded window of AppendEntries sent to one follower and not yet acknowledged. It is
// bounded both in messages and in bytes so a slow follower never pins unbounded memory.

export class Inflights {
  private readonly indexes: number[] = [];
  private readonly sizes: number[] = [];
  private head = 0;
  private bytes = 0;

  constructor(readonly maxCount: number, readonly maxBytes: number) {}

  get count(): number {
    return this.indexes.length - this.head;
  }

  get totalBytes(): number {
    return this.bytes;
  }

  full(): boolean {
    return this.count >= this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  /** Records a message whose last entry is `index`; indexes must increase. */
  add(index: number, bytes: number): void {
    const last = this.indexes[this.indexes.length - 1];
    if (this.count > 0 && last !== undefined && index <= last) {
      throw new Error(`inflights: index ${index} does not follow ${last}`);
    }
    this.indexes.push(index);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  /** Frees every message whose last entry is at or below `index`. */
  freeLE(index: number): void {
    while (this.head < this.indexes.length) {
      const i = this.indexes[this.head];
      if (i === undefined || i > index) break;
      this.bytes -= this.sizes[this.head] ?? 0;
      this.head++;
    }
    this.compactStorage();
  }

  freeFirstOne(): void {
    const first = this.indexes[this.head];
    if (first !== undefined) this.freeLE(first);
  }

  reset(): void {
    this.indexes.length = 0;
    this.sizes.length = 0;
    this.head = 0;
    this.bytes = 0;
  }

  // Drops freed slots once they dominate, so the arrays stay proportional to the window.
  private compactStorage(): void {
    if (this.head === this.indexes.length) {
      this.reset();
    } else if (this.head > 64 && this.head * 2 > this.indexes.length) {
      this.indexes.splice(0, this.head);
      this.sizes.splice(0, this.head);
      this.head = 0;
    }
  }
}
