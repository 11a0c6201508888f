// Errors the core throws. Callers act on the fields: redirect to leaderId, retry after a drop,
// and treat RaftInvariantError as fatal (the node's state can no longer be trusted).

export class RaftInvariantError extends Error {
  constructor(readonly nodeId: number, detail: string) {
    super(`raft node ${nodeId}: invariant violated: ${detail}`);
    this.name = "RaftInvariantError";
  }
}

export class NotLeaderError extends Error {
  /** The leader this node knows of, or 0 when it knows none. */
  constructor(readonly leaderId: number) {
    super(leaderId === 0 ? "not the leader; no leader is known" : `not the leader; the leader is node ${leaderId}`);
    this.name = "NotLeaderError";
  }
}

export type ProposalDropReason =
  | "leadership-transfer"
  | "uncommitted-limit"
  | "conf-change-pending"
  | "invalid-conf-change"
  | "not-a-member"
  | "too-large";

export class ProposalDroppedError extends Error {
  constructor(readonly reason: ProposalDropReason, detail?: string) {
    super(`proposal dropped: ${reason}${detail === undefined ? "" : ` (${detail})`}`);
    this.name = "ProposalDroppedError";
  }
}

/** A call that breaks the Ready/advance protocol, e.g. ready() twice without advance(). */
export class RaftUsageError extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = "RaftUsageError";
  }
}
