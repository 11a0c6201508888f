// A client that got outcome "unknown" sends the call again. broker.proto says, call by call,
// whether that is safe; these apply each command twice, as a resend whose first attempt was
// applied does, and check what the comments promise.
import { describe, expect, it } from "vitest";
import type { Broker, Command } from "../src/index.ts";
import { Driver, ExchangeType, outcomeOf } from "./broker-driver.ts";

/** What a resend could change: the topology and the queues' depths. */
function topology(b: Broker) {
  return { exchanges: b.listExchanges(), queues: b.listQueues(), bindings: b.listBindings() };
}

function driver(): Driver {
  const d = new Driver();
  d.exchange("ex", ExchangeType.EXCHANGE_TYPE_DIRECT, { durable: true });
  d.queue("q");
  d.bind("ex", "q", "k");
  d.publish("ex", "k");
  return d;
}

describe("sending a write again after its first attempt was applied", () => {
  // [call, what stands before the first attempt, the command sent twice, whether the first changes anything]
  const idempotent: [string, Command[], Command, boolean][] = [
    ["DeclareExchange", [], { declareExchange: { name: "ex", type: ExchangeType.EXCHANGE_TYPE_DIRECT, durable: true } }, false],
    ["DeclareExchange of a new one", [], { declareExchange: { name: "other", type: ExchangeType.EXCHANGE_TYPE_FANOUT } }, true],
    ["DeleteExchange", [{ declareExchange: { name: "other", type: ExchangeType.EXCHANGE_TYPE_FANOUT } }], { deleteExchange: { name: "other" } }, true],
    ["DeclareQueue with a name", [], { declareQueue: { name: "q" } }, false],
    ["Bind", [], { bind: { exchange: "ex", queue: "q", routingKey: "k2" } }, true],
    ["Unbind", [{ bind: { exchange: "ex", queue: "q", routingKey: "k2" } }], { unbind: { exchange: "ex", queue: "q", routingKey: "k2" } }, true],
  ];

  for (const [name, before, command, changes] of idempotent) {
    it(`${name}: the second answers OK and changes nothing`, () => {
      const d = driver();
      for (const c of before) d.ok(c);
      const initial = topology(d.broker);
      d.ok(command);
      const after = topology(d.broker);
      if (changes) expect(after).not.toEqual(initial);
      else expect(after).toEqual(initial);
      d.ok(command);
      expect(topology(d.broker)).toEqual(after);
    });
  }

  it("DeleteQueue: the second answers OK with message_count 0", () => {
    const d = driver();
    expect(d.ok({ deleteQueue: { name: "q" } }).result).toMatchObject({ messageCount: 1 });
    expect(d.ok({ deleteQueue: { name: "q" } }).result).toMatchObject({ messageCount: 0 });
    expect(d.broker.queueInfo("q")).toBeUndefined();
  });

  it("DeclareQueue without a name: the second makes a second queue", () => {
    const d = driver();
    const first = d.ok({ declareQueue: { name: "" } }).result;
    const second = d.ok({ declareQueue: { name: "" } }).result;
    expect(first).toMatchObject({ kind: "declareQueue" });
    expect(second).toMatchObject({ kind: "declareQueue" });
    if (first.kind !== "declareQueue" || second.kind !== "declareQueue") throw new Error("not a queue declaration");
    expect(second.queue).not.toBe(first.queue);
    expect(d.broker.listQueues().map((q) => q.name)).toEqual(expect.arrayContaining([first.queue, second.queue]));
  });

  it("PurgeQueue: the second also drops what was published in between", () => {
    const d = driver();
    expect(d.ok({ purgeQueue: { name: "q" } }).result).toMatchObject({ messageCount: 1 });
    d.publish("ex", "k");
    expect(d.ok({ purgeQueue: { name: "q" } }).result).toMatchObject({ messageCount: 1 });
  });

  it("Get: the second takes the next message", () => {
    const d = driver();
    d.publish("ex", "k", "second");
    expect(d.ok({ get: { queue: "q", noAck: true } }).result).toMatchObject({ kind: "get", empty: false });
    expect(d.ok({ get: { queue: "q", noAck: true } }).result).toMatchObject({ kind: "get", empty: false });
    expect(d.broker.queueInfo("q")?.messagesReady).toBe(0);
  });

  it("Unbind after the queue is gone answers NOT_FOUND", () => {
    const d = driver();
    d.ok({ deleteQueue: { name: "q" } });
    expect(outcomeOf(d.run({ unbind: { exchange: "ex", queue: "q", routingKey: "k" } }))).toBe("NOT_FOUND");
  });
});
