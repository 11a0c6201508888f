// Encoding of a peer stream frame (raftmq.v1.MessageBatch) that copies each entry's data once.
// protobufjs writes a message into one growing buffer: the buffer doubles as it fills, and each
// nested length prefix longer than one byte shifts everything after it, so an entry of 16 MiB is
// copied about six times on its way into a frame (Batch > Message > Entry > data). Here the
// small parts are still encoded by the generated code and only assembled around the data: the
// protobuf wire format lets a message's fields come in any order, and a nested message is its
// fields' bytes behind a length prefix.
import { lengthDelimitedHeader, raftmq, Writer } from "@raftmq/proto";
import type { Entry, Message } from "@raftmq/raft";

/** Field numbers of raft.proto used below. */
const BATCH_MESSAGES = 1;
const BATCH_GROUP_ID = 2;
const MESSAGE_ENTRIES = 7;
const ENTRY_DATA = 4;

/**
 * A frame is assembled only when one of its entries carries at least this much data; otherwise
 * the generated encoder is used as it is: for many small entries its copies cost less than
 * assembling pieces.
 */
export const ASSEMBLE_FROM_BYTES = 64 * 1024;

const NO_ENTRIES: Entry[] = [];

/** The frame carrying `messages` of Raft group `groupId`; decodes as MessageBatch.encode's would. */
export function encodeFrame(groupId: number, messages: readonly Message[]): Uint8Array {
  let largest = 0;
  for (const m of messages) for (const e of m.entries) if (e.data.byteLength > largest) largest = e.data.byteLength;
  if (largest < ASSEMBLE_FROM_BYTES) return raftmq.v1.MessageBatch.encode({ groupId, messages: messages as Message[] }).finish();

  const pieces: Uint8Array[] = [];
  let total = 0;
  const add = (piece: Uint8Array): void => {
    pieces.push(piece);
    total += piece.byteLength;
  };
  for (const m of messages) {
    const head = raftmq.v1.Message.encode(m.entries.length === 0 ? m : { ...m, entries: NO_ENTRIES }).finish();
    const entryParts: Uint8Array[][] = [];
    let messageBytes = head.byteLength;
    for (const e of m.entries) {
      // Without data the generated encoder writes term, index and type, zeros omitted.
      const fields = raftmq.v1.Entry.encode({ term: e.term, index: e.index, type: e.type }).finish();
      const parts = e.data.byteLength === 0 ? [fields] : [fields, lengthDelimitedHeader(ENTRY_DATA, e.data.byteLength), e.data];
      let entryLength = 0;
      for (const p of parts) entryLength += p.byteLength;
      const prefix = lengthDelimitedHeader(MESSAGE_ENTRIES, entryLength);
      entryParts.push([prefix, ...parts]);
      messageBytes += prefix.byteLength + entryLength;
    }
    add(lengthDelimitedHeader(BATCH_MESSAGES, messageBytes));
    add(head);
    for (const parts of entryParts) for (const p of parts) add(p);
  }
  if (groupId !== 0) {
    add(
      Writer.create()
        .uint32((BATCH_GROUP_ID << 3) | 0)
        .uint64(groupId)
        .finish(),
    );
  }
  const frame = Buffer.allocUnsafe(total);
  let at = 0;
  for (const p of pieces) {
    frame.set(p, at);
    at += p.byteLength;
  }
  return frame;
}
