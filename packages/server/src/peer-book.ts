// Which peers the transport links to: every member the log names, and nobody else.
import { raftmq } from "@raftmq/proto";
import { type ConfChange, ConfChangeType, type ConfState } from "@raftmq/raft";
import type { ClusterMemberAddress } from "./node-config.ts";

export interface PeerLinks {
  setPeer(id: number, address: string): void;
  removePeer(id: number): void;
  stats(): Record<number, unknown>;
}

export class PeerBook {
  constructor(
    private readonly selfId: number,
    private readonly links: PeerLinks,
  ) {}

  /** A member joining in a Ready that is about to be handed out must be reachable before its messages leave. */
  prepare(change: ConfChange): void {
    if (change.type === ConfChangeType.CONF_CHANGE_TYPE_REMOVE_NODE || change.context.length === 0) return;
    if (change.nodeId === this.selfId) return;
    const peerAddress = raftmq.v1.Member.decode(change.context).peerAddress ?? "";
    if (peerAddress !== "") this.links.setPeer(change.nodeId, peerAddress);
  }

  /** Links to every member of the address book but this node; drops links to ids that are no longer members. */
  sync(members: readonly ClusterMemberAddress[], conf: ConfState): void {
    for (const m of members) if (m.id !== this.selfId && m.peerAddress !== "") this.links.setPeer(m.id, m.peerAddress);
    const current = new Set([...conf.voters, ...conf.learners, ...members.map((m) => m.id)]);
    for (const id of Object.keys(this.links.stats()).map(Number)) if (!current.has(id)) this.links.removePeer(id);
  }
}
