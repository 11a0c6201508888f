import { describe, expect, it } from "vitest";
import { bodies, Driver, deliveries, ExchangeType, Overflow, routed, text } from "./broker-driver.ts";

function withDlx(d: Driver) {
  d.exchange("dlx", ExchangeType.EXCHANGE_TYPE_FANOUT);
  d.queue("dead");
  d.bind("dlx", "dead");
}

function getAll(d: Driver, queue: string) {
  const out = [];
  for (;;) {
    const g = d.ok({ get: { queue, noAck: true } });
    if (g.result.kind !== "get" || g.result.empty) return out;
    out.push(g.result.message);
  }
}

describe("queues", () => {
  it("redeclare with the same arguments is a no-op that reports counts; different arguments fail naming the argument", () => {
    const d = new Driver();
    d.queue("q", { maxLength: 5 });
    d.publish("", "q");
    expect(d.queue("q", { maxLength: 5 }).result).toEqual({ ok: true, kind: "declareQueue", queue: "q", messageCount: 1, consumerCount: 0 });
    const out = d.run({ declareQueue: { name: "q", arguments: { maxLength: 6 } } });
    expect(out.result).toEqual({ ok: false, error: { code: "PRECONDITION_FAILED", message: `inequivalent arg 'x-max-length' for queue "q"` } });
    expect(d.run({ declareQueue: { name: "nope", passive: true } }).result).toMatchObject({ ok: false, error: { code: "NOT_FOUND" } });
  });

  it("server-named queues get deterministic amq.gen names", () => {
    const d = new Driver();
    expect(d.ok({ declareQueue: {} }).result).toMatchObject({ queue: "amq.gen-1" });
    expect(d.ok({ declareQueue: {} }).result).toMatchObject({ queue: "amq.gen-2" });
  });

  it("x-message-ttl expires messages and dead-letters them with reason expired and x-death", () => {
    const d = new Driver();
    withDlx(d);
    d.queue("q", { messageTtlMs: 1000, deadLetterExchange: "dlx" });
    d.publish("", "q", "old");
    d.tick(1500);
    d.publish("", "q", "new");
    d.tick(2001);
    expect(d.broker.queueInfo("q")?.messagesReady).toBe(1);
    const [dead] = getAll(d, "dead");
    expect(text(dead ?? new Uint8Array())).toBe("old");
    expect(dead?.properties.deaths).toEqual([
      { queue: "q", reason: "expired", count: 1, exchange: "", routingKeys: ["q"], timeMs: 2001, originalExpiration: "" },
    ]);
    expect(dead?.properties.headers).toContainEqual({ key: "x-first-death-reason", value: { stringValue: "expired" } });
    expect(dead?.exchange).toBe("dlx");
  });

  it("per-message expiration takes effect when the message reaches the head", () => {
    const d = new Driver();
    d.queue("q");
    d.publish("", "q", "long", { properties: { expiration: "10000" } });
    d.publish("", "q", "short", { properties: { expiration: "10" } });
    d.tick(2000);
    expect(d.broker.queueInfo("q")?.messagesReady).toBe(2);
    const first = d.ok({ get: { queue: "q", noAck: true } });
    expect(first.result).toMatchObject({ empty: false });
    // "short" is now at the head and long expired: a consumer never sees it.
    expect(d.ok({ get: { queue: "q", noAck: true } }).result).toMatchObject({ empty: true });
  });

  it("x-expires deletes an unused queue; consumers keep it alive", () => {
    const d = new Driver();
    d.queue("idle", { expiresMs: 1000 });
    d.queue("busy", { expiresMs: 1000 });
    d.subscribe("c", "busy");
    d.tick(5000);
    expect(d.broker.queueInfo("idle")).toBeUndefined();
    expect(d.broker.queueInfo("busy")).toBeDefined();
  });

  it("x-max-length drop-head drops the oldest and dead-letters it with reason maxlen", () => {
    const d = new Driver();
    withDlx(d);
    d.queue("q", { maxLength: 2, deadLetterExchange: "dlx" });
    for (const b of ["1", "2", "3"]) d.publish("", "q", b);
    expect(getAll(d, "q").map((m) => text(m))).toEqual(["2", "3"]);
    const dead = getAll(d, "dead");
    expect(dead.map((m) => [text(m), m.properties.deaths?.[0]?.reason])).toEqual([["1", "maxlen"]]);
  });

  it("x-max-length-bytes with reject-publish refuses the publish there but not elsewhere", () => {
    const d = new Driver();
    d.queue("small", { maxLengthBytes: 4, overflow: Overflow.OVERFLOW_REJECT_PUBLISH });
    d.queue("big");
    d.bind("amq.fanout", "small");
    d.bind("amq.fanout", "big");
    expect(d.publish("amq.fanout", "", "abc").result).toMatchObject({ routedQueues: ["small", "big"] });
    const second = d.publish("amq.fanout", "", "de");
    expect(second.result).toMatchObject({ routedQueues: ["big"], rejectedBy: "small" });
    expect(d.broker.queueInfo("small")).toMatchObject({ messagesReady: 1, readyBytes: 3 });
  });

  it("x-delivery-limit dead-letters a message returned more often than the limit", () => {
    const d = new Driver();
    withDlx(d);
    d.queue("q", { deliveryLimit: 1, deadLetterExchange: "dlx" });
    d.publish("", "q", "poison");
    d.subscribe("c", "q", 1);
    const first = d.ok({ nack: { consumerId: "c", deliveryTag: 1, requeue: true } });
    expect(deliveries(first.effects).map((e) => e.deliveryCount)).toEqual([2]);
    const second = d.ok({ nack: { consumerId: "c", deliveryTag: 2, requeue: true } });
    expect(deliveries(second.effects)).toEqual([]);
    const dead = getAll(d, "dead");
    expect(dead.map((m) => m.properties.deaths?.[0]?.reason)).toEqual(["delivery_limit"]);
  });

  it("reject without requeue dead-letters with reason rejected; dead-letter routing key replaces the key", () => {
    const d = new Driver();
    d.queue("retry");
    d.queue("q", { deadLetterExchange: "", deadLetterRoutingKey: "retry" });
    d.publish("", "q", "m");
    d.subscribe("c", "q");
    d.ok({ reject: { consumerId: "c", deliveryTag: 1, requeue: false } });
    const [m] = getAll(d, "retry");
    expect(m?.routingKey).toBe("retry");
    expect(m?.properties.deaths?.[0]).toMatchObject({ queue: "q", reason: "rejected", routingKeys: ["q"] });
  });

  it("x-death counts repeat deaths in the same queue for the same reason; rejection cycles continue", () => {
    const d = new Driver();
    // q dead-letters back to itself through the default exchange: a cycle with a rejection in it.
    d.queue("q", { deadLetterExchange: "" });
    d.publish("", "q", "m");
    d.subscribe("c", "q", 1);
    d.ok({ nack: { consumerId: "c", deliveryTag: 1, requeue: false } });
    const out = d.ok({ nack: { consumerId: "c", deliveryTag: 2, requeue: false } });
    const [again] = deliveries(out.effects);
    expect(again?.message.properties.deaths).toEqual([expect.objectContaining({ queue: "q", reason: "rejected", count: 2 })]);
  });

  it("an automatic dead-letter cycle drops the message as RabbitMQ does", () => {
    const d = new Driver();
    d.queue("q", { messageTtlMs: 10, deadLetterExchange: "" });
    d.publish("", "q", "m");
    d.tick(5000);
    expect(d.broker.queueInfo("q")?.messagesReady).toBe(0);
  });

  it("auto-delete queue is deleted when its last consumer goes, not before it had one", () => {
    const d = new Driver();
    d.queue("q", {}, { autoDelete: true });
    d.tick(10_000);
    expect(d.broker.queueInfo("q")).toBeDefined();
    d.subscribe("a", "q");
    d.subscribe("b", "q");
    d.ok({ cancel: { consumerId: "a" } });
    expect(d.broker.queueInfo("q")).toBeDefined();
    d.ok({ cancel: { consumerId: "b" } });
    expect(d.broker.queueInfo("q")).toBeUndefined();
  });

  it("purge drops ready messages only; delete if_empty and if_unused refuse", () => {
    const d = new Driver();
    d.queue("q");
    for (const b of ["1", "2", "3"]) d.publish("", "q", b);
    d.subscribe("c", "q", 1);
    expect(d.run({ deleteQueue: { name: "q", ifUnused: true } }).result.ok).toBe(false);
    expect(d.run({ deleteQueue: { name: "q", ifEmpty: true } }).result.ok).toBe(false);
    expect(d.ok({ purgeQueue: { name: "q" } }).result).toMatchObject({ messageCount: 2 });
    expect(d.broker.queueInfo("q")).toMatchObject({ messagesReady: 0, messagesUnacknowledged: 1 });
  });

  it("limits give clear errors", () => {
    const d = new Driver(undefined, { maxQueues: 1, maxConsumersPerQueue: 1, maxMessageBytes: 3, maxBindings: 1 });
    d.queue("a");
    expect(d.run({ declareQueue: { name: "b" } }).result).toMatchObject({ ok: false, error: { code: "RESOURCE_EXHAUSTED" } });
    d.subscribe("c1", "a");
    expect(d.run({ subscribe: { consumerId: "c2", sessionId: "s", queue: "a" } }).result).toMatchObject({ ok: false, error: { code: "RESOURCE_EXHAUSTED" } });
    expect(d.publish("", "a", "toolong").result).toMatchObject({ ok: false, error: { code: "INVALID_ARGUMENT" } });
    d.bind("amq.direct", "a", "k");
    expect(d.run({ bind: { exchange: "amq.direct", queue: "a", routingKey: "k2" } }).result).toMatchObject({ ok: false, error: { code: "RESOURCE_EXHAUSTED" } });
  });

  it("log time never goes backwards", () => {
    const d = new Driver();
    d.queue("q", { messageTtlMs: 100 });
    d.publish("", "q");
    d.tick(5000);
    d.run({ tick: {} }, 10);
    expect(d.broker.lastTimestamp()).toBe(5000);
    expect(routed(d.publish("", "q"))).toEqual(["q"]);
    d.run({ tick: {} }, 20);
    expect(d.broker.queueInfo("q")?.messagesReady).toBe(1);
    expect(bodies(d.subscribe("c", "q").effects)).toEqual(["m"]);
  });
});
