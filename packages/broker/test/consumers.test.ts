import { describe, expect, it } from "vitest";
import { Broker, type Effect } from "../src/index.ts";
import { bodies, Driver, deliveries, text } from "./broker-driver.ts";

describe("consumers", () => {
  it("prefetch limits unacked deliveries; an ack frees credit for the next", () => {
    const d = new Driver();
    d.queue("q");
    for (const b of ["1", "2", "3"]) d.publish("", "q", b);
    const sub = d.subscribe("c1", "q", 2);
    expect(bodies(sub.effects)).toEqual(["1", "2"]);
    expect(deliveries(sub.effects).map((e) => e.deliveryTag)).toEqual([1, 2]);
    const ack = d.ok({ ack: { consumerId: "c1", deliveryTag: 1 } });
    expect(bodies(ack.effects)).toEqual(["3"]);
    expect(deliveries(ack.effects)[0]?.deliveryTag).toBe(3);
    expect(d.broker.queueInfo("q")).toMatchObject({ messagesReady: 0, messagesUnacknowledged: 2, consumers: 1 });
  });

  it("round-robins among consumers with credit", () => {
    const d = new Driver();
    d.queue("q");
    d.subscribe("a", "q", 1);
    d.subscribe("b", "q", 0);
    const out = [1, 2, 3, 4].map((i) => deliveries(d.publish("", "q", String(i)).effects)[0]?.consumer.id);
    // a has one credit: after its first message every later one goes to b.
    expect(out).toEqual(["a", "b", "b", "b"]);
  });

  it("ack multiple settles every tag up to the one named; unknown tags are a clear error", () => {
    const d = new Driver();
    d.queue("q");
    d.subscribe("c1", "q");
    for (const b of ["1", "2", "3"]) d.publish("", "q", b);
    const ack = d.ok({ ack: { consumerId: "c1", deliveryTag: 2, multiple: true } });
    expect(ack.result).toMatchObject({ kind: "ack", settled: 2 });
    const stale = d.run({ ack: { consumerId: "c1", deliveryTag: 2 } });
    expect(stale.result).toEqual({ ok: false, error: { code: "PRECONDITION_FAILED", message: "unknown delivery tag 2 on consumer c1" } });
    expect(d.run({ ack: { consumerId: "c1", deliveryTag: 42 } }).result).toMatchObject({
      ok: false,
      error: { message: "unknown delivery tag 42 on consumer c1" },
    });
    expect(d.run({ ack: { consumerId: "ghost", deliveryTag: 1 } }).result).toMatchObject({ ok: false, error: { code: "NOT_FOUND" } });
  });

  it("ack_tags settles each named tag as a single ack would, lists the tags it does not hold, and frees credit once", () => {
    const d = new Driver();
    d.upgrade();
    d.queue("q");
    for (const b of ["1", "2", "3", "4", "5", "6"]) d.publish("", "q", b);
    d.subscribe("c1", "q", 4);
    const out = d.ok({ ackTags: { consumerId: "c1", deliveryTags: [3, 1, 9, 3] } });
    expect(out.result).toEqual({ ok: true, kind: "ackTags", settled: 2, unknown: [9, 3] });
    // Two slots freed in one apply: the next two messages go out in it.
    expect(bodies(out.effects)).toEqual(["5", "6"]);
    expect(d.broker.queueInfo("q")).toMatchObject({ messagesReady: 0, messagesUnacknowledged: 4 });
    // Tag 2 is still held: a multiple ack of 4 settles 2 and 4 only.
    expect(d.ok({ ack: { consumerId: "c1", deliveryTag: 4, multiple: true } }).result).toMatchObject({ settled: 2 });
    expect(d.run({ ackTags: { consumerId: "ghost", deliveryTags: [1] } }).result).toMatchObject({ ok: false, error: { code: "NOT_FOUND" } });
  });

  it("ack_tags is refused while an older state-machine version is in force, and changes nothing", () => {
    const d = new Driver();
    d.upgrade(3);
    d.queue("q");
    d.publish("", "q", "1");
    d.subscribe("c1", "q");
    const out = d.run({ ackTags: { consumerId: "c1", deliveryTags: [1] } });
    expect(out.result).toMatchObject({ ok: false, error: { code: "PRECONDITION_FAILED", message: expect.stringContaining("ack_tags needs state-machine version 4") } });
    expect(d.broker.queueInfo("q")).toMatchObject({ messagesUnacknowledged: 1 });
  });

  it("nack with requeue puts messages back at their original place, redelivered, count kept", () => {
    const d = new Driver();
    d.queue("q");
    for (const b of ["1", "2", "3", "4"]) d.publish("", "q", b);
    d.subscribe("c1", "q", 3);
    d.ok({ setPrefetch: { consumerId: "c1", prefetch: 3 } });
    // Requeue 2 and 1 (in that order): they must come back as 1, 2, before 4.
    d.ok({ cancel: { consumerId: "c1" } });
    d.ok({ nack: { consumerId: "c1", deliveryTag: 2, requeue: true } });
    d.ok({ reject: { consumerId: "c1", deliveryTag: 1, requeue: true } });
    const again = d.subscribe("c2", "q", 10);
    const ds = deliveries(again.effects);
    expect(ds.map((x) => text(x.message))).toEqual(["1", "2", "4"]);
    expect(ds.map((x) => [x.redelivered, x.deliveryCount])).toEqual([
      [true, 2],
      [true, 2],
      [false, 1],
    ]);
  });

  it("ConsumerDown requeues everything it held to the head", () => {
    const d = new Driver();
    d.queue("q");
    for (const b of ["1", "2", "3"]) d.publish("", "q", b);
    d.subscribe("c1", "q", 2);
    const down = d.ok({ consumerDown: { consumerId: "c1" } });
    expect(down.result).toMatchObject({ requeued: 2 });
    expect(d.broker.queueInfo("q")).toMatchObject({ messagesReady: 3, messagesUnacknowledged: 0, consumers: 0 });
    expect(bodies(d.subscribe("c2", "q").effects)).toEqual(["1", "2", "3"]);
  });

  it("single active consumer: only the first receives, the next takes over when it goes", () => {
    const d = new Driver();
    d.queue("q", { singleActiveConsumer: true });
    d.subscribe("a", "q", 1);
    d.subscribe("b", "q", 10);
    const p = [1, 2, 3].map((i) => d.publish("", "q", String(i)));
    expect(p.flatMap((x) => deliveries(x.effects).map((e) => e.consumer.id))).toEqual(["a"]);
    const down = d.ok({ consumerDown: { consumerId: "a" } });
    expect(deliveries(down.effects).map((e) => [e.consumer.id, text(e.message)])).toEqual([
      ["b", "1"],
      ["b", "2"],
      ["b", "3"],
    ]);
  });

  it("exclusive consumer refuses others; no_ack consumers settle on delivery", () => {
    const d = new Driver();
    d.queue("q");
    d.subscribe("x", "q", 0, { exclusive: true, noAck: true });
    expect(d.run({ subscribe: { consumerId: "y", sessionId: "s", queue: "q" } }).result.ok).toBe(false);
    d.publish("", "q", "1");
    expect(d.broker.queueInfo("q")).toMatchObject({ messagesReady: 0, messagesUnacknowledged: 0 });
    expect(d.run({ subscribe: { consumerId: "x", sessionId: "s", queue: "q" } }).result).toMatchObject({
      ok: false,
      error: { code: "PRECONDITION_FAILED" },
    });
  });

  it("basic.get: no_ack takes the message; tracked gets settle under the session and requeue on SessionDown", () => {
    const d = new Driver();
    d.queue("q");
    for (const b of ["1", "2", "3"]) d.publish("", "q", b);
    const g1 = d.ok({ get: { queue: "q", noAck: true } });
    expect(g1.result).toMatchObject({ kind: "get", empty: false, deliveryTag: 0, messageCount: 2 });
    const g2 = d.ok({ get: { queue: "q", sessionId: "s1" } });
    const g3 = d.ok({ get: { queue: "q", sessionId: "s1" } });
    if (g2.result.kind !== "get" || g2.result.empty || g3.result.kind !== "get" || g3.result.empty) throw new Error("expected messages");
    d.ok({ ack: { sessionId: "s1", deliveryTag: g2.result.deliveryTag } });
    expect(d.broker.queueInfo("q")).toMatchObject({ messagesReady: 0, messagesUnacknowledged: 1 });
    d.ok({ sessionDown: { sessionId: "s1" } });
    expect(d.broker.queueInfo("q")).toMatchObject({ messagesReady: 1, messagesUnacknowledged: 0 });
    const again = d.ok({ get: { queue: "q", noAck: true } });
    expect(again.result).toMatchObject({ empty: false, redelivered: true, deliveryCount: 2 });
    expect(d.ok({ get: { queue: "q", noAck: true } }).result).toEqual({ ok: true, kind: "get", empty: true });
  });

  it("SessionDown downs the session's consumers and deletes its exclusive queues", () => {
    const d = new Driver();
    d.queue("shared");
    d.queue("mine", {}, { exclusive: true, ownerSessionId: "s1" });
    expect(d.run({ subscribe: { consumerId: "other", sessionId: "s2", queue: "mine" } }).result.ok).toBe(false);
    d.publish("", "shared", "1");
    d.subscribe("c1", "shared");
    d.subscribe("c2", "mine");
    expect(d.broker.consumersOfSession("s1")).toEqual(["c1", "c2"]);
    const out = d.ok({ sessionDown: { sessionId: "s1" } });
    expect(out.result).toMatchObject({ consumers: ["c1", "c2"], deletedQueues: ["mine"] });
    // The session's stream is gone: its consumers went down before their queue, nobody to tell.
    expect(out.effects).toEqual([]);
    expect(d.broker.queueInfo("shared")).toMatchObject({ messagesReady: 1, consumers: 0 });
    expect(d.broker.consumersOfSession("s1")).toEqual([]);
  });

  it("deleting a queue cancels each of its consumers, naming its session, its tag and the queue", () => {
    const d = new Driver();
    d.queue("q");
    d.queue("other");
    d.publish("", "q", "held");
    d.ok({ subscribe: { consumerId: "s1/early", sessionId: "s1", consumerTag: "early", queue: "q", prefetch: 1 } });
    d.ok({ cancel: { consumerId: "s1/early" } });
    d.ok({ subscribe: { consumerId: "s1/a", sessionId: "s1", consumerTag: "a", queue: "q" } });
    d.ok({ subscribe: { consumerId: "s2/b", sessionId: "s2", consumerTag: "b", queue: "q", noAck: true } });
    d.ok({ subscribe: { consumerId: "s2/elsewhere", sessionId: "s2", consumerTag: "elsewhere", queue: "other" } });
    const out = d.ok({ deleteQueue: { name: "q" } });
    // "early" cancelled itself (it only still held a message): the broker cancels no one twice.
    expect(out.effects).toEqual([
      { kind: "consumerCancelled", consumer: { id: "s1/a", sessionId: "s1", consumerTag: "a" }, reason: "queueDeleted", queue: "q" },
      { kind: "consumerCancelled", consumer: { id: "s2/b", sessionId: "s2", consumerTag: "b" }, reason: "queueDeleted", queue: "q" },
    ]);
    expect(d.run({ ack: { consumerId: "s1/a", deliveryTag: 1 } }).result.ok).toBe(false);
    expect(d.run({ ack: { consumerId: "s1/early", deliveryTag: 1 } }).result.ok).toBe(false);
    expect(d.broker.consumersOfSession("s2")).toEqual(["s2/elsewhere"]);
  });

  it("queues deleted for being unused or auto-delete had no consumers: no effects", () => {
    const d = new Driver();
    d.queue("idle", { expiresMs: 1000 });
    d.queue("auto", {}, { autoDelete: true });
    d.subscribe("c", "auto");
    const cancel = d.ok({ cancel: { consumerId: "c" } });
    expect(d.broker.queueInfo("auto")).toBeUndefined();
    expect(cancel.effects).toEqual([]);
    const tick = d.tick(5000);
    expect(d.broker.queueInfo("idle")).toBeUndefined();
    expect(tick.effects).toEqual([]);
  });

  it("a delivery names its consumer by the session and tag of its Subscribe, after a restore too", () => {
    const d = new Driver();
    d.queue("q");
    d.ok({ subscribe: { consumerId: "9.boot-3/orders", sessionId: "9.boot-3", consumerTag: "orders", queue: "q" } });
    const consumer = { id: "9.boot-3/orders", sessionId: "9.boot-3", consumerTag: "orders" };
    expect(d.publish("", "q", "1").effects).toEqual([
      expect.objectContaining({ kind: "deliver", consumer, deliveryTag: 1, queue: "q" }),
    ]);
    const restored = new Driver(Broker.restore(d.broker.snapshot()));
    expect(restored.publish("", "q", "2").effects).toEqual([expect.objectContaining({ kind: "deliver", consumer, deliveryTag: 2 })]);
  });
});

