// The core's data types. Field for field they are the messages of proto/raftmq/v1/raft.proto,
// so the transport encodes them as they are and the storage persists them as they are.
import { raftmq } from "@raftmq/proto";

export const MessageType = raftmq.v1.MessageType;
export type MessageType = raftmq.v1.MessageType;
export const EntryType = raftmq.v1.EntryType;
export type EntryType = raftmq.v1.EntryType;
export const ConfChangeType = raftmq.v1.ConfChangeType;
export type ConfChangeType = raftmq.v1.ConfChangeType;

/** No node: a vote not cast, a leader not known. Real node ids are positive. */
export const NONE = 0;

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

export interface HardState {
  term: number;
  vote: number;
  commit: number;
}

export interface ConfState {
  voters: number[];
  learners: number[];
}

export interface ConfChange {
  type: ConfChangeType;
  nodeId: number;
  context: Uint8Array;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  confState: ConfState;
}

export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

export interface SnapshotChunk {
  meta: SnapshotMeta;
  offset: number;
  totalSize: number;
  data: Uint8Array;
  done: boolean;
}

export interface Message {
  type: MessageType;
  from: number;
  to: number;
  term: number;
  logIndex: number;
  logTerm: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  hintTerm: number;
  snapshot?: SnapshotChunk | null;
  context: Uint8Array;
}

export type Role = "follower" | "pre-candidate" | "candidate" | "leader";

/** Volatile state the application may want to show or log; not persisted. */
export interface SoftState {
  leaderId: number;
  role: Role;
}

/** A linearizable read may be served once the state machine has applied `index`. */
export interface ReadState {
  index: number;
  context: Uint8Array;
}

/**
 * What the core asks the application to do, in this order:
 * 1. send `messages`: they promise nothing about this node's disk and may leave at once;
 * 2. persist `hardState`, `entries` and `snapshot` (one synced write when `mustSync`);
 * 3. once that write is synced, send `messagesAfterPersist`;
 * 4. restore the state machine from `snapshot` if present, then apply `committedEntries` (those
 *    already in the stored log may be applied while the write is in flight);
 * 5. call `advance(ready)`.
 */
export interface Ready {
  softState: SoftState | null;
  hardState: HardState | null;
  entries: Entry[];
  snapshot: Snapshot | null;
  committedEntries: Entry[];
  messages: Message[];
  /** Messages that vouch for this Ready's write (acks, votes, a new term): sent only after its sync. */
  messagesAfterPersist: Message[];
  readStates: ReadState[];
  mustSync: boolean;
}

/** Where a proposal landed; it is committed once an applied entry has this index and term. */
export interface ProposalPosition {
  index: number;
  term: number;
}

const NO_CONTEXT = new Uint8Array(0);

/** A Message with every field the caller leaves out at its zero value, as the wire decodes it. */
export function createMessage(fields: Partial<Message> & Pick<Message, "type" | "from" | "to">): Message {
  return {
    type: fields.type,
    from: fields.from,
    to: fields.to,
    term: fields.term ?? 0,
    logIndex: fields.logIndex ?? 0,
    logTerm: fields.logTerm ?? 0,
    entries: fields.entries ?? [],
    commit: fields.commit ?? 0,
    reject: fields.reject ?? false,
    rejectHint: fields.rejectHint ?? 0,
    hintTerm: fields.hintTerm ?? 0,
    snapshot: fields.snapshot ?? null,
    context: fields.context ?? NO_CONTEXT,
  };
}
