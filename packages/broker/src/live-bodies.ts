// The body keys a state refers to, as ranges of consecutive keys. Messages published one after
// another into a queue hold consecutive keys, so a queue of millions is a few ranges: listing
// them, and comparing one snapshot's list with the next, costs time in the number of ranges.

/** Broker.liveBodies: the body keys the state refers to, and the next key to be handed out. */
export interface LiveBodies {
  /** Every key handed out so far is below this. */
  frontier: number;
  /**
   * The keys, as ranges [ranges[2i], ranges[2i + 1]): ascending, each starting after the one
   * before ends (not touching it), none empty.
   */
  ranges: Float64Array;
  /** Keys in the ranges. */
  count: number;
}

/** The keys of `live`, ascending. */
export function* liveBodyKeys(live: LiveBodies): Generator<number, void, undefined> {
  const r = live.ranges;
  for (let i = 0; i < r.length; i += 2) for (let k = r[i] as number; k < (r[i + 1] as number); k++) yield k;
}

/** LiveBodies of `keys` (in any order, repeats allowed) below `frontier`. */
export function liveBodiesOfKeys(keys: Iterable<number>, frontier: number): LiveBodies {
  const out = new RangeGatherer();
  for (const k of keys) out.add(k, k + 1);
  return { frontier, ...out.take() };
}

/**
 * Gathers ranges in runs: the ranges of one run ascend as a rule (a queue's messages are in
 * publish order, and so are their keys), a range that touches or overlaps the one before it in
 * its run joins it, and the runs are merged at the end.
 */
export class RangeGatherer {
  private buf = new Float64Array(64);
  /** Doubles used in buf. */
  private n = 0;
  /** Where the open run starts in buf. */
  private runStart = 0;
  private readonly runEnds: number[] = [];

  /** Adds the keys [start, end); end > start. */
  add(start: number, end: number): void {
    const buf = this.buf;
    const n = this.n;
    if (n > this.runStart && start >= (buf[n - 2] as number) && start <= (buf[n - 1] as number)) {
      if (end > (buf[n - 1] as number)) buf[n - 1] = end;
      return;
    }
    if (n + 2 > buf.length) {
      const grown = new Float64Array(buf.length * 2);
      grown.set(buf);
      this.buf = grown;
    }
    this.buf[n] = start;
    this.buf[n + 1] = end;
    this.n = n + 2;
  }

  endRun(): void {
    if (this.n > this.runStart) this.runEnds.push(this.n);
    this.runStart = this.n;
  }

  /** The ranges gathered, ascending and apart, and the keys they hold. */
  take(): { ranges: Float64Array; count: number } {
    this.endRun();
    const sorted = mergeRangeRuns(this.buf.subarray(0, this.n), this.runEnds);
    // Ranges that touch or overlap (the runs of different queues, a body shared by a fanout's
    // copies) become one.
    let out = 0;
    let count = 0;
    for (let i = 0; i < sorted.length; i += 2) {
      const start = sorted[i] as number;
      const end = sorted[i + 1] as number;
      if (out > 0 && start <= (sorted[out - 1] as number)) {
        if (end > (sorted[out - 1] as number)) {
          count += end - (sorted[out - 1] as number);
          sorted[out - 1] = end;
        }
        continue;
      }
      sorted[out] = start;
      sorted[out + 1] = end;
      count += end - start;
      out += 2;
    }
    return { ranges: sorted.slice(0, out), count };
  }
}

/** Sorts the ranges of one run by their start (a run that does not ascend: rare). */
function sortRun(pairs: Float64Array): void {
  const order: [number, number][] = [];
  for (let i = 0; i < pairs.length; i += 2) order.push([pairs[i] as number, pairs[i + 1] as number]);
  order.sort((a, b) => a[0] - b[0]);
  for (let i = 0; i < order.length; i++) {
    pairs[2 * i] = (order[i] as [number, number])[0];
    pairs[2 * i + 1] = (order[i] as [number, number])[1];
  }
}

/**
 * The ranges of every run (each ending at runEnds[i], in doubles), ordered by their start: runs
 * are merged two by two; runs that do not interleave are copied whole.
 */
function mergeRangeRuns(pairs: Float64Array, runEnds: readonly number[]): Float64Array {
  let runs: [number, number][] = [];
  let from = 0;
  for (const end of runEnds) {
    let ascending = true;
    for (let i = from + 2; i < end && ascending; i += 2) ascending = (pairs[i - 2] as number) <= (pairs[i] as number);
    if (!ascending) sortRun(pairs.subarray(from, end));
    // A run that continues the one before it joins it.
    const last = runs[runs.length - 1];
    if (last !== undefined && (pairs[from - 2] as number) <= (pairs[from] as number)) last[1] = end;
    else runs.push([from, end]);
    from = end;
  }
  let src = pairs;
  let dst = runs.length > 1 ? new Float64Array(pairs.length) : pairs;
  while (runs.length > 1) {
    const merged: [number, number][] = [];
    for (let r = 0; r < runs.length; r += 2) {
      const a = runs[r] as [number, number];
      const b = runs[r + 1];
      if (b === undefined) {
        dst.set(src.subarray(a[0], a[1]), a[0]);
        merged.push(a);
        continue;
      }
      merged.push([a[0], b[1]]);
      if ((src[a[1] - 2] as number) <= (src[b[0]] as number)) {
        dst.set(src.subarray(a[0], b[1]), a[0]);
        continue;
      }
      if ((src[b[1] - 2] as number) <= (src[a[0]] as number)) {
        dst.set(src.subarray(b[0], b[1]), a[0]);
        dst.set(src.subarray(a[0], a[1]), a[0] + (b[1] - b[0]));
        continue;
      }
      let i = a[0];
      let j = b[0];
      let o = a[0];
      while (i < a[1] && j < b[1]) {
        const from = (src[i] as number) <= (src[j] as number) ? i : j;
        dst[o] = src[from] as number;
        dst[o + 1] = src[from + 1] as number;
        o += 2;
        if (from === i) i += 2;
        else j += 2;
      }
      if (i < a[1]) dst.set(src.subarray(i, a[1]), o);
      else if (j < b[1]) dst.set(src.subarray(j, b[1]), o);
    }
    runs = merged;
    const t = src;
    src = dst;
    dst = t;
  }
  return src;
}
