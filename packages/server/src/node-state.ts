// The replicated state of a node: the broker state machine plus what the node itself keeps in
// the log (the members' addresses). Normal entries are applied by the broker (Broker.applyEntry,
// the one apply path); conf changes update the address book. A Raft snapshot carries all of it as
// one NodeSnapshot.
import { Broker, type BrokerLimits, type CommandResult, type Effect, type NewBody } from "@raftmq/broker";
import { lengthDelimitedHeader, raftmq } from "@raftmq/proto";
import { type ConfChange, ConfChangeType, decodeConfChange, type Entry, EntryType } from "@raftmq/raft";
import type { ClusterMemberAddress } from "./node-config.ts";

export interface AppliedBatch {
  results: CommandResult[];
  effects: Effect[];
  /** Bodies to store before the effects are acted on (Broker.takeNewBodies). */
  bodies: NewBody[];
}

/** What one committed entry did: a normal entry's results and effects, or a conf change's address change. */
export interface AppliedEntry extends AppliedBatch {
  addressChange: AddressChange | null;
}

/** A snapshot taken at one moment and written out later (NodeState.captureSnapshot). */
export interface SnapshotCapture {
  /** The broker's pieces, its first step (the capture) already taken; some may be empty. */
  pieces: Generator<Uint8Array, void, undefined>;
  /** The NodeSnapshot bytes around all of the broker's pieces. */
  assemble(brokerPieces: readonly Uint8Array[]): Uint8Array;
}

export type AddressChange =
  | { kind: "added"; member: ClusterMemberAddress; learner: boolean }
  | { kind: "promoted"; id: number }
  | { kind: "removed"; id: number };

export class NodeState {
  private constructor(
    readonly broker: Broker,
    private readonly addresses: Map<number, ClusterMemberAddress>,
  ) {}

  static create(initialCluster: readonly ClusterMemberAddress[], limits?: Partial<BrokerLimits>): NodeState {
    return new NodeState(new Broker(limits), addressMap(initialCluster));
  }

  /** Restores from NodeSnapshot bytes; `base` fills addresses the snapshot does not know. */
  static restore(bytes: Uint8Array, base: readonly ClusterMemberAddress[], limits?: Partial<BrokerLimits>): NodeState {
    const steps = NodeState.restoring(bytes, base, limits);
    for (;;) {
      const step = steps.next();
      if (step.done === true) return step.value;
    }
  }

  /** Restores piece by piece (see Broker.restoring): each next() does a bounded amount of work. */
  static *restoring(bytes: Uint8Array, base: readonly ClusterMemberAddress[], limits?: Partial<BrokerLimits>): Generator<void, NodeState, undefined> {
    // The broker bytes decode as a view into `bytes`, not a copy.
    const snap = raftmq.v1.NodeSnapshot.decode(bytes);
    const broker = snap.broker.length === 0 ? new Broker(limits) : yield* Broker.restoring(snap.broker, limits);
    const addresses = addressMap(base);
    for (const m of snap.members) {
      const id = Number(m.id ?? 0);
      if (id > 0) addresses.set(id, { id, peerAddress: m.peerAddress ?? "", clientAddress: m.clientAddress ?? "" });
    }
    return new NodeState(broker, addresses);
  }

  snapshot(): Uint8Array {
    const capture = this.captureSnapshot();
    return capture.assemble([...capture.pieces]);
  }

  /**
   * Takes a snapshot of this state as it is now, synchronously: the node's own records and the
   * broker's first step, which captures the rest (Broker.snapshotPieces). The remaining pieces
   * may be pulled, and `assemble` called, while commands go on being applied.
   */
  captureSnapshot(): SnapshotCapture {
    const head = raftmq.v1.NodeSnapshot.encode({
      members: this.members().map((m) => ({ id: m.id, peerAddress: m.peerAddress, clientAddress: m.clientAddress })),
    }).finish();
    const broker = this.broker.snapshotPieces();
    const first = broker.next();
    function* pieces(): Generator<Uint8Array, void, undefined> {
      if (first.done !== true) yield first.value;
      yield* broker;
    }
    return { pieces: pieces(), assemble: (brokerPieces) => assembleSnapshot(head, brokerPieces) };
  }

  /** Applies the data of one normal entry (an encoded CommandBatch; empty for a leader's no-op). */
  applyEntry(index: number, data: Uint8Array): AppliedBatch {
    return this.broker.applyEntry(index, data);
  }

  /** Applies one committed entry of either kind: a conf change to the address book, a normal entry to the broker. */
  applyCommitted(entry: Entry): AppliedEntry {
    if (entry.type === EntryType.ENTRY_TYPE_CONF_CHANGE) return { results: [], effects: [], bodies: [], addressChange: this.applyConfChange(decodeConfChange(entry.data)) };
    const { results, effects, bodies } = this.broker.applyEntry(entry.index, entry.data);
    return { results, effects, bodies, addressChange: null };
  }

  /** Records what a committed conf change means for the address book. */
  applyConfChange(change: ConfChange): AddressChange | null {
    switch (change.type) {
      case ConfChangeType.CONF_CHANGE_TYPE_ADD_LEARNER:
      case ConfChangeType.CONF_CHANGE_TYPE_ADD_VOTER: {
        const learner = change.type === ConfChangeType.CONF_CHANGE_TYPE_ADD_LEARNER;
        if (change.context.length > 0) {
          const m = raftmq.v1.Member.decode(change.context);
          const member = { id: change.nodeId, peerAddress: m.peerAddress ?? "", clientAddress: m.clientAddress ?? "" };
          const known = this.addresses.get(change.nodeId);
          this.addresses.set(change.nodeId, member);
          if (known !== undefined && !learner) return { kind: "promoted", id: change.nodeId };
          return { kind: "added", member, learner };
        }
        const known = this.addresses.get(change.nodeId);
        return known === undefined ? null : { kind: "added", member: known, learner };
      }
      case ConfChangeType.CONF_CHANGE_TYPE_REMOVE_NODE:
        this.addresses.delete(change.nodeId);
        return { kind: "removed", id: change.nodeId };
      default:
        return null;
    }
  }

  address(id: number): ClusterMemberAddress | undefined {
    return this.addresses.get(id);
  }

  members(): ClusterMemberAddress[] {
    return [...this.addresses.values()].sort((a, b) => a.id - b.id);
  }

}

/** NodeSnapshot.broker (cluster.proto). */
const BROKER_FIELD_NUMBER = 1;

function addressMap(members: readonly ClusterMemberAddress[]): Map<number, ClusterMemberAddress> {
  const map = new Map<number, ClusterMemberAddress>();
  for (const m of [...members].sort((a, b) => a.id - b.id)) map.set(m.id, { ...m });
  return map;
}

/**
 * The NodeSnapshot: its small fields (`head`, encoded) and then the broker field, written by hand
 * around the pieces, so they are copied once, into the result.
 */
function assembleSnapshot(head: Uint8Array, brokerPieces: readonly Uint8Array[]): Uint8Array {
  let brokerBytes = 0;
  for (const p of brokerPieces) brokerBytes += p.length;
  const fieldHeader = lengthDelimitedHeader(BROKER_FIELD_NUMBER, brokerBytes);
  const out = new Uint8Array(head.length + fieldHeader.length + brokerBytes);
  out.set(head, 0);
  out.set(fieldHeader, head.length);
  let at = head.length + fieldHeader.length;
  for (const p of brokerPieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
