// Cluster membership: who votes, who only learns, and how one ConfChange alters that.
// Ids are kept sorted so every node iterates them in the same order.
import { raftmq } from "@raftmq/proto";
import { type ConfChange, ConfChangeType, type ConfState } from "./types.ts";

export class Membership {
  private constructor(
    readonly voters: readonly number[],
    readonly learners: readonly number[],
  ) {}

  static of(confState: ConfState): Membership {
    const voters = [...new Set(confState.voters)].sort((a, b) => a - b);
    const learners = [...new Set(confState.learners)].filter((id) => !voters.includes(id)).sort((a, b) => a - b);
    return new Membership(voters, learners);
  }

  static empty(): Membership {
    return new Membership([], []);
  }

  isVoter(id: number): boolean {
    return this.voters.includes(id);
  }

  isLearner(id: number): boolean {
    return this.learners.includes(id);
  }

  isMember(id: number): boolean {
    return this.isVoter(id) || this.isLearner(id);
  }

  /** Voters then learners, each sorted: the order every loop over peers uses. */
  members(): number[] {
    return [...this.voters, ...this.learners];
  }

  confState(): ConfState {
    return { voters: [...this.voters], learners: [...this.learners] };
  }

  /** Why `change` cannot be applied to this membership, or null when it can. */
  validate(change: ConfChange): string | null {
    if (!Number.isInteger(change.nodeId) || change.nodeId <= 0) return `node id ${change.nodeId} is not a positive integer`;
    switch (change.type) {
      case ConfChangeType.CONF_CHANGE_TYPE_ADD_LEARNER:
        if (this.isVoter(change.nodeId)) return `node ${change.nodeId} is a voter; demotion is not supported`;
        if (this.isLearner(change.nodeId)) return `node ${change.nodeId} is already a learner`;
        return null;
      case ConfChangeType.CONF_CHANGE_TYPE_ADD_VOTER:
        if (this.isVoter(change.nodeId)) return `node ${change.nodeId} is already a voter`;
        return null;
      case ConfChangeType.CONF_CHANGE_TYPE_REMOVE_NODE:
        if (!this.isMember(change.nodeId)) return `node ${change.nodeId} is not a member`;
        if (this.voters.length === 1 && this.isVoter(change.nodeId)) return "cannot remove the last voter";
        return null;
      default:
        return `unknown conf change type ${String(change.type)}`;
    }
  }

  /**
   * The membership after `change`. A committed change is applied even when it no longer
   * validates (e.g. re-delivered), so applying is total and idempotent per node id.
   */
  apply(change: ConfChange): Membership {
    const id = change.nodeId;
    const voters = this.voters.filter((v) => v !== id);
    const learners = this.learners.filter((l) => l !== id);
    switch (change.type) {
      case ConfChangeType.CONF_CHANGE_TYPE_ADD_LEARNER:
        if (this.isVoter(id)) return this;
        learners.push(id);
        break;
      case ConfChangeType.CONF_CHANGE_TYPE_ADD_VOTER:
        voters.push(id);
        break;
      case ConfChangeType.CONF_CHANGE_TYPE_REMOVE_NODE:
        break;
      default:
        return this;
    }
    return Membership.of({ voters, learners });
  }
}

export function encodeConfChange(change: ConfChange): Uint8Array {
  return raftmq.v1.ConfChange.encode({ type: change.type, nodeId: change.nodeId, context: change.context }).finish();
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const decoded = raftmq.v1.ConfChange.decode(data);
  return { type: decoded.type, nodeId: Number(decoded.nodeId), context: decoded.context ?? new Uint8Array(0) };
}
