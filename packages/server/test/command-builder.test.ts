import { Broker, defaultLimits, MACHINE_VERSION, validateCommand } from "@raftmq/broker";
import { raftmq } from "@raftmq/proto";
import { describe, expect, it } from "vitest";
import { failure } from "./command-failure.ts";
import { CommandBuilder, consumerIdOf } from "../src/command-builder.ts";
import { InvalidRequestError } from "../src/node-errors.ts";

const b = new CommandBuilder();


describe("command builder", () => {
  it("maps a publish request to one Publish command per message", () => {
    const commands = b.publish({ messages: [{ exchange: "x", routingKey: "a", producerId: "p", sequence: 7, body: new Uint8Array([1]) }, { routingKey: "b" }] });
    expect(commands.map((c) => [c.publish?.exchange, c.publish?.routingKey, c.publish?.sequence])).toEqual([
      ["x", "a", 7],
      ["", "b", 0],
    ]);
  });

  it("names the consumer after its session and tag", () => {
    const c = b.subscribe("1.abc-4", { queue: "q", prefetch: 10, consumerTag: "worker" });
    expect(c.subscribe).toMatchObject({ consumerId: consumerIdOf("1.abc-4", "worker"), sessionId: "1.abc-4", queue: "q", prefetch: 10 });
    expect(b.settle("1.abc-4", "nack", { consumerTag: "worker", deliveryTag: 5, requeue: true }).nack).toMatchObject({ consumerId: "1.abc-4/worker", deliveryTag: 5, requeue: true });
  });

  it("refuses invalid input before anything is proposed, with actionable messages", () => {
    expect(failure(() => b.declareExchange({ name: "e" }))).toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringMatching(/needs a type/) });
    expect(failure(() => b.publish({ messages: [] }))).toMatchObject({ name: "InvalidRequestError" });
    expect(failure(() => b.publish({ messages: [{ routingKey: "q" }, { routingKey: "q", properties: { priority: 300 } }] }))).toMatchObject({
      code: "INVALID_ARGUMENT",
      message: expect.stringMatching(/^message 1: priority 300/),
    });
    expect(failure(() => b.subscribe("s", { queue: "q" }))).toMatchObject({ name: "InvalidRequestError", message: expect.stringMatching(/consumer_tag/) });
    expect(failure(() => b.declareQueue({ name: "ex", exclusive: true }))).toMatchObject({ name: "InvalidRequestError", message: expect.stringMatching(/session_id/) });
    expect(failure(() => b.bind({ exchange: "", queue: "q" }))).toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringMatching(/exchange name must not be empty/) });
    expect(failure(() => b.get({ queue: "" }))).toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(() => b.settle("s", "ack", { deliveryTag: 1 })).toThrow(InvalidRequestError);
  });

  it("builds exchange.bind and exchange.unbind with destinationExchange; a queue binding has no such field", () => {
    const bind = b.bind({ exchange: "src", destinationExchange: "dst", routingKey: "k" }, "v");
    expect(bind).toEqual({ bind: { exchange: "src", queue: "", routingKey: "k", arguments: [], sessionId: "", vhost: "v", destinationExchange: "dst" } });
    expect(b.unbind({ exchange: "src", destinationExchange: "dst" }).unbind).toMatchObject({ exchange: "src", queue: "", destinationExchange: "dst" });
    // As a gRPC handler gets them: decoded, the field absent unless the client set it.
    const decoded = (props: raftmq.v1.BindRequest.$Properties) => raftmq.v1.BindRequest.decode(raftmq.v1.BindRequest.encode(props).finish());
    const toQueue = b.bind(decoded({ exchange: "src", queue: "q" }));
    expect(Object.keys(toQueue.bind ?? {})).not.toContain("destinationExchange");
    expect(raftmq.v1.Command.encode(toQueue).finish()).toEqual(raftmq.v1.Command.encode({ bind: { exchange: "src", queue: "q", routingKey: "", arguments: [], sessionId: "" } }).finish());
    // Set to "", it names the default exchange: it passes here and the broker refuses it.
    expect(b.bind(decoded({ exchange: "src", destinationExchange: "" })).bind?.destinationExchange).toBe("");

    // What the state machine makes of the built commands.
    const broker = new Broker();
    let index = 0;
    const apply = (command: raftmq.v1.Command.$Properties) => broker.apply(command, { index: ++index, timestamp: 1 }).result;
    apply({ setClusterSettings: { machineVersion: MACHINE_VERSION } });
    apply(b.declareExchange({ name: "src", type: raftmq.v1.ExchangeType.EXCHANGE_TYPE_FANOUT }));
    apply(b.declareExchange({ name: "dst", type: raftmq.v1.ExchangeType.EXCHANGE_TYPE_FANOUT }));
    apply(b.declareQueue({ name: "q" }));
    apply(b.bind({ exchange: "dst", queue: "q" }));
    expect(apply(b.bind({ exchange: "src", destinationExchange: "dst" }))).toEqual({ ok: true, kind: "bind" });
    expect(apply(b.publish({ messages: [{ exchange: "src" }] })[0] as raftmq.v1.Command.$Properties)).toMatchObject({ ok: true, routedQueues: ["q"] });
    expect(apply(b.bind(decoded({ exchange: "src", destinationExchange: "" })))).toMatchObject({ ok: false, error: { code: "PRECONDITION_FAILED", message: expect.stringMatching(/default exchange/) } });
  });

  it("refuses a binding without exactly one destination, and one to an exchange before version 6", () => {
    expect(failure(() => b.bind({ exchange: "src" }))).toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringMatching(/^bind needs a destination: a queue name, or a destination_exchange/) });
    expect(failure(() => b.unbind({ exchange: "src", queue: "q", destinationExchange: "dst" }))).toMatchObject({
      code: "INVALID_ARGUMENT",
      message: expect.stringMatching(/^unbind names both queue "q" and destination_exchange "dst"/),
    });
    const old = new CommandBuilder(defaultLimits, () => 5);
    expect(failure(() => old.bind({ exchange: "src", destinationExchange: "dst" }))).toMatchObject({
      code: "PRECONDITION_FAILED",
      message: 'exchange.bind to exchange "dst" needs state-machine version 6, and the cluster applies version 5: move it to version 6 first (raftmqctl settings, Cluster.SetSettings)',
    });
    expect(old.bind({ exchange: "src", queue: "q" }).bind?.queue).toBe("q");
  });

  it("builds a declare with typed queue arguments", () => {
    const c = b.declareQueue({ name: "q", durable: true, arguments: { maxLength: 10, overflow: raftmq.v1.Overflow.OVERFLOW_REJECT_PUBLISH } });
    expect(c.declareQueue).toMatchObject({ name: "q", durable: true, arguments: { maxLength: 10, overflow: raftmq.v1.Overflow.OVERFLOW_REJECT_PUBLISH } });
  });

  it("builds SetClusterSettings and refuses a version or a setting the broker would refuse", () => {
    expect(b.setClusterSettings({ machineVersion: MACHINE_VERSION, settings: { dedupWindow: 1024 } }).setClusterSettings).toEqual({
      machineVersion: MACHINE_VERSION,
      settings: { dedupWindow: 1024 },
    });
    expect(failure(() => b.setClusterSettings({ settings: { dedupWindow: 1024 } }))).toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringMatching(/machine_version/) });
    expect(failure(() => b.setClusterSettings({ machineVersion: MACHINE_VERSION + 1 }))).toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringMatching(/upgrade every node/) });
    expect(failure(() => b.setClusterSettings({ machineVersion: MACHINE_VERSION, settings: { dedupWindow: 100_000 } }))).toMatchObject({
      code: "INVALID_ARGUMENT",
      message: expect.stringMatching(/dedupWindow must be an integer in \[1, 65536\]/),
    });
  });

  it("checks commands against the cluster's limits in force, read at each check", () => {
    let limits = { ...defaultLimits, maxMessageBytes: 4 };
    const inForce = new CommandBuilder(() => limits);
    expect(failure(() => inForce.publish({ messages: [{ routingKey: "q", body: new Uint8Array(5) }] }))).toMatchObject({ code: "INVALID_ARGUMENT" });
    limits = { ...limits, maxMessageBytes: 5 };
    expect(inForce.publish({ messages: [{ routingKey: "q", body: new Uint8Array(5) }] })).toHaveLength(1);
  });

  it("checks the request limits before the broker's checks, and names the message of a batch", () => {
    // Both a bad priority (the broker's check) and a 20 MiB message_id: the request limit answers.
    expect(failure(() => b.publish({ messages: [{ routingKey: "q" }, { routingKey: "q", properties: { priority: 300, messageId: "m".repeat(20 * 1024 * 1024) } }] }))).toMatchObject({
      code: "INVALID_ARGUMENT",
      message: "message 1: properties.message_id is 20971520 UTF-8 bytes; the limit is 255 (maxPropertyStringBytes)",
    });
  });

  it("refuses a control character in a new name while the state machine still accepts it, so old log entries apply as before", () => {
    const name = "a\u0000b\u0007\n";
    expect(validateCommand({ declareExchange: { name, type: 1 } }, defaultLimits)).toBeNull();
    expect(failure(() => b.declareExchange({ name, type: 1 }))).toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringMatching(/^exchange name .*control characters/) });
  });

  it("takes request limits other than the defaults", () => {
    const strict = new CommandBuilder({ ...defaultLimits, maxMessagesPerPublish: 2, maxDeaths: 0 });
    expect(failure(() => strict.publish({ messages: [{}, {}, {}] }))).toMatchObject({ name: "InvalidRequestError", message: expect.stringMatching(/limit is 2 \(maxMessagesPerPublish\)/) });
    expect(failure(() => strict.publish({ messages: [{ routingKey: "q", properties: { deaths: [{ queue: "q" }] } }] }))).toMatchObject({
      message: "properties.deaths has 1 entries; the limit is 0 (maxDeaths)",
    });
  });

  it("checks the request limits the node's broker has applied: a 200-byte message_id is refused once they are lowered, and accepted once raised", () => {
    const broker = new Broker();
    let index = 0;
    const apply = (settings: raftmq.v1.ClusterSettings.$Properties) => {
      const out = broker.apply({ setClusterSettings: { machineVersion: MACHINE_VERSION, settings } }, { index: ++index, timestamp: 0 });
      if (!out.result.ok) throw new Error(out.result.error.message);
    };
    const builder = new CommandBuilder(
      () => broker.settings(),
      () => broker.machineVersion(),
    );
    const message = { messages: [{ routingKey: "q", properties: { messageId: "m".repeat(200) } }] };
    expect(builder.publish(message)).toHaveLength(1);

    apply({ maxPropertyStringBytes: 100 });
    expect(failure(() => builder.publish(message))).toMatchObject({ code: "INVALID_ARGUMENT", message: "properties.message_id is 200 UTF-8 bytes; the limit is 100 (maxPropertyStringBytes)" });

    apply({ maxPropertyStringBytes: 1000 });
    expect(builder.publish(message)).toHaveLength(1);
    const longer = { messages: [{ routingKey: "q", properties: { messageId: "m".repeat(1001) } }] };
    expect(failure(() => builder.publish(longer))).toMatchObject({ message: expect.stringMatching(/the limit is 1000 \(maxPropertyStringBytes\)$/) });

    apply({ maxMessagesPerPublish: 1, maxDeaths: 0 });
    expect(failure(() => builder.publish({ messages: [{ routingKey: "q" }, { routingKey: "q" }] }))).toMatchObject({ message: expect.stringMatching(/limit is 1 \(maxMessagesPerPublish\)/) });
    expect(failure(() => builder.publish({ messages: [{ routingKey: "q", properties: { deaths: [{ queue: "q" }] } }] }))).toMatchObject({ message: "properties.deaths has 1 entries; the limit is 0 (maxDeaths)" });
  });
});
