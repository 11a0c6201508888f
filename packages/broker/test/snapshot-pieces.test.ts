// Snapshots written and read in pieces: the same bytes and the same state as at once, the old
// single-message format still read, and pieces taken while commands are applied.
import { Reader, raftmq } from "@raftmq/proto";
import { describe, expect, it } from "vitest";
import { Broker } from "../src/index.ts";
import { DEDUP_ENTRIES_PER_STEP } from "../src/snapshot.ts";
import { Driver, deliveries } from "./broker-driver.ts";
import { decodePieces } from "./snapshot-bytes.ts";

function busyBroker(): Driver {
  const d = new Driver();
  d.queue("a");
  d.queue("b");
  d.queue("empty");
  d.bind("amq.fanout", "a");
  d.bind("amq.fanout", "b");
  for (let i = 0; i < 300; i++) d.publish("amq.fanout", "", `m${i}`.padEnd(200, "x"));
  for (let i = 0; i < 50; i++) d.publish("", "b", `only-b-${i}`);
  d.subscribe("c1", "a", 5);
  return d;
}

/** Pieces with bytes in them: the steps that capture, or build the first piece, yield none. */
function nonEmpty(pieces: Iterable<Uint8Array>): Uint8Array[] {
  return [...pieces].filter((p) => p.length > 0);
}

/** Three idempotent producers with full windows of 1,500 sequences, and one with a single publish. */
function producersBroker(): Driver {
  const d = new Driver(undefined, { dedupWindow: 1500, maxProducers: 4 });
  d.queue("q");
  for (const producerId of ["p1", "p2", "p3"]) {
    for (let sequence = 0; sequence < 2000; sequence++) d.publish("", "q", "x", { producerId, sequence });
  }
  d.publish("", "nowhere", "y", { producerId: "p4", sequence: 7 });
  return d;
}

/** Reads the pieces back and writes them as one BrokerSnapshot with the ready lists inline. */
function asSingleMessage(bytes: Uint8Array): Uint8Array {
  const [first, ...rest] = decodePieces(bytes);
  if (first === undefined) throw new Error("no pieces");
  for (const piece of rest) {
    first.messages.push(...piece.messages);
    for (const run of piece.readyRuns) first.queues[Number(run.queue ?? 0)]?.ready?.push(...(run.ready ?? []));
  }
  return raftmq.v1.BrokerSnapshot.encode(first).finish();
}

