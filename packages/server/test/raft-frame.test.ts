// encodeFrame against the generated encoder: whatever it assembles must decode to exactly what
// MessageBatch.encode's bytes decode to, on both sides of the size where it starts assembling.
import { createHash } from "node:crypto";
import { raftmq } from "@raftmq/proto";
import { createMessage, type Entry, type Message } from "@raftmq/raft";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeFrame, fromWire } from "../src/peer-transport.ts";
import { ASSEMBLE_FROM_BYTES, encodeFrame } from "../src/raft-frame.ts";

const T = raftmq.v1.MessageType;
const u64 = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 300 }), fc.integer({ min: 2 ** 31, max: Number.MAX_SAFE_INTEGER }));

const entry: fc.Arbitrary<Entry> = fc.record({
  term: u64,
  index: u64,
  type: fc.constantFrom(raftmq.v1.EntryType.ENTRY_TYPE_NORMAL, raftmq.v1.EntryType.ENTRY_TYPE_CONF_CHANGE),
  // Sizes around the one-byte/two-byte length prefix and up past the assembling threshold.
  data: fc.oneof(
    fc.uint8Array({ maxLength: 3 }),
    fc.integer({ min: 100, max: 20_000 }).map((n) => new Uint8Array(n).fill(n & 0xff)),
    fc.integer({ min: ASSEMBLE_FROM_BYTES - 10, max: 3 * ASSEMBLE_FROM_BYTES }).map((n) => new Uint8Array(n).fill(7)),
  ),
});

const message: fc.Arbitrary<Message> = fc
  .record({
    type: fc.constantFrom(T.MESSAGE_TYPE_APPEND_ENTRIES, T.MESSAGE_TYPE_HEARTBEAT, T.MESSAGE_TYPE_INSTALL_SNAPSHOT, T.MESSAGE_TYPE_REQUEST_VOTE),
    from: fc.integer({ min: 1, max: 5000 }),
    to: fc.integer({ min: 1, max: 5000 }),
    term: u64,
    logIndex: u64,
    logTerm: u64,
    commit: u64,
    reject: fc.boolean(),
    rejectHint: u64,
    context: fc.uint8Array({ maxLength: 40 }),
    entries: fc.array(entry, { maxLength: 4 }),
    withSnapshot: fc.boolean(),
  })
  .map(({ withSnapshot, ...fields }) =>
    createMessage({
      ...fields,
      snapshot: withSnapshot
        ? { meta: { index: 9, term: 2, confState: { voters: [1, 2, 3], learners: [4] } }, offset: 0, totalSize: 3, data: new Uint8Array([1, 2, 3]), done: true }
        : null,
    }),
  );

function digest(bytes: Uint8Array): string {
  return `${bytes.byteLength}:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** The decoded frame, byte fields as digests (deep equality over megabytes is slow). */
function decoded(frame: Uint8Array): unknown {
  const batch = decodeFrame(frame);
  const messages = (batch.messages as raftmq.v1.Message[]).map(fromWire).map((m) => ({
    ...m,
    context: digest(m.context),
    entries: m.entries.map((e) => ({ ...e, data: digest(e.data) })),
    snapshot: m.snapshot == null ? null : { ...m.snapshot, data: digest(m.snapshot.data) },
  }));
  return { groupId: Number(batch.groupId), messages };
}

describe("encodeFrame", () => {
  it("decodes as the generated encoder's frame does, for any messages and entry sizes", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 40 }), fc.array(message, { minLength: 1, maxLength: 4 }), (groupId, messages) => {
        const ours = encodeFrame(groupId, messages);
        const theirs = raftmq.v1.MessageBatch.encode({ groupId, messages }).finish();
        expect(ours.byteLength).toBe(theirs.byteLength);
        expect(decoded(ours)).toEqual(decoded(theirs));
      }),
      { numRuns: 200, seed: 16 },
    );
  });

  it("copies a big entry's data once: the frame holds it at full length, byte for byte", () => {
    const data = new Uint8Array(5 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) data[i] = (i >>> 12) & 0xff;
    const m = createMessage({ type: T.MESSAGE_TYPE_APPEND_ENTRIES, from: 1, to: 2, term: 3, logIndex: 10, logTerm: 3, commit: 9, entries: [{ term: 3, index: 11, type: 0, data }] });
    const frame = encodeFrame(1, [m]);
    const back = (decodeFrame(frame).messages as raftmq.v1.Message[]).map(fromWire)[0];
    expect(back?.entries[0]?.data.byteLength).toBe(data.byteLength);
    expect(Buffer.compare(Buffer.from(back?.entries[0]?.data ?? []), Buffer.from(data))).toBe(0);
    expect(back).toMatchObject({ from: 1, to: 2, term: 3, logIndex: 10, logTerm: 3, commit: 9 });
  });
});
