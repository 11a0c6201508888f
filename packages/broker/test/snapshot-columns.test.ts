// From state-machine version 7, a snapshot writes the ready messages never taken as columns
// (SnapshotReadyColumns): a backlog of messages published one after another is a few bytes,
// whatever its depth, and restores message for message. Below version 7 it writes runs only,
// which older code reads whole.
import { raftmq } from "@raftmq/proto";
import { describe, expect, it } from "vitest";
import { Broker, BrokerInvariantError } from "../src/index.ts";
import { READY_COLUMNS_VERSION } from "../src/snapshot.ts";
import { bodies, Driver, deliveries } from "./broker-driver.ts";
import { decodePieces, encodePieces } from "./snapshot-bytes.ts";

const pb = raftmq.v1;

function counts(bytes: Uint8Array): { inColumns: number; inRuns: number } {
  let inColumns = 0;
  let inRuns = 0;
  for (const p of decodePieces(bytes)) {
    for (const c of p.readyColumns) inColumns += c.count ?? 0;
    for (const r of p.readyRuns) inRuns += r.ready?.length ?? 0;
  }
  return { inColumns, inRuns };
}

/** Queue "deep" with `n` messages published one after another, at `version`. */
function backlog(n: number, version: number): Driver {
  const d = new Driver();
  d.upgrade(version);
  d.queue("deep");
  for (let i = 0; i < n; i++) d.publish("", "deep", `order-${i}`);
  return d;
}

