// RaftNode configuration, its defaults and their validation.
import type { RaftEvent } from "./events.ts";

export interface RaftConfig {
  id: number;
  /** Bootstrap voters, used only when storage is empty (no snapshot, no entries, term 0). */
  peers?: number[];
  /** Bootstrap learners, same condition. */
  learners?: number[];
  electionTick?: number;
  heartbeatTick?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  /** Bytes of entry data per AppendEntries. */
  maxSizePerMsg?: number;
  maxInflightMsgs?: number;
  maxInflightBytes?: number;
  /** Proposals are dropped once the leader's uncommitted entries hold this many bytes. */
  maxUncommittedEntriesBytes?: number;
  maxSnapshotChunkBytes?: number;
  /** Largest snapshot a follower accepts; a bigger transfer is refused before any chunk is held. */
  maxSnapshotBytes?: number;
  /** Bytes of committed entries handed out in one Ready. */
  maxCommittedBytesPerReady?: number;
  /** ReadIndex requests waiting for confirmation; more are dropped. */
  maxPendingReadIndex?: number;
  /** Last index the application has applied (default: the storage snapshot's index). */
  applied?: number;
  /** Seeded PRNG in [0, 1): the core's only randomness. */
  random: () => number;
  logger?: (event: RaftEvent) => void;
  /**
   * UNSAFE, a bug to inject in simulations only; never set it anywhere else. The leader commits
   * the highest index a majority holds even when that entry is of an earlier term, which §5.4.2
   * forbids: a later leader may overwrite such an entry after it was applied (the paper's
   * Figure 8). It exists so the simulator can prove its regression seeds still catch that bug.
   * Default false; anything but `true` leaves it off.
   */
  unsafeCommitPreviousTerm?: boolean;
}

export type ResolvedConfig = Required<Omit<RaftConfig, "applied" | "logger" | "peers" | "learners">> & {
  peers: number[];
  learners: number[];
  applied: number | undefined;
  logger: ((event: RaftEvent) => void) | undefined;
};

export class RaftConfigError extends Error {
  constructor(detail: string) {
    super(`invalid raft config: ${detail}`);
    this.name = "RaftConfigError";
  }
}

const MiB = 1024 * 1024;

export function resolveConfig(config: RaftConfig): ResolvedConfig {
  const resolved: ResolvedConfig = {
    id: config.id,
    peers: config.peers ?? [],
    learners: config.learners ?? [],
    electionTick: config.electionTick ?? 10,
    heartbeatTick: config.heartbeatTick ?? 1,
    preVote: config.preVote ?? true,
    checkQuorum: config.checkQuorum ?? true,
    maxSizePerMsg: config.maxSizePerMsg ?? MiB,
    maxInflightMsgs: config.maxInflightMsgs ?? 256,
    maxInflightBytes: config.maxInflightBytes ?? 32 * MiB,
    maxUncommittedEntriesBytes: config.maxUncommittedEntriesBytes ?? 64 * MiB,
    maxSnapshotChunkBytes: config.maxSnapshotChunkBytes ?? MiB,
    maxSnapshotBytes: config.maxSnapshotBytes ?? 1024 * MiB,
    maxCommittedBytesPerReady: config.maxCommittedBytesPerReady ?? 16 * MiB,
    maxPendingReadIndex: config.maxPendingReadIndex ?? 4096,
    applied: config.applied,
    random: config.random,
    logger: config.logger,
    unsafeCommitPreviousTerm: config.unsafeCommitPreviousTerm === true,
  };
  const positive: (keyof ResolvedConfig)[] = [
    "id",
    "electionTick",
    "heartbeatTick",
    "maxSizePerMsg",
    "maxInflightMsgs",
    "maxInflightBytes",
    "maxUncommittedEntriesBytes",
    "maxSnapshotChunkBytes",
    "maxSnapshotBytes",
    "maxCommittedBytesPerReady",
    "maxPendingReadIndex",
  ];
  for (const key of positive) {
    const value = resolved[key];
    if (typeof value !== "number" || !Number.isInteger(value) || value <= 0) {
      throw new RaftConfigError(`${key} must be a positive integer, got ${String(value)}`);
    }
  }
  if (resolved.heartbeatTick >= resolved.electionTick) {
    throw new RaftConfigError("heartbeatTick must be smaller than electionTick");
  }
  for (const id of [...resolved.peers, ...resolved.learners]) {
    if (!Number.isInteger(id) || id <= 0) throw new RaftConfigError(`peer id ${id} is not a positive integer`);
  }
  if (resolved.learners.some((id) => resolved.peers.includes(id))) {
    throw new RaftConfigError("a node is either a peer (voter) or a learner, not both");
  }
  return resolved;
}
