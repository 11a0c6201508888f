// What the leader knows of one follower's log, and how it sends to it:
// probe (one AppendEntries at a time until the match point is found), replicate (pipelined,
// bounded by the in-flight window), snapshot (InstallSnapshot in chunks, appends paused).
import { Inflights } from "./inflights.ts";
import type { Snapshot } from "./types.ts";

export type ProgressState = "probe" | "replicate" | "snapshot";

/** An InstallSnapshot transfer under way: `offset` is what the follower has acknowledged. */
export interface SnapshotTransfer {
  snapshot: Snapshot;
  offset: number;
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = "probe";
  /** In probe: an AppendEntries is out and unanswered, so send no other until a reply or heartbeat. */
  probeSent = false;
  /** Heard from since the last check-quorum round. */
  recentActive = true;
  /** In snapshot: the index of the snapshot being sent. */
  pendingSnapshot = 0;
  transfer: SnapshotTransfer | null = null;
  readonly inflights: Inflights;

  constructor(next: number, maxInflightMsgs: number, maxInflightBytes: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
  }

  becomeProbe(): void {
    if (this.state === "snapshot") {
      // The follower holds the snapshot only if it said so; start right after it either way.
      this.next = Math.max(this.match + 1, this.pendingSnapshot + 1);
    } else {
      this.next = this.match + 1;
    }
    this.reset("probe");
  }

  becomeReplicate(): void {
    this.next = this.match + 1;
    this.reset("replicate");
  }

  becomeSnapshot(snapshot: Snapshot): void {
    this.reset("snapshot");
    this.pendingSnapshot = snapshot.meta.index;
    this.transfer = { snapshot, offset: 0 };
  }

  /** Acknowledgement up to `index`; false when it is stale. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * A rejection of the AppendEntries whose previous entry was `rejected`; `probeFrom` is where
   * the conflict hint says to try next. False when the rejection is stale.
   */
  maybeDecrTo(rejected: number, probeFrom: number): boolean {
    if (this.state === "replicate") {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, probeFrom + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  /** Whether sending AppendEntries to this follower must wait. */
  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
      default: {
        const never: never = this.state;
        throw new Error(`unknown progress state ${String(never)}`);
      }
    }
  }

  private reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.transfer = null;
    this.inflights.reset();
  }
}
