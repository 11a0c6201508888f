// When a learner has caught up with the leader's log and may become a voter.
import type { RaftStatus } from "@raftmq/raft";

/**
 * The first learner that holds entries at all (one that never answered has match 0, which a short
 * log's lag would otherwise forgive) and is within `maxLag` entries of the leader's log; 0 if none.
 */
export function learnerToPromote(status: Pick<RaftStatus, "progress" | "lastIndex">, maxLag: number): number {
  for (const p of status.progress) {
    if (p.isLearner && p.match > 0 && p.match + maxLag >= status.lastIndex) return p.id;
  }
  return 0;
}
