// Follower side of InstallSnapshot: collects one snapshot's chunks, in offset order, until the
// chunk marked done arrives. Anything out of order is answered with where the transfer stands.
import type { Snapshot, SnapshotChunk, SnapshotMeta } from "./types.ts";

export type ChunkOutcome =
  /** Chunk accepted (or a duplicate); `received` bytes are held so far. */
  | { kind: "ack"; received: number }
  /** The transfer must restart at `received` (0: from the beginning). */
  | { kind: "restart"; received: number }
  | { kind: "complete"; snapshot: Snapshot };

interface Transfer {
  meta: SnapshotMeta;
  parts: Uint8Array[];
  received: number;
  totalSize: number;
}

export class SnapshotReceiver {
  private transfer: Transfer | null = null;

  constructor(private readonly maxSnapshotBytes: number) {}

  receive(chunk: SnapshotChunk): ChunkOutcome {
    const { meta } = chunk;
    if (chunk.offset === 0) {
      if (chunk.totalSize > this.maxSnapshotBytes) {
        this.transfer = null;
        return { kind: "restart", received: 0 };
      }
      this.transfer = { meta, parts: [], received: 0, totalSize: chunk.totalSize };
    }
    const t = this.transfer;
    if (t === null || t.meta.index !== meta.index || t.meta.term !== meta.term) return { kind: "restart", received: 0 };
    if (chunk.offset !== t.received) {
      // A duplicate (behind us) is harmless; a chunk past a gap means one was lost.
      return chunk.offset < t.received ? { kind: "ack", received: t.received } : { kind: "restart", received: t.received };
    }
    if (t.received + chunk.data.length > t.totalSize) {
      this.transfer = null;
      return { kind: "restart", received: 0 };
    }
    t.parts.push(chunk.data);
    t.received += chunk.data.length;
    if (!chunk.done) return { kind: "ack", received: t.received };
    this.transfer = null;
    if (t.received !== t.totalSize) return { kind: "restart", received: 0 };
    const data = new Uint8Array(t.totalSize);
    let at = 0;
    for (const part of t.parts) {
      data.set(part, at);
      at += part.length;
    }
    return { kind: "complete", snapshot: { meta, data } };
  }

  reset(): void {
    this.transfer = null;
  }
}
