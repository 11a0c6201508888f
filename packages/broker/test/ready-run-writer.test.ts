// The ready runs written by hand are byte for byte what protobufjs writes for the same messages.
import { raftmq, Writer } from "@raftmq/proto";
import { describe, expect, it } from "vitest";
import { type ReadyFields, ReadyRunWriter, readReadyPiece } from "../src/ready-run-writer.ts";

const pb = raftmq.v1;

/** A deterministic spread of values: zeros, varint boundaries, and numbers past 32 bits. */
function valueAt(i: number, max: number): number {
  const picks = [0, 1, 127, 128, 16_383, 16_384, 2 ** 21 - 1, 2 ** 21, 2 ** 28 - 1, 2 ** 28, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 35 + 7, 2 ** 49 + 3, Number.MAX_SAFE_INTEGER];
  const v = picks[(i * 7 + 3) % picks.length] as number;
  return v > max ? (i * 2654435761) % (max + 1) : v;
}

describe("ReadyRunWriter", () => {
  it("writes what protobufjs writes, for every kind of value and run", () => {
    const writer = new ReadyRunWriter();
    const runs: raftmq.v1.SnapshotReadyRun.$Properties[] = [];
    for (let r = 0; r < 40; r++) {
      const queue = valueAt(r, 2 ** 32 - 1);
      const ready: raftmq.v1.SnapshotQueuedMessage.$Properties[] = [];
      writer.startRun(queue);
      // Runs of 0, 1 and many messages; a large run passes the writer's first buffer size.
      const count = r === 5 ? 20_000 : r % 3;
      for (let i = 0; i < count; i++) {
        const k = r * 31 + i;
        const m = {
          id: valueAt(k, Number.MAX_SAFE_INTEGER),
          messageRef: valueAt(k + 1, 2 ** 32 - 1),
          expiresAtMs: valueAt(k + 2, Number.MAX_SAFE_INTEGER),
          deliveryCount: valueAt(k + 3, 2 ** 32 - 1),
          redelivered: k % 2 === 0,
          bodyKey: valueAt(k + 4, Number.MAX_SAFE_INTEGER),
          bodySize: valueAt(k + 5, 2 ** 32 - 1),
        };
        ready.push(m);
        writer.message(m.id, m.messageRef, m.expiresAtMs, m.deliveryCount, m.redelivered, m.bodyKey, m.bodySize);
      }
      runs.push({ queue, ready });
    }
    const expected = pb.BrokerSnapshot.encode({ readyRuns: runs }).finish();
    const written = writer.take();
    expect(Buffer.from(written).equals(Buffer.from(expected))).toBe(true);
    // And it reads back as the same messages.
    const back = pb.BrokerSnapshot.decode(written);
    expect(back.readyRuns.length).toBe(40);
    expect(Number(back.readyRuns[5]?.ready?.[19_999]?.bodyKey)).toBe(runs[5]?.ready?.[19_999]?.bodyKey);
    // Read back by hand: the same runs, message for message.
    const read: { queue: number; fields: ReadyFields }[] = [];
    readReadyPiece(written, { message: () => undefined, queued: (queue, fields) => read.push({ queue, fields: { ...fields } }) });
    const flat = runs.flatMap((r) => (r.ready ?? []).map((m) => ({ queue: r.queue, fields: m })));
    expect(read).toEqual(flat);
    // Taken: the writer starts over.
    expect(writer.take().length).toBe(0);
  });

  it("reads heads and messages whatever the field order, skipping fields it does not know", () => {
    // A run whose queue comes after its messages, and a message with its fields reversed and
    // an unknown field: written with protobufjs's writer, field by field.
    const w = Writer.create();
    w.uint32((7 << 3) | 2).fork().uint32((2 << 3) | 2).string("rk").ldelim();
    w.uint32((13 << 3) | 2).fork();
    w.uint32((2 << 3) | 2).fork().uint32((7 << 3) | 0).uint32(1024).uint32((6 << 3) | 0).uint64(2 ** 40 + 5).uint32((99 << 3) | 2).bytes(new Uint8Array(3)).uint32((1 << 3) | 0).uint64(77).ldelim();
    w.uint32((1 << 3) | 0).uint32(3);
    w.ldelim();
    w.uint32((50 << 3) | 5).fixed32(9);
    const heads: string[] = [];
    const read: { queue: number; fields: ReadyFields }[] = [];
    readReadyPiece(w.finish(), { message: (m) => heads.push(String(pb.SnapshotMessage.decode(m).routingKey)), queued: (queue, fields) => read.push({ queue, fields: { ...fields } }) });
    expect(heads).toEqual(["rk"]);
    expect(read).toEqual([{ queue: 3, fields: { id: 77, messageRef: 0, expiresAtMs: 0, deliveryCount: 0, redelivered: false, bodyKey: 2 ** 40 + 5, bodySize: 1024 } }]);
  });

  it("refuses bytes that run past their end or hold a number past 2^53", () => {
    const sink = { message: () => undefined, queued: () => undefined };
    const good = new ReadyRunWriter();
    good.startRun(1);
    good.message(5, 0, 0, 0, false, 9, 100);
    const bytes = good.take();
    for (let cut = 1; cut < bytes.length; cut++) expect(() => readReadyPiece(bytes.subarray(0, cut), sink)).toThrow(RangeError);
    // A run whose queue is 2^64 - 1: ten bytes of varint.
    const huge = Uint8Array.of((13 << 3) | 2, 11, (1 << 3) | 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
    expect(() => readReadyPiece(huge, sink)).toThrow(/2\^53/);
  });
});
