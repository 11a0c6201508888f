// The ready runs written by hand are byte for byte what protobufjs writes for the same messages.
import { raftmq, Writer } from "@raftmq/proto";
import { describe, expect, it } from "vitest";
import { MAX_COLUMN_BLOCK, type ReadyFields, type ReadyPieceSink, ReadyRunWriter, readReadyPiece } from "../src/ready-run-writer.ts";

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
    readReadyPiece(written, { message: () => undefined, queued: (queue, fields) => read.push({ queue, fields: { ...fields } }), columns: () => undefined });
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
    readReadyPiece(w.finish(), { message: (m) => heads.push(String(pb.SnapshotMessage.decode(m).routingKey)), queued: (queue, fields) => read.push({ queue, fields: { ...fields } }), columns: () => undefined });
    expect(heads).toEqual(["rk"]);
    expect(read).toEqual([{ queue: 3, fields: { id: 77, messageRef: 0, expiresAtMs: 0, deliveryCount: 0, redelivered: false, bodyKey: 2 ** 40 + 5, bodySize: 1024 } }]);
  });

  it("refuses bytes that run past their end or hold a number past 2^53", () => {
    const sink = { message: () => undefined, queued: () => undefined, columns: () => undefined };
    const good = new ReadyRunWriter();
    good.startRun(1);
    good.message(5, 0, 0, 0, false, 9, 100);
    const bytes = good.take();
    for (let cut = 1; cut < bytes.length; cut++) expect(() => readReadyPiece(bytes.subarray(0, cut), sink)).toThrow(RangeError);
    // A run whose queue is 2^64 - 1: ten bytes of varint.
    const huge = Uint8Array.of((13 << 3) | 2, 11, (1 << 3) | 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
    expect(() => readReadyPiece(huge, sink)).toThrow(/2\^53/);
  });

  it("writes column blocks as protobufjs would, in order with runs, and reads them back", () => {
    // Deltas of every kind: +1 runs, repeats, drops, zeros, and numbers up to 2^52 - 1.
    const blocks: { queue: number; rows: number[][] }[] = [
      { queue: 0, rows: Array.from({ length: 5000 }, (_, i) => [100 + i, 0, 0, 7 + i, 1024]) },
      { queue: 3, rows: [[5, 2, 2 ** 52 - 1, 9, 0], [4, 2, 0, 2 ** 40, 70_000], [4, 0, 0, 1, 70_000], [2 ** 52 - 1, 1, 17, 2, 1]] },
    ];
    /** The reference encoding of one column: (zigzag delta, repeat) pairs, written without repeats merged by a second path. */
    const column = (values: number[]): Uint8Array => {
      if (values.every((v) => v === 0)) return new Uint8Array(0);
      const w = Writer.create();
      let last = 0;
      let i = 0;
      while (i < values.length) {
        const delta = (values[i] as number) - last;
        let repeat = 1;
        while (i + repeat < values.length && (values[i + repeat] as number) - (values[i + repeat - 1] as number) === delta) repeat++;
        w.uint64(delta >= 0 ? delta * 2 : -delta * 2 - 1).uint32(repeat);
        last = values[i + repeat - 1] as number;
        i += repeat;
      }
      return w.finish();
    };
    const writer = new ReadyRunWriter();
    writer.startRun(1);
    writer.message(1, 0, 0, 2, true, 3, 4);
    const readyColumns: raftmq.v1.SnapshotReadyColumns.$Properties[] = [];
    for (const b of blocks) {
      writer.startColumns(b.queue);
      for (const [id, ref, expires, key, size] of b.rows as [number, number, number, number, number][]) writer.column(id, ref, expires, key, size);
      const of = (f: number) => column(b.rows.map((r) => r[f] as number));
      readyColumns.push({ queue: b.queue, count: b.rows.length, ids: of(0), messageRefs: of(1), expiresAtMs: of(2), bodyKeys: of(3), bodySizes: of(4) });
    }
    const written = writer.take();
    const expected = Buffer.concat([pb.BrokerSnapshot.encode({ readyRuns: [{ queue: 1, ready: [{ id: 1, deliveryCount: 2, redelivered: true, bodyKey: 3, bodySize: 4 }] }] }).finish(), pb.BrokerSnapshot.encode({ readyColumns }).finish()]);
    expect(Buffer.from(written).equals(expected)).toBe(true);
    // 5,000 messages one apart in ids and keys, one size: a few bytes; the rest holds numbers of up to 8 bytes.
    expect(written.length).toBeLessThan(200);
    const read: string[] = [];
    const rows: number[][] = [];
    readReadyPiece(written, {
      message: () => undefined,
      queued: (queue) => read.push(`run ${queue}`),
      columns: (queue, count, c) => {
        read.push(`columns ${queue} ${count}`);
        for (let i = 0; i < count; i++) rows.push([c.ids[i], c.messageRefs[i], c.expiresAtMs[i], c.bodyKeys[i], c.bodySizes[i]] as number[]);
      },
    });
    expect(read).toEqual(["run 1", "columns 0 5000", "columns 3 4"]);
    expect(rows).toEqual(blocks.flatMap((b) => b.rows));
  });

  it("refuses column blocks that are cut short, hold more or fewer values than their count, or too many", () => {
    const sink: ReadyPieceSink = { message: () => undefined, queued: () => undefined, columns: () => undefined };
    const good = new ReadyRunWriter();
    good.startColumns(2);
    for (let i = 0; i < 10; i++) good.column(i * 3, 0, 0, i, 5);
    const bytes = good.take();
    readReadyPiece(bytes, sink);
    for (let cut = 1; cut < bytes.length; cut++) expect(() => readReadyPiece(bytes.subarray(0, cut), sink)).toThrow(RangeError);
    const block = (fields: raftmq.v1.SnapshotReadyColumns.$Properties) => pb.BrokerSnapshot.encode({ readyColumns: [fields] }).finish();
    const pairs = (...values: number[]) => {
      const w = Writer.create();
      for (const v of values) w.uint64(v);
      return w.finish();
    };
    expect(() => readReadyPiece(block({ count: 3, ids: pairs(2, 4) }), sink)).toThrow(/more values than its block's 3/);
    expect(() => readReadyPiece(block({ count: 3, ids: pairs(2, 2) }), sink)).toThrow(/holds 2 values, its block 3/);
    expect(() => readReadyPiece(block({ count: 3, ids: pairs(2, 0, 2, 3) }), sink)).toThrow(RangeError);
    // A delta of -1 from 0: below zero.
    expect(() => readReadyPiece(block({ count: 1, ids: pairs(1, 1) }), sink)).toThrow(/out of range/);
    expect(() => readReadyPiece(block({ count: MAX_COLUMN_BLOCK + 1, ids: pairs(2, MAX_COLUMN_BLOCK + 1) }), sink)).toThrow(/more than/);
  });

  it("writes a run of alike messages as column() writes them one by one, next to single ones and across blocks", () => {
    // Runs of 1, 2 and many, steps of 0, 1, -1 and large, after and before single messages
    // whose deltas equal or differ from the run's step.
    const runs: [count: number, id: number, idStep: number, ref: number, key: number, keyStep: number, size: number][] = [
      [1, 5, 1, 0, 9, 1, 100],
      [3, 6, 1, 0, 10, 1, 100],
      [5_000, 9, 1, 0, 13, 1, 100],
      [2, 5_009, 2, 1, 5_013, 3, 0],
      [7, 6_000, 1, 1, 0, 0, 0],
      [4, 2 ** 40, 2 ** 33, 2 ** 31, 2 ** 45, 1, 2 ** 32 - 1],
      [3, 90, 1, 2, 80, 1, 1],
    ];
    const byRun = new ReadyRunWriter();
    const oneByOne = new ReadyRunWriter();
    for (const w of [byRun, oneByOne]) w.startColumns(4);
    runs.forEach(([count, id, idStep, ref, key, keyStep, size], r) => {
      // A single message between runs, continuing the run before it or not.
      for (const w of [byRun, oneByOne]) w.column(id - 1, ref, r % 2 === 0 ? 0 : 7, Math.max(0, key - 1), size);
      byRun.columnRun(count, id, idStep, ref, key, keyStep, size);
      for (let i = 0; i < count; i++) oneByOne.column(id + i * idStep, ref, 0, key + i * keyStep, size);
      if (r === 3) for (const w of [byRun, oneByOne]) w.startColumns(5);
    });
    const bytes = byRun.take();
    expect(Buffer.from(bytes).equals(Buffer.from(oneByOne.take()))).toBe(true);
    const counts: number[] = [];
    readReadyPiece(bytes, { message: () => undefined, queued: () => undefined, columns: (_q, count) => counts.push(count) });
    expect(counts).toEqual([4 + 1 + 3 + 5_000 + 2, 7 + 4 + 3 + 3]);
  });
});
