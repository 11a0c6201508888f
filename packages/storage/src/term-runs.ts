// The term of every held entry, kept in memory as runs of equal terms so `term(i)` answers
// synchronously without touching the disk. A log has few terms, so the runs stay small.

export class TermRuns {
  // Run k covers the entries from starts[k] up to starts[k + 1] - 1 (the last run: up to the
  // log's end, which the owner tracks). starts is strictly increasing.
  private starts: number[] = [];
  private terms: number[] = [];

  get runCount(): number {
    return this.starts.length;
  }

  /** Records the term of the entry at `index`, which must follow every recorded index. */
  append(index: number, term: number): void {
    const last = this.starts.length - 1;
    if (last >= 0) {
      const lastStart = this.starts[last] as number;
      if (index <= lastStart) throw new Error(`term runs: index ${index} does not follow run start ${lastStart}`);
      if (this.terms[last] === term) return;
    }
    this.starts.push(index);
    this.terms.push(term);
  }

  /** Forgets every entry at or after `index` (a conflicting suffix is being replaced). */
  truncateFrom(index: number): void {
    while (this.starts.length > 0 && (this.starts[this.starts.length - 1] as number) >= index) {
      this.starts.pop();
      this.terms.pop();
    }
  }

  /** Forgets every entry up to and including `index` (compaction). */
  dropThrough(index: number): void {
    // Runs wholly before index + 1 go; the run containing index + 1 is clipped to start there.
    let keepFrom = 0;
    while (keepFrom + 1 < this.starts.length && (this.starts[keepFrom + 1] as number) <= index + 1) keepFrom++;
    if (keepFrom > 0) {
      this.starts.splice(0, keepFrom);
      this.terms.splice(0, keepFrom);
    }
    if (this.starts.length > 0 && (this.starts[0] as number) <= index) this.starts[0] = index + 1;
  }

  clear(): void {
    this.starts = [];
    this.terms = [];
  }

  /** The term recorded for `index`; undefined before the first recorded index. */
  termAt(index: number): number | undefined {
    let lo = 0;
    let hi = this.starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.starts[mid] as number) <= index) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return found < 0 ? undefined : this.terms[found];
  }
}
