import { describe, expect, it } from "vitest";
import { Driver, ExchangeType, routed } from "./broker-driver.ts";

describe("exchanges route like RabbitMQ's", () => {
  it("default exchange routes by queue name and cannot be bound or deleted", () => {
    const d = new Driver();
    d.queue("orders");
    expect(routed(d.publish("", "orders"))).toEqual(["orders"]);
    expect(routed(d.publish("", "nope"))).toEqual([]);
    const bind = d.run({ bind: { exchange: "", queue: "orders", routingKey: "x" } });
    expect(bind.result.ok).toBe(false);
    const del = d.run({ deleteExchange: { name: "amq.direct" } });
    expect(del.result).toMatchObject({ ok: false, error: { code: "PRECONDITION_FAILED" } });
  });

  it("direct matches the key exactly; fanout ignores it", () => {
    const d = new Driver();
    d.queue("a");
    d.queue("b");
    d.bind("amq.direct", "a", "red");
    d.bind("amq.direct", "b", "blue");
    d.bind("amq.fanout", "a", "ignored");
    d.bind("amq.fanout", "b");
    expect(routed(d.publish("amq.direct", "red"))).toEqual(["a"]);
    expect(routed(d.publish("amq.direct", "green"))).toEqual([]);
    expect(routed(d.publish("amq.fanout", "whatever"))).toEqual(["a", "b"]);
  });

  // RabbitMQ tutorial 5 and rabbit_exchange_type_topic tests: "*" one word, "#" zero or more.
  const topicCases: [string, string, boolean][] = [
    ["*.orange.*", "quick.orange.rabbit", true],
    ["*.*.rabbit", "quick.orange.rabbit", true],
    ["lazy.#", "lazy.orange.elephant", true],
    ["*.orange.*", "quick.orange.fox", true],
    ["*.*.rabbit", "quick.brown.fox", false],
    ["lazy.#", "lazy", true],
    ["*.orange.*", "orange", false],
    ["*.orange.*", "quick.orange.male.rabbit", false],
    ["lazy.#", "lazy.orange.male.rabbit", true],
    ["#", "", true],
    ["#", "a.b.c", true],
    ["", "", true],
    ["", "a", false],
    ["a.#.b", "a.b", true],
    ["a.#.b", "a.x.y.b", true],
    ["a.#.b", "a.x.y.c", false],
    ["#.b", "b", true],
    ["#.#", "a", true],
    ["*", "", false],
    ["a.*.#", "a.b", true],
    ["a.*.#", "a", false],
    ["*.#.*", "a", false],
    ["*.#.*", "a.b", true],
  ];
  for (const [key, rk, hit] of topicCases) {
    it(`topic binding "${key}" ${hit ? "matches" : "does not match"} "${rk}"`, () => {
      const d = new Driver();
      d.queue("q");
      d.bind("amq.topic", "q", key);
      expect(routed(d.publish("amq.topic", rk))).toEqual(hit ? ["q"] : []);
    });
  }

  it("topic delivers one copy per queue however many bindings match, and unbinding stops it", () => {
    const d = new Driver();
    d.queue("q");
    d.queue("r");
    d.bind("amq.topic", "q", "a.*");
    d.bind("amq.topic", "q", "#");
    d.bind("amq.topic", "r", "a.b");
    expect(routed(d.publish("amq.topic", "a.b"))).toEqual(["q", "r"]);
    d.ok({ unbind: { exchange: "amq.topic", queue: "q", routingKey: "#" } });
    expect(routed(d.publish("amq.topic", "z"))).toEqual([]);
    expect(routed(d.publish("amq.topic", "a.z"))).toEqual(["q"]);
  });

  it("headers exchange: x-match all, any, and x- headers only with all-with-x", () => {
    const d = new Driver();
    for (const q of ["all", "any", "withx"]) d.queue(q);
    const s = (v: string) => ({ stringValue: v });
    d.bind("amq.headers", "all", "", [
      { key: "x-match", value: s("all") },
      { key: "format", value: s("pdf") },
      { key: "type", value: s("report") },
    ]);
    d.bind("amq.headers", "any", "", [
      { key: "x-match", value: s("any") },
      { key: "format", value: s("pdf") },
      { key: "size", value: { intValue: 3 } },
    ]);
    d.bind("amq.headers", "withx", "", [
      { key: "x-match", value: s("all-with-x") },
      { key: "x-tenant", value: s("t1") },
    ]);
    const pub = (headers: { key: string; value: { stringValue?: string; intValue?: number } }[]) =>
      routed(d.publish("amq.headers", "", "m", { properties: { headers } }));
    expect(pub([{ key: "format", value: s("pdf") }, { key: "type", value: s("report") }])).toEqual(["all", "any"]);
    expect(pub([{ key: "format", value: s("pdf") }])).toEqual(["any"]);
    expect(pub([{ key: "size", value: { intValue: 3 } }])).toEqual(["any"]);
    expect(pub([{ key: "size", value: s("3") }])).toEqual([]);
    expect(pub([{ key: "x-tenant", value: s("t1") }])).toEqual(["withx"]);
  });

  it("alternate exchange takes unroutable messages; mandatory returns only when nothing takes it, in the result", () => {
    const d = new Driver();
    d.queue("unrouted");
    d.exchange("ae", ExchangeType.EXCHANGE_TYPE_FANOUT);
    d.bind("ae", "unrouted");
    d.exchange("main", ExchangeType.EXCHANGE_TYPE_DIRECT, { alternateExchange: "ae" });
    const viaAe = d.publish("main", "nobody", "m", { mandatory: true });
    expect(viaAe.result).toMatchObject({ ok: true, returned: false, routedQueues: ["unrouted"] });
    d.exchange("plain", ExchangeType.EXCHANGE_TYPE_DIRECT);
    const ret = d.publish("plain", "nobody", "lost", { mandatory: true, producerId: "p", sequence: 7 });
    // The result is the whole answer (the publisher gets a NO_ROUTE nack); no effect repeats it.
    expect(ret.result).toMatchObject({ ok: true, returned: true, routedQueues: [] });
    expect(ret.effects).toEqual([]);
    const retry = d.publish("plain", "nobody", "lost", { mandatory: true, producerId: "p", sequence: 7 });
    expect(retry.result).toMatchObject({ ok: true, returned: true, duplicate: true });
    expect(retry.effects).toEqual([]);
  });

  it("redeclaring the same exchange is a no-op, differently is PRECONDITION_FAILED naming it", () => {
    const d = new Driver();
    d.exchange("ex", ExchangeType.EXCHANGE_TYPE_TOPIC, { durable: true });
    d.exchange("ex", ExchangeType.EXCHANGE_TYPE_TOPIC, { durable: true });
    const out = d.run({ declareExchange: { name: "ex", type: ExchangeType.EXCHANGE_TYPE_DIRECT, durable: true } });
    expect(out.result).toMatchObject({ ok: false, error: { code: "PRECONDITION_FAILED" } });
    expect(!out.result.ok && out.result.error.message).toContain('"ex"');
    expect(d.run({ declareExchange: { name: "amq.mine", type: ExchangeType.EXCHANGE_TYPE_DIRECT } }).result.ok).toBe(false);
    expect(d.run({ declareExchange: { name: "missing", passive: true } }).result).toMatchObject({ ok: false, error: { code: "NOT_FOUND" } });
  });

  it("publishing to a missing or internal exchange fails; auto-delete exchange goes with its last binding", () => {
    const d = new Driver();
    expect(d.publish("nope", "k").result).toMatchObject({ ok: false, error: { code: "NOT_FOUND" } });
    d.exchange("int", ExchangeType.EXCHANGE_TYPE_FANOUT, { internal: true });
    expect(d.publish("int", "k").result).toMatchObject({ ok: false, error: { code: "PRECONDITION_FAILED" } });
    d.queue("q");
    d.exchange("auto", ExchangeType.EXCHANGE_TYPE_FANOUT, { autoDelete: true });
    d.bind("auto", "q");
    expect(d.broker.listBindings()).toHaveLength(1);
    d.ok({ unbind: { exchange: "auto", queue: "q" } });
    expect(d.broker.listExchanges().map((e) => e.name)).not.toContain("auto");
  });

  it("delete exchange if_unused refuses while bound; deleting a queue removes its bindings", () => {
    const d = new Driver();
    d.exchange("ex", ExchangeType.EXCHANGE_TYPE_DIRECT);
    d.queue("q");
    d.bind("ex", "q", "k");
    expect(d.run({ deleteExchange: { name: "ex", ifUnused: true } }).result.ok).toBe(false);
    d.ok({ deleteQueue: { name: "q" } });
    expect(d.broker.listBindings()).toEqual([]);
    d.ok({ deleteExchange: { name: "ex", ifUnused: true } });
  });
});
