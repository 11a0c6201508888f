// Exchange-to-exchange bindings (RabbitMQ's exchange.bind), state-machine version 6: routing
// follows them recursively, a queue gets one copy however many paths reach it, cycles end, and
// deleting either end removes the binding.
import type { raftmq } from "@raftmq/proto";
import { describe, expect, it } from "vitest";
import { Broker, type Command, EXCHANGE_BINDINGS_VERSION, MACHINE_VERSION } from "../src/index.ts";
import { Driver, ExchangeType, editFirstPiece, outcomeOf, routed } from "./broker-driver.ts";

const { DIRECT, FANOUT, TOPIC, HEADERS } = {
  DIRECT: ExchangeType.EXCHANGE_TYPE_DIRECT,
  FANOUT: ExchangeType.EXCHANGE_TYPE_FANOUT,
  TOPIC: ExchangeType.EXCHANGE_TYPE_TOPIC,
  HEADERS: ExchangeType.EXCHANGE_TYPE_HEADERS,
};

/** A broker on the newest version, as a fresh cluster runs. */
function upgraded(): Driver {
  const d = new Driver();
  d.upgrade();
  return d;
}

/** Declares fanout exchanges of these names. */
function fanouts(d: Driver, ...names: string[]): void {
  for (const name of names) d.exchange(name, FANOUT);
}

function errorOf(out: { result: { ok: boolean } }): { code: string; message: string } {
  const r = out.result as { ok: false; error: { code: string; message: string } };
  expect(r.ok).toBe(false);
  return r.error;
}

function exchangeNames(d: Driver): string[] {
  return d.broker.listExchanges().map((e) => e.name);
}

