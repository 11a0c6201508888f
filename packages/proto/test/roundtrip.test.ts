import { describe, expect, it } from "vitest";
import { raftmq } from "../src/index.ts";

const { Message, MessageType, EntryType } = raftmq.v1;

describe("generated Raft messages", () => {
  it("round-trips an AppendEntries with 64-bit fields as numbers", () => {
    const sent = {
      type: MessageType.MESSAGE_TYPE_APPEND_ENTRIES,
      from: 1,
      to: 2,
      term: 2 ** 40,
      logIndex: 7,
      logTerm: 3,
      entries: [{ term: 3, index: 8, type: EntryType.ENTRY_TYPE_NORMAL, data: new Uint8Array([1, 2, 3]) }],
      commit: 6,
    };
    const got = Message.decode(Message.encode(sent).finish());
    expect(got.term).toBe(2 ** 40);
    expect(got.entries[0]?.index).toBe(8);
    expect(Array.from(got.entries[0]?.data ?? [])).toEqual([1, 2, 3]);
    expect(got.reject).toBe(false);
  });
});

describe("64-bit defaults", () => {
  it("reads absent 64-bit fields as the number 0, not a Long", () => {
    const got = Message.decode(Message.encode({ type: MessageType.MESSAGE_TYPE_HEARTBEAT }).finish());
    expect(got.term).toBe(0);
    expect(typeof Message.prototype.term).toBe("number");
  });
});
