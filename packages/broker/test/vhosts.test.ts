// Virtual hosts, RabbitMQ's rules: each is a namespace of exchanges and queues with its own default
// and amq.* exchanges; routing, alternate and dead-letter exchanges stay inside it; deleting one
// takes its content, consumers (cancelled as by queue.delete) and permissions with it.
import { describe, expect, it } from "vitest";
import { Broker, type ConsumerCancelledEffect, DEFAULT_VHOST } from "../src/index.ts";
import { bodies, Driver, deliveries, ExchangeType, outcomeOf, routed } from "./broker-driver.ts";

function twoVhosts(limits?: ConstructorParameters<typeof Driver>[1]): Driver {
  const d = new Driver(undefined, limits);
  d.upgrade();
  d.ok({ addVhost: { name: "a" } });
  return d;
}

const builtinNames = ["", "amq.direct", "amq.fanout", "amq.topic", "amq.headers"];

describe("a new state has the default vhost", () => {
  it('holds "/" with the predeclared exchanges, and commands without a vhost use it', () => {
    const d = new Driver();
    expect(d.broker.vhosts()).toEqual([DEFAULT_VHOST]);
    expect(d.broker.hasVhost("/")).toBe(true);
    expect(d.broker.listExchanges("/").map((e) => e.name)).toEqual(builtinNames);
    d.queue("q");
    d.run({ declareQueue: { name: "r", vhost: "/" } });
    expect(d.broker.listQueues("/").map((q) => q.name)).toEqual(["q", "r"]);
    expect(d.broker.queueInfo("q")).toEqual(d.broker.queueInfo("q", "/"));
  });
});