describe("routing through exchange-to-exchange bindings", () => {
  it("follows a chain: each exchange routes by its own type and bindings", () => {
    const d = upgraded();
    d.exchange("orders", TOPIC);
    d.exchange("eu", DIRECT);
    d.exchange("audit", FANOUT);
    d.queue("eu-orders");
    d.queue("audit-log");
    d.bindExchange("orders", "eu", "order.eu.*");
    d.bindExchange("eu", "audit", "order.eu.created");
    d.bind("eu", "eu-orders", "order.eu.created");
    d.bind("audit", "audit-log");
    expect(routed(d.publish("orders", "order.eu.created"))).toEqual(["eu-orders", "audit-log"]);
    // The topic binding matches, the direct exchange does not: nothing further.
    expect(routed(d.publish("orders", "order.eu.paid"))).toEqual([]);
    expect(routed(d.publish("orders", "order.us.created"))).toEqual([]);
  });

  it("delivers one copy to a queue that several paths reach (fan-in)", () => {
    const d = upgraded();
    fanouts(d, "src", "left");
    d.exchange("right", DIRECT);
    d.queue("q");
    d.queue("other");
    d.bindExchange("src", "left");
    d.bindExchange("src", "right", "k");
    d.bind("src", "q");
    d.bind("left", "q");
    d.bind("right", "q", "k");
    d.bind("right", "other", "k");
    const out = d.publish("src", "k");
    expect(routed(out)).toEqual(["q", "other"]);
    expect(d.broker.queueInfo("q")?.messagesReady).toBe(1);
    expect(d.broker.queueInfo("other")?.messagesReady).toBe(1);
  });

  it("ends cycles: each exchange is visited once, a self-binding included", () => {
    const d = upgraded();
    fanouts(d, "a", "b", "c");
    d.queue("q");
    d.bindExchange("a", "b");
    d.bindExchange("b", "c");
    d.bindExchange("c", "a");
    d.bindExchange("b", "b");
    d.bind("c", "q");
    for (const from of ["a", "b", "c"]) expect(routed(d.publish(from, ""))).toEqual(["q"]);
    expect(d.broker.queueInfo("q")?.messagesReady).toBe(3);
    // A cycle reaching no queue routes nothing; mandatory returns it.
    d.ok({ unbind: { exchange: "c", queue: "q" } });
    expect(d.publish("a", "", "m", { mandatory: true }).result).toMatchObject({ ok: true, routedQueues: [], returned: true });
  });

  it("applies an exchange's alternate exchange only when its own bindings match nothing", () => {
    const d = upgraded();
    d.queue("unrouted");
    d.queue("inner-unrouted");
    d.queue("q");
    d.exchange("ae", FANOUT);
    d.bind("ae", "unrouted");
    d.exchange("inner-ae", FANOUT);
    d.bind("inner-ae", "inner-unrouted");
    d.exchange("inner", DIRECT, { alternateExchange: "inner-ae" });
    d.exchange("outer", DIRECT, { alternateExchange: "ae" });
    d.bindExchange("outer", "inner", "k");
    d.bind("inner", "q", "k");
    // Routed through the binding: no alternate exchange.
    expect(routed(d.publish("outer", "k"))).toEqual(["q"]);
    // outer matches nothing: its alternate exchange takes the message.
    expect(routed(d.publish("outer", "other"))).toEqual(["unrouted"]);
    // outer matched (inner), inner matched nothing: inner's alternate, not outer's.
    d.ok({ unbind: { exchange: "inner", queue: "q", routingKey: "k" } });
    expect(routed(d.publish("outer", "k"))).toEqual(["inner-unrouted"]);
    // An alternate exchange routes on through its own exchange bindings.
    d.ok({ deleteExchange: { name: "inner-ae" } });
    d.exchange("ae2", FANOUT);
    d.exchange("lone", DIRECT, { alternateExchange: "ae2" });
    d.bindExchange("ae2", "ae");
    expect(routed(d.publish("lone", "x"))).toEqual(["unrouted"]);
  });

  it("reaches an internal exchange through a binding, though clients cannot publish to it", () => {
    const d = upgraded();
    d.exchange("public", FANOUT);
    d.exchange("private", FANOUT, { internal: true });
    d.queue("q");
    d.bindExchange("public", "private");
    d.bind("private", "q");
    expect(routed(d.publish("public", ""))).toEqual(["q"]);
    expect(outcomeOf(d.publish("private", ""))).toBe("PRECONDITION_FAILED");
  });

  it("matches topic and headers bindings to exchanges like those to queues", () => {
    const d = upgraded();
    d.exchange("t", TOPIC);
    d.exchange("h", HEADERS);
    d.exchange("sink", FANOUT);
    d.queue("q");
    d.bind("sink", "q");
    d.bindExchange("t", "sink", "a.#");
    d.bindExchange("h", "sink", "", [
      { key: "x-match", value: { stringValue: "all" } },
      { key: "kind", value: { stringValue: "x" } },
    ]);
    expect(routed(d.publish("t", "a.b.c"))).toEqual(["q"]);
    expect(routed(d.publish("t", "b"))).toEqual([]);
    const headers = (v: string) => ({ properties: { headers: [{ key: "kind", value: { stringValue: v } }] } });
    expect(routed(d.publish("h", "", "m", headers("x")))).toEqual(["q"]);
    expect(routed(d.publish("h", "", "m", headers("y")))).toEqual([]);
    // Two topic bindings to one exchange that differ only in arguments share a trie entry.
    d.bindExchange("t", "sink", "z", [{ key: "n", value: { stringValue: "1" } }]);
    d.bindExchange("t", "sink", "z", [{ key: "n", value: { stringValue: "2" } }]);
    d.ok({ unbind: { exchange: "t", destinationExchange: "sink", routingKey: "z", arguments: [{ key: "n", value: { stringValue: "1" } }] } });
    expect(routed(d.publish("t", "z"))).toEqual(["q"]);
  });

  it("dead-letters through exchange bindings too", () => {
    const d = upgraded();
    fanouts(d, "dlx", "dead-sink");
    d.queue("dead");
    d.bindExchange("dlx", "dead-sink");
    d.bind("dead-sink", "dead");
    d.queue("work", { deadLetterExchange: "dlx", messageTtlMs: 10 });
    d.publish("", "work");
    d.tick(d.now + 100);
    expect(d.broker.queueInfo("dead")?.messagesReady).toBe(1);
  });

  it("keeps a queue and an exchange of the same name apart", () => {
    const d = upgraded();
    fanouts(d, "src", "same");
    d.queue("same");
    d.queue("q");
    d.bind("same", "q");
    d.bind("src", "same");
    d.bindExchange("src", "same");
    expect(d.broker.listBindings().filter((b) => b.exchange === "src")).toEqual([
      { exchange: "src", queue: "same", destinationExchange: "", routingKey: "", arguments: [] },
      { exchange: "src", queue: "", destinationExchange: "same", routingKey: "", arguments: [] },
    ]);
    expect(routed(d.publish("src", ""))).toEqual(["same", "q"]);
    d.ok({ unbind: { exchange: "src", queue: "same" } });
    expect(routed(d.publish("src", ""))).toEqual(["q"]);
  });
});

