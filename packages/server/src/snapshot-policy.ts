// When a node takes its next automatic snapshot, and how much of the log it keeps below one.
// A snapshot is due after a number of applied entries or of applied bytes, whichever comes
// first; the byte threshold grows to twice the last snapshot's size, so a large state is written
// out at most once for every two of its sizes in log: snapshots add at most half again to what
// the log writes. Entries kept below a snapshot (for followers slightly behind) are bounded by
// count and by bytes: with large entries a count alone keeps gigabytes.
//
// A node that reads message bodies back (a leader delivering a deep queue, whose acks make
// little log) takes a snapshot after SNAPSHOT_BODY_READ_BYTES of them too: only a stored
// snapshot lets the body store drop what was consumed, and until then the store's tables read
// stay mapped into the process.
//
// The members of a cluster apply the same entries, so thresholds alone would have all of them
// snapshot at the same index, at the same moment; while two of three are busy storing a
// snapshot, nothing commits. Each node therefore stretches both thresholds by a factor drawn
// anew after every snapshot, between 1 and 1 + SNAPSHOT_SPREAD (hashicorp/raft staggers its
// snapshot interval the same way).

export interface SnapshotLimits {
  /** Applied entries between automatic snapshots. */
  entries: number;
  /** Applied bytes between automatic snapshots, or twice the last snapshot's size if larger. */
  bytes: number;
  /** Entries kept below a snapshot... */
  keepEntries: number;
  /** ...holding at most this many bytes. */
  keepBytes: number;
}

/** Bytes of bodies read back from the body store between automatic snapshots. */
export const SNAPSHOT_BODY_READ_BYTES = 256 * 1024 * 1024;

/** How far past its thresholds a node may take a snapshot, as a fraction of them. */
export const SNAPSHOT_SPREAD = 0.25;

export class SnapshotPolicy {
  /** Sizes of the newest applied entries, oldest first; the newest keepEntries at least. */
  private sizes: number[] = [];
  /** Bytes applied since the last snapshot. */
  private appliedBytes = 0;

  /** Bytes of bodies read from the body store since the node started, now and at the last snapshot. */
  private bodyBytesRead = 0;
  private bodyBytesReadAtSnapshot = 0;

  /** This round's factor on both thresholds, in [1, 1 + SNAPSHOT_SPREAD). */
  private stretch = 1;

  constructor(
    private readonly limits: SnapshotLimits,
    private lastSnapshotBytes: number,
    /** Uniform in [0, 1): where in the spread each round's thresholds fall; 0 takes them as they are. */
    private readonly random: () => number = () => 0,
    private readonly bodyReadBytes = SNAPSHOT_BODY_READ_BYTES,
  ) {
    for (const [key, value] of Object.entries(limits)) {
      if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`snapshot limit ${key} must be a non-negative integer, got ${value}`);
    }
    this.drawStretch();
  }

  private drawStretch(): void {
    this.stretch = 1 + SNAPSHOT_SPREAD * this.random();
  }

  /** An entry of `bytes` was applied. */
  applied(bytes: number): void {
    this.appliedBytes += bytes;
    if (this.limits.keepEntries === 0) return;
    this.sizes.push(bytes);
    if (this.sizes.length >= 2 * this.limits.keepEntries) this.sizes.splice(0, this.sizes.length - this.limits.keepEntries);
  }

  /** The body store has returned `total` bytes of bodies since the node started. */
  bodiesRead(total: number): void {
    this.bodyBytesRead = total;
  }

  /** Bytes applied since the last snapshot. */
  get bytesSinceSnapshot(): number {
    return this.appliedBytes;
  }

  /** Whether a snapshot is due, `entriesSinceSnapshot` entries after the last one. */
  due(entriesSinceSnapshot: number): boolean {
    if (entriesSinceSnapshot <= 0) return false;
    const bytes = Math.max(this.limits.bytes, 2 * this.lastSnapshotBytes);
    return (
      entriesSinceSnapshot >= this.limits.entries * this.stretch ||
      this.appliedBytes >= bytes * this.stretch ||
      this.bodyBytesRead - this.bodyBytesReadAtSnapshot >= this.bodyReadBytes * this.stretch
    );
  }

  /**
   * A snapshot is being captured at the newest applied entry: answers how many entries below
   * it to keep, and starts counting towards the next one. The sizes stay: entries kept below
   * this snapshot are still in the log, and a snapshot taken soon after (one asked for, say)
   * keeps them too instead of compacting the log down to the entries since this one.
   */
  captured(): number {
    let keep = 0;
    let bytes = 0;
    for (let i = this.sizes.length - 1; i >= 0 && keep < this.limits.keepEntries; i--) {
      bytes += this.sizes[i] as number;
      if (bytes > this.limits.keepBytes) break;
      keep++;
    }
    this.appliedBytes = 0;
    this.bodyBytesReadAtSnapshot = this.bodyBytesRead;
    this.drawStretch();
    return keep;
  }

  /** The captured snapshot was stored with `bytes` of data. */
  stored(bytes: number): void {
    this.lastSnapshotBytes = bytes;
  }

  /** The state was replaced by a received snapshot of `bytes`. */
  restored(bytes: number): void {
    this.sizes = [];
    this.appliedBytes = 0;
    this.bodyBytesReadAtSnapshot = this.bodyBytesRead;
    this.lastSnapshotBytes = bytes;
    this.drawStretch();
  }
}