describe("each vhost is its own namespace", () => {
  it("the same queue name lives in two vhosts, and the default exchange routes within the publisher's vhost", () => {
    const d = twoVhosts();
    d.queue("q");
    d.ok({ declareQueue: { name: "q", vhost: "a" } });
    expect(routed(d.run({ publish: { routingKey: "q", body: Buffer.from("to-a"), vhost: "a" } }))).toEqual(["q"]);
    expect(d.broker.queueInfo("q", "a")?.messagesReady).toBe(1);
    expect(d.broker.queueInfo("q")?.messagesReady).toBe(0);
    const got = d.ok({ get: { queue: "q", noAck: true, vhost: "a" } }).result;
    expect(got).toMatchObject({ kind: "get", empty: false });
    expect(d.ok({ get: { queue: "q", noAck: true } }).result).toMatchObject({ kind: "get", empty: true });
  });

  it("a queue of one vhost is not reachable by name from another", () => {
    const d = twoVhosts();
    d.ok({ declareQueue: { name: "only-a", vhost: "a" } });
    expect(routed(d.publish("", "only-a"))).toEqual([]);
    expect(outcomeOf(d.run({ subscribe: { consumerId: "c", sessionId: "s", queue: "only-a" } }))).toBe("NOT_FOUND");
    expect(outcomeOf(d.run({ purgeQueue: { name: "only-a" } }))).toBe("NOT_FOUND");
    expect(outcomeOf(d.run({ bind: { exchange: "amq.fanout", queue: "only-a" } }))).toBe("NOT_FOUND");
    expect(d.broker.queueInfo("only-a")).toBeUndefined();
    // queue.delete of a missing queue succeeds, and leaves the other vhost's queue alone.
    d.ok({ deleteQueue: { name: "only-a" } });
    expect(d.broker.queueInfo("only-a", "a")).toBeDefined();
  });

  it("every vhost has its own amq.* exchanges: bindings in one do not route in another", () => {
    const d = twoVhosts();
    expect(d.broker.listExchanges("a").map((e) => e.name)).toEqual(builtinNames);
    d.queue("q");
    d.ok({ declareQueue: { name: "q", vhost: "a" } });
    d.ok({ bind: { exchange: "amq.fanout", queue: "q", vhost: "a" } });
    expect(routed(d.publish("amq.fanout", ""))).toEqual([]);
    expect(routed(d.run({ publish: { exchange: "amq.fanout", vhost: "a" } }))).toEqual(["q"]);
    expect(d.broker.listBindings("a")).toEqual([{ exchange: "amq.fanout", queue: "q", destinationExchange: "", routingKey: "", arguments: [] }]);
    expect(d.broker.listBindings("/")).toEqual([]);
    expect(outcomeOf(d.run({ declareExchange: { name: "amq.custom", type: ExchangeType.EXCHANGE_TYPE_DIRECT, vhost: "a" } }))).toBe("PRECONDITION_FAILED");
  });

  it("exchange names are per vhost: the same name may have another type elsewhere", () => {
    const d = twoVhosts();
    d.exchange("x", ExchangeType.EXCHANGE_TYPE_FANOUT);
    d.ok({ declareExchange: { name: "x", type: ExchangeType.EXCHANGE_TYPE_TOPIC, vhost: "a" } });
    expect(d.broker.listExchanges("a").find((e) => e.name === "x")?.type).toBe("topic");
    expect(d.broker.listExchanges().find((e) => e.name === "x")?.type).toBe("fanout");
    d.ok({ deleteExchange: { name: "x", vhost: "a" } });
    expect(d.broker.listExchanges("a").some((e) => e.name === "x")).toBe(false);
    expect(d.broker.listExchanges().some((e) => e.name === "x")).toBe(true);
  });

  it("a binding needs the exchange and the queue in the same vhost", () => {
    const d = twoVhosts();
    d.exchange("x", ExchangeType.EXCHANGE_TYPE_FANOUT);
    d.ok({ declareQueue: { name: "q", vhost: "a" } });
    expect(d.run({ bind: { exchange: "x", queue: "q", vhost: "a" } }).result).toMatchObject({ ok: false, error: { code: "NOT_FOUND", message: 'no exchange "x"' } });
    expect(d.run({ bind: { exchange: "x", queue: "q" } }).result).toMatchObject({ ok: false, error: { code: "NOT_FOUND", message: 'no queue "q"' } });
  });

  it("alternate exchanges resolve in the exchange's vhost", () => {
    const d = twoVhosts();
    for (const vhost of ["/", "a"]) {
      d.ok({ declareExchange: { name: "ae", type: ExchangeType.EXCHANGE_TYPE_FANOUT, vhost } });
      d.ok({ declareQueue: { name: `unrouted-${vhost === "/" ? "root" : vhost}`, vhost } });
      d.ok({ bind: { exchange: "ae", queue: `unrouted-${vhost === "/" ? "root" : vhost}`, vhost } });
      d.ok({ declareExchange: { name: "main", type: ExchangeType.EXCHANGE_TYPE_DIRECT, alternateExchange: "ae", vhost } });
    }
    expect(routed(d.run({ publish: { exchange: "main", routingKey: "nowhere", vhost: "a" } }))).toEqual(["unrouted-a"]);
    expect(routed(d.publish("main", "nowhere"))).toEqual(["unrouted-root"]);
  });

  it("dead-lettering publishes to the dead-letter exchange of the queue's own vhost", () => {
    const d = twoVhosts();
    // "/" has a "dlx" too, which would route nothing.
    d.ok({ declareExchange: { name: "dlx", type: ExchangeType.EXCHANGE_TYPE_DIRECT } });
    d.ok({ declareQueue: { name: "dead" } });
    d.ok({ bind: { exchange: "dlx", queue: "dead", routingKey: "never" } });
    d.ok({ declareExchange: { name: "dlx", type: ExchangeType.EXCHANGE_TYPE_FANOUT, vhost: "a" } });
    d.ok({ declareQueue: { name: "dead", vhost: "a" } });
    d.ok({ bind: { exchange: "dlx", queue: "dead", vhost: "a" } });
    d.ok({ declareQueue: { name: "work", vhost: "a", arguments: { deadLetterExchange: "dlx", messageTtlMs: 10 } } });
    d.ok({ publish: { routingKey: "work", body: Buffer.from("expires"), vhost: "a" } });
    d.tick(d.now + 100);
    expect(d.broker.queueInfo("work", "a")?.messagesReady).toBe(0);
    expect(d.broker.queueInfo("dead", "a")?.messagesReady).toBe(1);
    expect(d.broker.queueInfo("dead")?.messagesReady).toBe(0);

    // Rejected, too: a consumer of "a" rejects without requeue.
    d.ok({ publish: { routingKey: "work", body: Buffer.from("rejected"), vhost: "a" } });
    const delivered = deliveries(d.ok({ subscribe: { consumerId: "c", sessionId: "s", queue: "work", vhost: "a" } }).effects);
    expect(delivered).toHaveLength(1);
    d.ok({ reject: { consumerId: "c", deliveryTag: delivered[0]?.deliveryTag ?? 0, requeue: false } });
    expect(d.broker.queueInfo("dead", "a")?.messagesReady).toBe(2);
    expect(d.broker.queueInfo("dead")?.messagesReady).toBe(0);
  });

  it("names a vhost that does not exist in a NOT_FOUND answer, for every command that has a vhost", () => {
    const d = twoVhosts();
    const vhost = "nope";
    const commands = [
      { declareExchange: { name: "x", type: ExchangeType.EXCHANGE_TYPE_FANOUT, vhost } },
      { deleteExchange: { name: "x", vhost } },
      { declareQueue: { name: "q", vhost } },
      { deleteQueue: { name: "q", vhost } },
      { purgeQueue: { name: "q", vhost } },
      { bind: { exchange: "amq.fanout", queue: "q", vhost } },
      { unbind: { exchange: "amq.fanout", queue: "q", vhost } },
      { publish: { routingKey: "q", vhost } },
      { subscribe: { consumerId: "c", sessionId: "s", queue: "q", vhost } },
      { get: { queue: "q", noAck: true, vhost } },
    ];
    for (const c of commands) expect(d.run(c).result).toEqual({ ok: false, error: { code: "NOT_FOUND", message: 'no vhost "nope"' } });
    expect(d.broker.queueInfo("q", vhost)).toBeUndefined();
    expect(d.broker.listQueues(vhost)).toEqual([]);
    expect(d.broker.listExchanges(vhost)).toEqual([]);
    expect(d.broker.listBindings(vhost)).toEqual([]);
  });

  it("an exclusive queue is per vhost, and its session going down deletes it in every vhost", () => {
    const d = twoVhosts();
    d.ok({ declareQueue: { name: "mine", exclusive: true, ownerSessionId: "s", vhost: "a" } });
    d.ok({ declareQueue: { name: "mine", exclusive: true, ownerSessionId: "s" } });
    expect(outcomeOf(d.run({ purgeQueue: { name: "mine", sessionId: "other", vhost: "a" } }))).toBe("PRECONDITION_FAILED");
    const restored = Broker.restore(d.broker.snapshot());
    for (const b of [d.broker, restored]) {
      const out = b.apply({ sessionDown: { sessionId: "s" } }, { index: 100, timestamp: d.now });
      expect(out.result).toEqual({ ok: true, kind: "sessionDown", consumers: [], deletedQueues: ["mine", "mine"] });
      expect(b.queueInfo("mine", "a")).toBeUndefined();
      expect(b.queueInfo("mine")).toBeUndefined();
    }
  });

  it("queue and exchange limits count every vhost, predeclared exchanges included", () => {
    const d = twoVhosts({ maxExchanges: 12, maxQueues: 2 });
    d.queue("q");
    d.ok({ declareQueue: { name: "q", vhost: "a" } });
    expect(outcomeOf(d.run({ declareQueue: { name: "r", vhost: "a" } }))).toBe("RESOURCE_EXHAUSTED");
    d.exchange("x", ExchangeType.EXCHANGE_TYPE_FANOUT);
    // 5 + 5 predeclared and one declared: a third vhost's five do not fit.
    expect(d.run({ addVhost: { name: "b" } }).result).toMatchObject({ ok: false, error: { code: "RESOURCE_EXHAUSTED", message: expect.stringMatching(/predeclared exchanges/) } });
    d.ok({ declareExchange: { name: "y", type: ExchangeType.EXCHANGE_TYPE_FANOUT, vhost: "a" } });
    expect(outcomeOf(d.run({ declareExchange: { name: "z", type: ExchangeType.EXCHANGE_TYPE_FANOUT } }))).toBe("RESOURCE_EXHAUSTED");
  });
});