describe("binding to exchanges: answers", () => {
  it("is idempotent both ways: binding twice makes one binding, unbinding what is not there succeeds", () => {
    const d = upgraded();
    fanouts(d, "x", "y");
    d.bindExchange("x", "y", "k");
    d.bindExchange("x", "y", "k");
    expect(d.broker.listBindings()).toHaveLength(1);
    d.ok({ unbind: { exchange: "x", destinationExchange: "y", routingKey: "k" } });
    d.ok({ unbind: { exchange: "x", destinationExchange: "y", routingKey: "k" } });
    expect(d.broker.listBindings()).toEqual([]);
  });

  it("answers NOT_FOUND for a missing source or destination, in the binding's vhost", () => {
    const d = upgraded();
    d.exchange("x", FANOUT);
    expect(errorOf(d.run({ bind: { exchange: "nope", destinationExchange: "x" } }))).toEqual({ code: "NOT_FOUND", message: 'no exchange "nope"' });
    expect(errorOf(d.run({ bind: { exchange: "x", destinationExchange: "gone" } }))).toEqual({ code: "NOT_FOUND", message: 'no exchange "gone"' });
    expect(errorOf(d.run({ unbind: { exchange: "x", destinationExchange: "gone" } })).code).toBe("NOT_FOUND");
    d.ok({ addVhost: { name: "v" } });
    d.ok({ declareExchange: { name: "y", type: FANOUT, vhost: "v" } });
    expect(errorOf(d.run({ bind: { exchange: "x", destinationExchange: "y" } }))).toEqual({ code: "NOT_FOUND", message: 'no exchange "y"' });
    d.ok({ bind: { exchange: "amq.fanout", destinationExchange: "y", vhost: "v" } });
  });

  it("refuses the default exchange as either end", () => {
    const d = upgraded();
    d.exchange("x", FANOUT);
    const to = errorOf(d.run({ bind: { exchange: "x", destinationExchange: "" } }));
    expect(to.code).toBe("PRECONDITION_FAILED");
    expect(to.message).toMatch(/default exchange/);
    expect(errorOf(d.run({ bind: { exchange: "", destinationExchange: "x" } })).code).toBe("INVALID_ARGUMENT");
  });

  it("needs exactly one destination", () => {
    const d = upgraded();
    d.exchange("x", FANOUT);
    d.queue("q");
    const both = errorOf(d.run({ bind: { exchange: "x", queue: "q", destinationExchange: "x" } }));
    expect(both).toEqual({ code: "INVALID_ARGUMENT", message: expect.stringMatching(/both queue "q" and destination_exchange "x".*exactly one destination/) });
    const neither = errorOf(d.run({ unbind: { exchange: "x" } }));
    expect(neither).toEqual({ code: "INVALID_ARGUMENT", message: expect.stringMatching(/^unbind needs a destination/) });
  });

  it("counts exchange bindings against maxBindings", () => {
    const d = new Driver(undefined, { maxBindings: 1 });
    d.upgrade();
    fanouts(d, "x", "y");
    d.bindExchange("x", "y");
    const full = errorOf(d.run({ bind: { exchange: "y", destinationExchange: "x" } }));
    expect(full).toEqual({ code: "RESOURCE_EXHAUSTED", message: 'cannot bind exchange "x" to exchange "y": the broker holds its limit of 1 bindings' });
    d.ok({ deleteExchange: { name: "y" } });
    d.bindExchange("x", "amq.fanout");
  });
});