describe("no_ack consumers get a bounded share of each apply", () => {
  const limits = { maxNoAckDeliveriesPerApply: 3 };
  const fast = { id: "s1/fast", sessionId: "s1", consumerTag: "fast" };
  const subscribeFast = (d: Driver) => d.ok({ subscribe: { consumerId: fast.id, sessionId: fast.sessionId, consumerTag: fast.consumerTag, queue: "q", noAck: true } });

  function filled(n: number): Driver {
    const d = new Driver(undefined, limits);
    d.queue("q");
    for (let i = 1; i <= n; i++) d.publish("", "q", String(i));
    return d;
  }

  it("delivers at most the share per apply, says so, and goes on with any later command", () => {
    const d = filled(8);
    const first = subscribeFast(d);
    expect(bodies(first.effects)).toEqual(["1", "2", "3"]);
    expect(first.effects.at(-1)).toEqual({ kind: "deliveryPaused", consumer: fast, queue: "q" });
    expect(d.broker.queueInfo("q")).toMatchObject({ messagesReady: 5, messagesUnacknowledged: 0 });
    const tick = d.tick(1_001);
    expect(bodies(tick.effects)).toEqual(["4", "5", "6"]);
    expect(tick.effects.filter((e) => e.kind === "deliveryPaused")).toHaveLength(1);
    // Not a Tick, and about another queue: the backlog still moves, and is done.
    const unrelated = d.queue("elsewhere");
    expect(bodies(unrelated.effects)).toEqual(["7", "8"]);
    expect(unrelated.effects.filter((e) => e.kind === "deliveryPaused")).toEqual([]);
    expect(d.broker.queueInfo("q")).toMatchObject({ messagesReady: 0 });
    expect(d.tick(1_002).effects).toEqual([]);
  });

  it("a publish to a drained queue delivers at once, with no pause", () => {
    const d = filled(0);
    subscribeFast(d);
    const out = d.publish("", "q", "1");
    expect(out.effects).toEqual([expect.objectContaining({ kind: "deliver", consumer: fast })]);
  });

  it("the share is per consumer, and consumers with acks keep to their prefetch credit", () => {
    const d = filled(12);
    const by = (effects: Effect[]) => deliveries(effects).map((e) => e.consumer.consumerTag);
    const paused = (effects: Effect[]) => effects.flatMap((e) => (e.kind === "deliveryPaused" ? [e.consumer.consumerTag] : []));
    expect(by(d.ok({ subscribe: { consumerId: "s2/slow", sessionId: "s2", consumerTag: "slow", queue: "q", prefetch: 2 } }).effects)).toEqual(["slow", "slow"]);
    const other = d.ok({ subscribe: { consumerId: "s3/other", sessionId: "s3", consumerTag: "other", queue: "q", noAck: true } });
    expect(by(other.effects)).toEqual(["other", "other", "other"]);
    expect(paused(other.effects)).toEqual(["other"]);
    const sub = subscribeFast(d);
    expect(by(sub.effects).sort()).toEqual(["fast", "fast", "fast", "other", "other", "other"]);
    expect(paused(sub.effects).sort()).toEqual(["fast", "other"]);
    expect(d.broker.queueInfo("q")).toMatchObject({ messagesReady: 1, messagesUnacknowledged: 2 });
  });

  it("a snapshot taken with a backlog restores it: both go on identically", () => {
    const d = filled(8);
    subscribeFast(d);
    const snap = d.broker.snapshot();
    const restored = Broker.restore(snap, limits);
    expect(Buffer.from(restored.snapshot()).equals(Buffer.from(snap))).toBe(true);
    const a = d.broker.apply({ tick: {} }, { index: 100, timestamp: 2_000 });
    const b = restored.apply({ tick: {} }, { index: 100, timestamp: 2_000 });
    // Messages come back decoded from the snapshot: compare what they say, not how they are held.
    const said = (effects: Effect[]) =>
      effects.map((e) => (e.kind === "deliver" ? { consumer: e.consumer, tag: e.deliveryTag, body: text(e.message), count: e.deliveryCount } : e));
    expect(bodies(b.effects)).toEqual(["4", "5", "6"]);
    expect(said(b.effects)).toEqual(said(a.effects));
    expect(b.result).toEqual(a.result);
    expect(Buffer.from(restored.snapshot()).equals(Buffer.from(d.broker.snapshot()))).toBe(true);
  });

  it("deleting a queue with a backlog drops the backlog with it", () => {
    const d = filled(8);
    subscribeFast(d);
    const out = d.ok({ deleteQueue: { name: "q" } });
    expect(out.effects).toEqual([{ kind: "consumerCancelled", consumer: fast, reason: "queueDeleted", queue: "q" }]);
    d.queue("q");
    expect(d.tick(2_000).effects).toEqual([]);
  });
});

