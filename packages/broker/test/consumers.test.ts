import { describe, expect, it } from "vitest";
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
    const out = [1, 2, 3, 4].map((i) => deliveries(d.publish("", "q", String(i)).effects)[0]?.consumerId);
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
    expect(ds.map((x) => text(x.message.body))).toEqual(["1", "2", "4"]);
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
    expect(p.flatMap((x) => deliveries(x.effects).map((e) => e.consumerId))).toEqual(["a"]);
    const down = d.ok({ consumerDown: { consumerId: "a" } });
    expect(deliveries(down.effects).map((e) => [e.consumerId, text(e.message.body)])).toEqual([
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
    expect(out.effects).toContainEqual({ kind: "queueDeleted", queue: "mine" });
    expect(d.broker.queueInfo("shared")).toMatchObject({ messagesReady: 1, consumers: 0 });
    expect(d.broker.consumersOfSession("s1")).toEqual([]);
  });

  it("deleting a queue cancels its consumers with an effect", () => {
    const d = new Driver();
    d.queue("q");
    d.subscribe("c1", "q");
    const out = d.ok({ deleteQueue: { name: "q" } });
    expect(out.effects).toEqual([
      { kind: "consumerCancelled", consumerId: "c1", reason: "queue deleted" },
      { kind: "queueDeleted", queue: "q" },
    ]);
    expect(d.run({ ack: { consumerId: "c1", deliveryTag: 1 } }).result.ok).toBe(false);
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
    expect(d.publish("", "q", "a", { producerId: "p", sequence: 1 }).result).toMatchObject({ ok: false, error: { code: "PRECONDITION_FAILED" } });
    expect(d.publish("", "q", "a", { producerId: "p", sequence: 3 }).result).toMatchObject({ duplicate: true });
    d.tick(d.now + 5000);
    expect(d.publish("", "q", "a", { producerId: "p", sequence: 3 }).result).toMatchObject({ duplicate: false });
    expect(d.broker.queueInfo("q")?.messagesReady).toBe(4);
  });
});