describe("deleting an end of an exchange binding", () => {
  it("removes the bindings an exchange is the source or the destination of", () => {
    const d = upgraded();
    fanouts(d, "a", "b", "c");
    d.queue("q");
    d.bindExchange("a", "b");
    d.bindExchange("b", "c");
    d.bind("b", "q");
    d.bind("a", "q");
    d.ok({ deleteExchange: { name: "b" } });
    expect(d.broker.listBindings().map((b) => `${b.exchange}->${b.queue || b.destinationExchange}`)).toEqual(["a->q"]);
    expect(exchangeNames(d)).toContain("c");
    // The freed binding count is usable again.
    expect(routed(d.publish("a", ""))).toEqual(["q"]);
  });

  it("if_unused counts only the bindings the exchange is the source of", () => {
    const d = upgraded();
    fanouts(d, "a", "b");
    d.bindExchange("a", "b");
    expect(outcomeOf(d.run({ deleteExchange: { name: "a", ifUnused: true } }))).toBe("PRECONDITION_FAILED");
    d.ok({ deleteExchange: { name: "b", ifUnused: true } });
    expect(d.broker.listBindings()).toEqual([]);
  });

  it("auto-deletes an exchange when its last binding as the source goes, whatever binds to it", () => {
    const d = upgraded();
    d.exchange("src", FANOUT);
    d.exchange("auto", FANOUT, { autoDelete: true });
    d.exchange("dst", FANOUT);
    d.bindExchange("src", "auto");
    d.bindExchange("auto", "dst");
    // Losing a binding to it does not count.
    d.ok({ unbind: { exchange: "src", destinationExchange: "auto" } });
    expect(exchangeNames(d)).toContain("auto");
    d.bindExchange("src", "auto");
    // Losing its last binding as the source does, through unbind...
    d.ok({ unbind: { exchange: "auto", destinationExchange: "dst" } });
    expect(exchangeNames(d)).not.toContain("auto");
    expect(d.broker.listBindings()).toEqual([]);
    // ...and through the deletion of its destination.
    d.exchange("auto", FANOUT, { autoDelete: true });
    d.bindExchange("auto", "dst");
    d.ok({ deleteExchange: { name: "dst" } });
    expect(exchangeNames(d)).not.toContain("auto");
  });

  it("cascades: deleting a queue can empty a chain of auto-delete exchanges", () => {
    const d = upgraded();
    d.exchange("a", FANOUT, { autoDelete: true });
    d.exchange("b", FANOUT, { autoDelete: true });
    d.exchange("keep", FANOUT, { autoDelete: true });
    d.queue("q");
    d.queue("other");
    d.bindExchange("a", "b");
    d.bind("b", "q");
    d.bindExchange("keep", "b");
    d.bind("keep", "other");
    // Auto-delete exchanges bound to each other in a cycle keep each other.
    d.exchange("c1", FANOUT, { autoDelete: true });
    d.exchange("c2", FANOUT, { autoDelete: true });
    d.bindExchange("c1", "c2");
    d.bindExchange("c2", "c1");
    d.bindExchange("c2", "b");
    d.ok({ deleteQueue: { name: "q" } });
    // b lost q, its only binding as the source, so it goes; then a (its only one was to b) goes;
    // keep still binds other, and the cycle still binds itself.
    expect(exchangeNames(d)).not.toContain("a");
    expect(exchangeNames(d)).not.toContain("b");
    expect(d.broker.listBindings().map((b) => `${b.exchange}->${b.queue || b.destinationExchange}`)).toEqual(["keep->other", "c1->c2", "c2->c1"]);
  });

  it("deletes a vhost whose exchanges bind each other", () => {
    const d = upgraded();
    d.ok({ addVhost: { name: "v" } });
    for (const name of ["a", "b"]) d.ok({ declareExchange: { name, type: FANOUT, autoDelete: true, vhost: "v" } });
    d.ok({ declareQueue: { name: "q", vhost: "v" } });
    d.ok({ bind: { exchange: "a", destinationExchange: "b", vhost: "v" } });
    d.ok({ bind: { exchange: "b", destinationExchange: "a", vhost: "v" } });
    d.ok({ bind: { exchange: "b", queue: "q", vhost: "v" } });
    d.ok({ deleteVhost: { name: "v" } });
    expect(d.broker.vhosts()).toEqual(["/"]);
    // Its bindings no longer count: the limit is all there is again.
    const full = new Driver(undefined, { maxBindings: 1 });
    full.upgrade();
    full.ok({ addVhost: { name: "v" } });
    full.ok({ bind: { exchange: "amq.fanout", destinationExchange: "amq.direct", vhost: "v" } });
    full.ok({ deleteVhost: { name: "v" } });
    full.bindExchange("amq.fanout", "amq.direct");
  });
});