describe("ready messages as columns", () => {
  it("writes a backlog published one after another in a few bytes, and restores it message for message", () => {
    const n = 20_000;
    const d = backlog(n, READY_COLUMNS_VERSION);
    const snap = d.broker.snapshot();
    expect(counts(snap)).toEqual({ inColumns: n, inRuns: 0 });
    // Below version 7 the same messages take about 15 bytes each.
    const rows = backlog(n, READY_COLUMNS_VERSION - 1).broker.snapshot();
    expect(counts(rows)).toEqual({ inColumns: 0, inRuns: n });
    expect(rows.length).toBeGreaterThan(n * 10);
    expect(snap.length).toBeLessThan(2_000);

    const restored = new Driver(Broker.restore(snap));
    restored.index = d.index;
    expect(Buffer.from(restored.broker.snapshot()).equals(Buffer.from(snap))).toBe(true);
    expect(restored.broker.queueInfo("deep")).toEqual(d.broker.queueInfo("deep"));
    // One taken by a get on each, then the next ones by a consumer: the same ids and bodies.
    for (const x of [restored, d]) {
      const got = x.ok({ get: { queue: "deep", sessionId: "s1", noAck: true } }).result;
      expect(got).toMatchObject({ ok: true });
    }
    const fromRestored = restored.subscribe("c", "deep", 1_000).effects;
    const fromOriginal = d.subscribe("c", "deep", 1_000).effects;
    expect(deliveries(fromRestored).length).toBeGreaterThan(0);
    expect(bodies(fromRestored)).toEqual(bodies(fromOriginal));
    expect(deliveries(fromRestored).map((x) => x.message.bodyKey)).toEqual(deliveries(fromOriginal).map((x) => x.message.bodyKey));
    expect(bodies(fromRestored)[0]).toBe("order-1");
  });

  it("writes alike messages a chunk at a time: the same bytes wherever the queue's chunks begin", () => {
    // Runs of alike messages broken by one that expires, one through another exchange (another
    // head), a larger one and an empty one (no body key); the first 1,234 are taken, so the
    // queue's chunks begin mid-run, and a restored queue's chunks begin elsewhere.
    const d = new Driver();
    d.upgrade(READY_COLUMNS_VERSION);
    d.queue("deep");
    d.bind("amq.direct", "deep", "deep");
    const n = 40_000;
    for (let i = 0; i < n; i++) {
      if (i === 9_000) d.publish("", "deep", "x".repeat(50), { properties: { expiration: "600000" } });
      else if (i === 17_000) d.publish("amq.direct", "deep", "x".repeat(50));
      else if (i === 20_000) d.publish("", "deep", "x".repeat(51));
      else if (i === 30_000) d.publish("", "deep", "");
      else d.publish("", "deep", "x".repeat(50));
    }
    for (let i = 0; i < 1_234; i++) d.ok({ get: { queue: "deep", noAck: true } });
    const snap = d.broker.snapshot();
    expect(counts(snap)).toEqual({ inColumns: n - 1_234, inRuns: 0 });
    expect(snap.length).toBeLessThan(2_000);
    const small = Buffer.concat([...d.broker.snapshotPieces(4096)]);
    expect(decodePieces(small).reduce((sum, p) => sum + p.readyColumns.length, 0)).toBeGreaterThan(5);
    const message = (x: ReturnType<typeof deliveries>[number]) => {
      const m = x.message as typeof x.message & { id: number; bodyKey: number; bodySize: number; expiresAt: number };
      return [m.id, m.bodyKey, m.bodySize, m.expiresAt, m.exchange];
    };
    const restored = [snap, small].map((bytes) => {
      const r = new Driver(Broker.restore(bytes));
      r.index = d.index;
      r.now = d.now;
      expect(Buffer.from(r.broker.snapshot()).equals(Buffer.from(snap))).toBe(true);
      return r;
    });
    // Everything delivered, in order (a bounded number per command: ticks deliver the rest).
    const all = (x: Driver) => {
      const out = deliveries(x.subscribe("c", "deep", 0, { noAck: true }).effects).map(message);
      for (let more = out.length; more > 0; ) {
        const next = deliveries(x.tick(x.now).effects).map(message);
        out.push(...next);
        more = next.length;
      }
      return out;
    };
    const original = all(d);
    expect(original.length).toBe(n - 1_234);
    expect(original.filter((m) => (m[3] as number) > 0).length).toBe(1);
    expect(new Set(original.map((m) => m[2])).size).toBe(3);
    for (const r of restored) expect(all(r)).toEqual(original);
  });

  it("writes returned messages as runs before the columns, across queues, expiries, sizes and pieces", () => {
    const d = new Driver();
    d.upgrade(READY_COLUMNS_VERSION);
    d.queue("a", { messageTtlMs: 60_000 });
    d.queue("b");
    d.bind("amq.fanout", "a");
    d.bind("amq.fanout", "b");
    for (let i = 0; i < 3_000; i++) {
      d.now += i % 7;
      d.publish("amq.fanout", "", "x".repeat(i % 300), i % 5 === 0 ? { properties: { messageId: `m${i}` } } : {});
    }
    // Ten of b's messages taken and put back: they restore with their delivery counts.
    const taken = deliveries(d.subscribe("c", "b", 10).effects);
    d.ok({ cancel: { consumerId: "c" } });
    for (const t of taken) d.ok({ nack: { consumerId: "c", deliveryTag: t.deliveryTag, requeue: true } });
    const snap = d.broker.snapshot();
    expect(counts(snap)).toEqual({ inColumns: 5_990, inRuns: 10 });
    // Small pieces cut the columns into many blocks; the bytes restore to the same state either way.
    const small = Buffer.concat([...d.broker.snapshotPieces(4096)]);
    expect(decodePieces(small).reduce((sum, p) => sum + p.readyColumns.length, 0)).toBeGreaterThan(20);
    for (const bytes of [snap, small]) {
      const restored = new Driver(Broker.restore(bytes));
      restored.index = d.index;
      restored.now = d.now;
      expect(Buffer.from(restored.broker.snapshot()).equals(Buffer.from(snap))).toBe(true);
      for (const q of ["a", "b"]) expect(restored.broker.queueInfo(q)).toEqual(d.broker.queueInfo(q));
      const again = deliveries(restored.subscribe("c2", "b", 20).effects);
      expect(again.slice(0, 10).map((x) => x.redelivered)).toEqual(new Array(10).fill(true));
      expect(again[10]?.redelivered).toBe(false);
    }
    // Expiry comes back: once a's TTL has passed, its messages are gone.
    const restored = new Driver(Broker.restore(snap));
    restored.index = d.index;
    restored.now = d.now + 60_001;
    restored.publish("", "b", "tick");
    expect(restored.broker.queueInfo("a")?.messagesReady).toBe(0);
  });

  it("writes a message whose numbers do not fit a column as a run's message, and reads both back", () => {
    // Built as a snapshot in the format before pieces, as no broker hands out such numbers in practice.
    const big = 2 ** 52 + 5;
    const legacy = pb.BrokerSnapshot.encode({
      machineVersion: READY_COLUMNS_VERSION,
      nextMessageId: big + 10,
      nextBodyKey: big + 10,
      messages: [{ exchange: "", routingKey: "q" }],
      queues: [{ name: "q", durable: true, ready: [{ id: 1, bodyKey: 1, bodySize: 3 }, { id: big, bodyKey: big, bodySize: 3 }, { id: 2, bodyKey: 2, bodySize: 3 }] }],
    }).finish();
    const restored = Broker.restore(legacy);
    const snap = restored.snapshot();
    expect(counts(snap)).toEqual({ inColumns: 2, inRuns: 1 });
    const ids = decodePieces(snap)
      .flatMap((p) => p.readyRuns)
      .flatMap((r) => r.ready ?? [])
      .map((m) => Number(m.id));
    expect(ids).toEqual([big]);
    const again = Broker.restore(snap);
    expect(Buffer.from(again.snapshot()).equals(Buffer.from(snap))).toBe(true);
    expect(again.queueInfo("q")?.messagesReady).toBe(3);
  });

  it("refuses columns that name a head, queue or body key the snapshot does not have", () => {
    const snap = Buffer.from(backlog(5, READY_COLUMNS_VERSION).broker.snapshot());
    const [first, second] = decodePieces(snap);
    if (first === undefined || second === undefined) throw new Error("two pieces expected");
    const rewrite = (edit: (c: raftmq.v1.SnapshotReadyColumns) => void): Uint8Array => {
      const copy = pb.BrokerSnapshot.decode(pb.BrokerSnapshot.encode(second).finish());
      edit(copy.readyColumns[0] as raftmq.v1.SnapshotReadyColumns);
      return encodePieces([first, copy]);
    };
    // Refs one apart from 0: the second message names head 1, which no piece holds.
    expect(() => Broker.restore(rewrite((c) => (c.messageRefs = Uint8Array.of(0, 1, 2, 4))))).toThrow(/message ref 1 is out of range/);
    expect(() => Broker.restore(rewrite((c) => (c.queue = 7)))).toThrow(/name queue 7 of 1/);
    expect(() => Broker.restore(rewrite((c) => (c.bodyKeys = Uint8Array.of(2 * 1000, 5))))).toThrow(BrokerInvariantError);
    expect(() => Broker.restore(rewrite((c) => (c.count = 6)))).toThrow(/holds 5 values, its block 6/);
    // The original still restores.
    expect(Broker.restore(snap).queueInfo("deep")?.messagesReady).toBe(5);
  });
});