describe("idempotent publish", () => {
  it("a duplicate inside the window answers the original result and enqueues nothing", () => {
    const d = new Driver();
    d.queue("q");
    const first = d.publish("", "q", "a", { producerId: "p1", sequence: 1 });
    const dup = d.publish("", "q", "a", { producerId: "p1", sequence: 1 });
    expect(first.result).toMatchObject({ routedQueues: ["q"], duplicate: false });
    expect(dup.result).toMatchObject({ routedQueues: ["q"], duplicate: true });
    expect(d.broker.queueInfo("q")?.messagesReady).toBe(1);
  });

  it("the window is bounded and idle producers are forgotten", () => {
    const d = new Driver(undefined, { dedupWindow: 2, producerIdleMs: 1000 });
    d.queue("q");
    for (const seq of [1, 2, 3]) d.publish("", "q", "a", { producerId: "p", sequence: seq });
    expect(d.publish("", "q", "a", { producerId: "p", sequence: 1 }).result).toMatchObject({ ok: false, error: { code: "OUTCOME_UNKNOWN" } });
    expect(d.publish("", "q", "a", { producerId: "p", sequence: 3 }).result).toMatchObject({ duplicate: true });
    d.tick(d.now + 5000);
    // Unmarked, a resend of a forgotten producer is taken as a new message (the mark says otherwise).
    expect(d.publish("", "q", "a", { producerId: "p", sequence: 3 }).result).toMatchObject({ duplicate: false });
    expect(d.broker.queueInfo("q")?.messagesReady).toBe(4);
  });

  const unknown = { ok: false, error: { code: "OUTCOME_UNKNOWN" } };

  it("a retry from a producer forgotten by idle expiry answers an unknown outcome and enqueues nothing", () => {
    const d = new Driver(undefined, { producerIdleMs: 1000 });
    d.upgrade();
    d.queue("q");
    d.publish("", "q", "a", { producerId: "p", sequence: 1 });
    expect(d.publish("", "q", "a", { producerId: "p", sequence: 1, retry: true }).result).toMatchObject({ duplicate: true });
    d.tick(d.now + 5000);
    const retry = d.publish("", "q", "a", { producerId: "p", sequence: 1, retry: true }).result;
    expect(retry).toMatchObject(unknown);
    expect(retry.ok ? "" : retry.error.message).toMatch(/^outcome unknown to the broker: retry of sequence 1: the broker has no record of producer "p" \(its state expired after 1000 ms/);
    expect(d.broker.queueInfo("q")?.messagesReady).toBe(1);
    // Nothing was recorded by the refused retry: the producer's next new message starts its record.
    expect(d.publish("", "q", "a", { producerId: "p", sequence: 2 }).result).toMatchObject({ ok: true, duplicate: false });
    expect(d.publish("", "q", "a", { producerId: "p", sequence: 1, retry: true }).result).toMatchObject(unknown);
    expect(d.publish("", "q", "a", { producerId: "p", sequence: 2, retry: true }).result).toMatchObject({ duplicate: true });
    expect(d.broker.queueInfo("q")?.messagesReady).toBe(2);
  });

  it("a retry from a producer evicted past max_producers answers an unknown outcome", () => {
    const d = new Driver(undefined, { maxProducers: 2 });
    d.upgrade();
    d.queue("q");
    for (const p of ["a", "b", "c"]) d.publish("", "q", "m", { producerId: p, sequence: 7 });
    expect(d.publish("", "q", "m", { producerId: "a", sequence: 7, retry: true }).result).toMatchObject(unknown);
    expect(d.publish("", "q", "m", { producerId: "b", sequence: 7, retry: true }).result).toMatchObject({ duplicate: true });
    expect(d.publish("", "q", "m", { producerId: "c", sequence: 7, retry: true }).result).toMatchObject({ duplicate: true });
    expect(d.broker.queueInfo("q")?.messagesReady).toBe(3);
  });

  it("a retry below what was recorded since the producer was forgotten is unknown; a new lower sequence is not", () => {
    const d = new Driver(undefined, { producerIdleMs: 1000 });
    d.upgrade();
    d.queue("q");
    for (const seq of [1, 2, 3]) d.publish("", "q", "a", { producerId: "p", sequence: seq });
    d.tick(d.now + 5000);
    d.publish("", "q", "a", { producerId: "p", sequence: 5 });
    // Sent before the producer was forgotten, retried after: it may be in the queue already.
    expect(d.publish("", "q", "a", { producerId: "p", sequence: 3, retry: true }).result).toMatchObject(unknown);
    // Concurrent publishes may be applied out of order: an unmarked lower sequence is new.
    expect(d.publish("", "q", "a", { producerId: "p", sequence: 4 }).result).toMatchObject({ ok: true, duplicate: false });
    expect(d.publish("", "q", "a", { producerId: "p", sequence: 4, retry: true }).result).toMatchObject({ duplicate: true });
    expect(d.publish("", "q", "a", { producerId: "p", sequence: 3, retry: true }).result).toMatchObject(unknown);
    // A retry above the record that was never applied is new.
    expect(d.publish("", "q", "a", { producerId: "p", sequence: 6, retry: true }).result).toMatchObject({ ok: true, duplicate: false });
    expect(d.broker.queueInfo("q")?.messagesReady).toBe(6);
  });

  it("under state-machine version 4 the retry mark changes nothing", () => {
    const d = new Driver(undefined, { producerIdleMs: 1000 });
    d.upgrade(4);
    d.queue("q");
    d.publish("", "q", "a", { producerId: "p", sequence: 1 });
    d.tick(d.now + 5000);
    expect(d.publish("", "q", "a", { producerId: "p", sequence: 1, retry: true }).result).toMatchObject({ ok: true, duplicate: false });
    expect(d.broker.queueInfo("q")?.messagesReady).toBe(2);
  });

  it("moving to version 5 starts each producer's record at the lowest sequence of its window, on every node alike", () => {
    // Code that did not track the record (a node of version 4) knows only the window, {5, 8} here:
    // so the record starts there for every node, not at 3, which this node saw.
    const d = new Driver(undefined, { dedupWindow: 2, producerIdleMs: 60_000 });
    d.upgrade(4);
    d.queue("q");
    for (const seq of [3, 5, 8]) d.publish("", "q", "a", { producerId: "p", sequence: seq });
    const restored = new Driver(Broker.restore(d.broker.snapshot()));
    restored.index = d.index;
    for (const x of [d, restored]) {
      x.upgrade(5);
      expect(x.publish("", "q", "a", { producerId: "p", sequence: 4, retry: true }).result).toMatchObject(unknown);
      expect(x.publish("", "q", "a", { producerId: "p", sequence: 9, retry: true }).result).toMatchObject({ ok: true, duplicate: false });
    }
    expect(Buffer.from(restored.broker.snapshot()).equals(Buffer.from(d.broker.snapshot()))).toBe(true);
  });

  it("a snapshot carries each producer's record", () => {
    const d = new Driver(undefined, { producerIdleMs: 1000 });
    d.upgrade();
    d.queue("q");
    d.publish("", "q", "a", { producerId: "p", sequence: 1 });
    d.tick(d.now + 5000);
    d.publish("", "q", "a", { producerId: "p", sequence: 9 });
    const restored = new Driver(Broker.restore(d.broker.snapshot()));
    restored.index = d.index;
    restored.now = d.now;
    expect(restored.publish("", "q", "a", { producerId: "p", sequence: 1, retry: true }).result).toMatchObject(unknown);
    expect(restored.publish("", "q", "a", { producerId: "p", sequence: 9, retry: true }).result).toMatchObject({ duplicate: true });
  });
});