describe("exchange bindings in snapshots", () => {
  function topology(): Driver {
    const d = upgraded();
    // The destination is declared after its source: restore must not depend on the order.
    d.exchange("first", TOPIC);
    d.exchange("auto", FANOUT, { autoDelete: true });
    d.queue("q");
    d.exchange("later", FANOUT, { internal: true });
    d.bindExchange("first", "later", "a.*");
    d.bindExchange("later", "auto");
    d.bindExchange("auto", "first", "loop");
    d.bind("later", "q");
    d.bind("first", "q", "direct.#");
    return d;
  }

  it("restores them: same bytes, same routing, same cascades", () => {
    const d = topology();
    const restored = new Driver(Broker.restore(d.broker.snapshot()));
    restored.index = d.index;
    expect(Buffer.from(restored.broker.snapshot()).equals(Buffer.from(d.broker.snapshot()))).toBe(true);
    expect(restored.broker.listBindings()).toEqual(d.broker.listBindings());
    for (const driver of [d, restored]) {
      expect(routed(driver.publish("first", "a.b"))).toEqual(["q"]);
      expect(routed(driver.publish("first", "direct.x"))).toEqual(["q"]);
      // Deleting "first" removes auto's only source binding (to first): auto goes too.
      driver.ok({ deleteExchange: { name: "first" } });
      expect(exchangeNames(driver)).not.toContain("auto");
    }
    expect(Buffer.from(restored.broker.snapshot()).equals(Buffer.from(d.broker.snapshot()))).toBe(true);
  });

  it("writes an exchange binding as destination_exchange, a queue binding as before", () => {
    const d = topology();
    let bindings: raftmq.v1.SnapshotBinding.$Properties[] = [];
    editFirstPiece(d.broker.snapshot(), (piece) => {
      bindings = piece.exchanges.find((e) => e.name === "first")?.bindings ?? [];
    });
    expect(bindings.map((b) => [b.queue, b.destinationExchange, b.routingKey])).toEqual([
      ["", "later", "a.*"],
      ["q", "", "direct.#"],
    ]);
  });
});

describe("the version gate", () => {
  const bindToExchange: Command = { bind: { exchange: "amq.fanout", destinationExchange: "amq.direct" } };

  it("refuses exchange bindings before version 6 with a message saying what to do", () => {
    expect(EXCHANGE_BINDINGS_VERSION).toBe(6);
    expect(MACHINE_VERSION).toBeGreaterThanOrEqual(EXCHANGE_BINDINGS_VERSION);
    const d = new Driver();
    d.upgrade(EXCHANGE_BINDINGS_VERSION - 1);
    for (const command of [bindToExchange, { unbind: { exchange: "amq.fanout", destinationExchange: "amq.direct" } }]) {
      const error = errorOf(d.run(command));
      expect(error.code).toBe("PRECONDITION_FAILED");
      expect(error.message).toMatch(/^exchange\.(un)?bind to exchange "amq\.direct" needs state-machine version 6, and the cluster applies version 5: move it to version 6 first/);
    }
    expect(d.broker.listBindings()).toEqual([]);
    // Queue bindings are as they were.
    d.queue("q");
    d.bind("amq.fanout", "q");
    d.upgrade(EXCHANGE_BINDINGS_VERSION);
    d.ok(bindToExchange);
    expect(d.broker.listBindings().map((b) => b.destinationExchange)).toEqual(["", "amq.direct"]);
  });

  it("refuses them on a state that never moved its version (1)", () => {
    const d = new Driver();
    expect(errorOf(d.run(bindToExchange)).message).toMatch(/needs state-machine version 6, and the cluster applies version 1/);
  });
});