describe("AddVhost and DeleteVhost", () => {
  it("AddVhost refuses a vhost that exists", () => {
    const d = twoVhosts();
    expect(d.run({ addVhost: { name: "a" } }).result).toEqual({ ok: false, error: { code: "PRECONDITION_FAILED", message: 'vhost "a" already exists' } });
    expect(d.broker.vhosts()).toEqual(["/", "a"]);
  });

  it("deleting a vhost removes its exchanges, queues and bindings, cancels its consumers like DeleteQueue, and clears the permissions on it", () => {
    const d = twoVhosts({ maxBindings: 2 });
    d.ok({ addUser: { name: "u" } });
    d.ok({ setPermissions: { user: "u", vhost: "a", configure: ".*", write: ".*", read: ".*" } });
    d.ok({ setPermissions: { user: "u", vhost: "/", configure: "", write: "", read: "^q$" } });
    d.queue("q");
    d.ok({ declareQueue: { name: "q", vhost: "a" } });
    d.ok({ declareQueue: { name: "r", vhost: "a" } });
    d.ok({ declareExchange: { name: "x", type: ExchangeType.EXCHANGE_TYPE_FANOUT, vhost: "a" } });
    d.ok({ bind: { exchange: "x", queue: "q", vhost: "a" } });
    d.ok({ bind: { exchange: "x", queue: "r", vhost: "a" } });
    d.ok({ publish: { exchange: "x", body: Buffer.from("held"), vhost: "a" } });
    const held = deliveries(d.ok({ subscribe: { consumerId: "ca", sessionId: "s", queue: "q", vhost: "a" } }).effects);
    expect(held).toHaveLength(1);
    d.subscribe("root", "q");
    d.ok({ get: { queue: "r", sessionId: "s", vhost: "a" } });

    const out = d.ok({ deleteVhost: { name: "a" } });
    expect(out.result).toEqual({ ok: true, kind: "deleteVhost", deletedQueues: ["q", "r"] });
    const cancelled = out.effects.filter((e): e is ConsumerCancelledEffect => e.kind === "consumerCancelled");
    expect(cancelled).toEqual([{ kind: "consumerCancelled", consumer: { id: "ca", sessionId: "s", consumerTag: "" }, reason: "queueDeleted", queue: "q" }]);
    expect(d.broker.vhosts()).toEqual(["/"]);
    expect(d.broker.hasVhost("a")).toBe(false);
    expect(d.broker.listPermissions()).toEqual([{ user: "u", vhost: "/", configure: "", write: "", read: "^q$" }]);
    expect(d.broker.permissions("u", "a")).toBeUndefined();
    // The consumer, its held delivery and the session's get are gone; "/" is untouched.
    expect(outcomeOf(d.run({ ack: { consumerId: "ca", deliveryTag: held[0]?.deliveryTag ?? 0 } }))).toBe("NOT_FOUND");
    expect(d.broker.consumersOfSession("s")).toEqual([]);
    expect(d.broker.consumersOfSession("s1")).toEqual(["root"]);
    expect(outcomeOf(d.run({ ack: { sessionId: "s", deliveryTag: 1 } }))).toBe("PRECONDITION_FAILED");
    expect(bodies(d.publish("", "q", "still-here").effects)).toEqual(["still-here"]);
    // Its bindings no longer count against the limit of 2.
    d.queue("r");
    d.bind("amq.fanout", "q");
    d.bind("amq.fanout", "r");

    // A vhost added again under the name starts empty, with fresh predeclared exchanges.
    d.ok({ addVhost: { name: "a" } });
    expect(d.broker.listQueues("a")).toEqual([]);
    expect(d.broker.listExchanges("a").map((e) => e.name)).toEqual(builtinNames);
    expect(d.broker.permissions("u", "a")).toBeUndefined();
  });

  it('refuses to delete "/" and answers NOT_FOUND for a vhost that does not exist', () => {
    const d = twoVhosts();
    d.queue("q");
    expect(d.run({ deleteVhost: { name: "/" } }).result).toMatchObject({ ok: false, error: { code: "PRECONDITION_FAILED", message: expect.stringMatching(/cannot be deleted/) } });
    expect(d.broker.queueInfo("q")).toBeDefined();
    expect(d.run({ deleteVhost: { name: "b" } }).result).toEqual({ ok: false, error: { code: "NOT_FOUND", message: 'no vhost "b"' } });
  });
});