describe("broker snapshots in pieces", () => {
  it("pieces concatenate to snapshot(); smaller pieces split the ready messages further", () => {
    const { broker } = busyBroker();
    const pieces = nonEmpty(broker.snapshotPieces());
    expect(pieces.length).toBe(2);
    expect(Buffer.concat(pieces).equals(Buffer.from(broker.snapshot()))).toBe(true);
    expect([...broker.snapshotPieces(4096)].length).toBeGreaterThan(10);
  });

  it("restoring piece by piece gives the state back, one step per piece", () => {
    const { broker } = busyBroker();
    const bytes = Buffer.concat([...broker.snapshotPieces(4096)]);
    const pieceCount = nonEmpty(broker.snapshotPieces(4096)).length;
    const steps = Broker.restoring(bytes);
    let yields = 0;
    let step = steps.next();
    while (step.done !== true) {
      yields++;
      step = steps.next();
    }
    expect(yields).toBe(pieceCount);
    const restored = step.value;
    expect(Buffer.from(restored.snapshot()).equals(Buffer.from(broker.snapshot()))).toBe(true);
    expect(restored.queueInfo("a")).toEqual(broker.queueInfo("a"));
    expect(restored.queueInfo("b")?.messagesReady).toBe(350);
  });

  it("reads a snapshot written as one message, the format before pieces", () => {
    const { broker } = busyBroker();
    const legacy = asSingleMessage(broker.snapshot());
    expect(legacy[0]).not.toBe(0);
    const restored = Broker.restore(legacy);
    expect(Buffer.from(restored.snapshot()).equals(Buffer.from(broker.snapshot()))).toBe(true);
  });

  it("pieces after the first describe the state as it was when the first was taken, whatever is applied meanwhile", () => {
    const d = busyBroker();
    const expected = Buffer.concat([...d.broker.snapshotPieces(4096)]);
    const pieces = d.broker.snapshotPieces(4096);
    const first = pieces.next();
    if (first.done === true) throw new Error("no first piece");
    // Deliveries count captured messages, a requeue marks one redelivered, and queues change.
    const delivered = deliveries(d.subscribe("c2", "b", 100).effects);
    expect(delivered).toHaveLength(100);
    d.ok({ cancel: { consumerId: "c2" } });
    d.ok({ nack: { consumerId: "c2", deliveryTag: delivered[0]?.deliveryTag ?? 0, requeue: true } });
    d.publish("", "a", "late");
    d.ok({ purgeQueue: { name: "a" } });
    d.ok({ deleteQueue: { name: "empty" } });
    const bytes = Buffer.concat([first.value, ...pieces]);
    expect(bytes.equals(expected)).toBe(true);
    const restored = Broker.restore(bytes);
    expect(restored.queueInfo("a")?.messagesReady).toBe(295);
    expect(restored.queueInfo("b")?.messagesReady).toBe(350);
    expect(restored.queueInfo("empty")).toBeDefined();
    expect(d.broker.queueInfo("a")?.messagesReady).toBe(0);
  });

  it("encode producers' dedup windows a bounded number of entries per step, to the bytes of the state at capture", () => {
    const d = producersBroker();
    const expected = Buffer.from(d.broker.snapshot());
    const steps = d.broker.snapshotPieces();
    const first = steps.next();
    expect(first.done === true ? null : first.value.length).toBe(0);
    // Meanwhile p1's window moves on past what was captured, p2 publishes once more, and a fifth
    // producer evicts the least recently seen (p3).
    for (let sequence = 2000; sequence < 3600; sequence++) d.publish("", "q", "x", { producerId: "p1", sequence });
    d.publish("", "q", "x", { producerId: "p2", sequence: 2000 });
    d.publish("", "q", "x", { producerId: "p5", sequence: 0 });
    const rest = [...steps];
    // 4,501 entries, DEDUP_ENTRIES_PER_STEP (1,024) a step, windows split across steps: four steps
    // without bytes, then the first piece (with the last 405 entries) and the ready messages.
    expect(DEDUP_ENTRIES_PER_STEP).toBe(1024);
    expect(rest.map((p) => p.length > 0)).toEqual([false, false, false, false, true, true]);
    expect(Buffer.concat(rest).equals(expected)).toBe(true);
    // The first piece, encoded in parts, is the canonical encoding of the message it holds.
    const firstPiece = rest[4] as Uint8Array;
    const reader = Reader.create(firstPiece.subarray(2));
    const length = reader.uint32();
    const message = firstPiece.subarray(2 + reader.pos);
    expect(message.length).toBe(length);
    expect(Buffer.from(raftmq.v1.BrokerSnapshot.encode(raftmq.v1.BrokerSnapshot.decode(message)).finish()).equals(Buffer.from(message))).toBe(true);
    const restored = new Driver(Broker.restore(expected));
    restored.index = d.index;
    expect(restored.publish("", "q", "x", { producerId: "p1", sequence: 600 }).result).toMatchObject({ ok: true, duplicate: true, routedQueues: ["q"] });
    expect(restored.publish("", "q", "x", { producerId: "p3", sequence: 1999 }).result).toMatchObject({ ok: true, duplicate: true });
    expect(restored.publish("", "nowhere", "y", { producerId: "p4", sequence: 7 }).result).toMatchObject({ ok: true, duplicate: true, routedQueues: [] });
    expect(d.publish("", "q", "x", { producerId: "p1", sequence: 600 }).result).toMatchObject({ ok: false });
  });

  it("names a piece format version it cannot read", () => {
    const bytes = Buffer.from(busyBroker().broker.snapshot());
    bytes[1] = 9;
    expect(() => Broker.restore(bytes)).toThrow(/version 9/);
  });
});
