// Snapshots carry vhosts with their content, users, permissions and the access version, and read
// back to the same bytes; a snapshot written before vhosts restores with everything in "/" and no
// users.
import { raftmq } from "@raftmq/proto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Broker, type CommandResult, type Effect } from "../src/index.ts";
import { Driver, deliveries, editFirstPiece, ExchangeType } from "./broker-driver.ts";

type Command = raftmq.v1.Command.$Properties;

/** Users, permissions, and in vhost "a": a dead-letter setup, bindings, ready, held and got messages, an exclusive queue. */
function populated(): Driver {
  const d = new Driver();
  d.upgrade();
  d.ok({ addUser: { name: "admin", passwordHash: "$hash$admin", tags: ["administrator"] } });
  d.ok({ addUser: { name: "app", passwordHash: "$hash$app" } });
  for (const vhost of ["a", "b"]) d.ok({ addVhost: { name: vhost } });
  d.ok({ setPermissions: { user: "app", vhost: "a", configure: "^app\\.", write: ".*", read: ".*" } });
  d.ok({ setPermissions: { user: "admin", vhost: "/", configure: ".*", write: ".*", read: ".*" } });
  d.queue("q");
  d.publish("", "q", "root-message");
  d.ok({ declareExchange: { name: "dlx", type: ExchangeType.EXCHANGE_TYPE_FANOUT, vhost: "a" } });
  d.ok({ declareQueue: { name: "dead", vhost: "a" } });
  d.ok({ bind: { exchange: "dlx", queue: "dead", vhost: "a" } });
  d.ok({ declareQueue: { name: "q", vhost: "a", arguments: { deadLetterExchange: "dlx", deliveryLimit: 1 } } });
  d.ok({ bind: { exchange: "amq.topic", queue: "q", routingKey: "#", vhost: "a" } });
  for (let i = 0; i < 20; i++) d.ok({ publish: { exchange: "amq.topic", routingKey: `k.${i}`, body: Buffer.from(`a-${i}`.padEnd(100, ".")), vhost: "a" } });
  d.ok({ subscribe: { consumerId: "ca", sessionId: "s", queue: "q", prefetch: 2, vhost: "a" } });
  d.ok({ get: { queue: "q", sessionId: "s", vhost: "a" } });
  d.ok({ declareQueue: { name: "excl", exclusive: true, ownerSessionId: "s", vhost: "b" } });
  d.ok({ declareQueue: { name: "excl", exclusive: true, ownerSessionId: "s" } });
  return d;
}

/** Commands that exercise what the snapshot must have carried. */
const followUp: Command[] = [
  { nack: { consumerId: "ca", deliveryTag: 1, requeue: true } },
  { nack: { consumerId: "ca", deliveryTag: 3, requeue: true } },
  { publish: { exchange: "amq.topic", routingKey: "late", body: Buffer.from("late"), vhost: "a" } },
  { publish: { routingKey: "q", body: Buffer.from("late-root") } },
  { addUser: { name: "admin" } },
  { setPermissions: { user: "app", vhost: "b", configure: "", write: "", read: ".*" } },
  { deleteVhost: { name: "a" } },
  { sessionDown: { sessionId: "s" } },
  { addVhost: { name: "a" } },
];

function replay(b: Broker, from: number): { result: CommandResult; effects: Effect[] }[] {
  return canonical(followUp.map((c, i) => b.apply(c, { index: from + i + 1, timestamp: 5_000 })));
}

/**
 * Messages as their wire bytes: a message applied from a command object and the same message
 * restored from a snapshot differ in representation only (a Uint8Array or Buffer body, absent or
 * empty properties), which the node's encoding erases.
 */
function canonical<T>(value: T): T {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== "object" || v instanceof Uint8Array) return v;
    const o = v as Record<string, unknown>;
    if ("body" in o && "properties" in o && "routingKey" in o) {
      const m = raftmq.v1.SnapshotMessage.encode(o as raftmq.v1.SnapshotMessage.$Properties).finish();
      return Buffer.from(m).toString("hex");
    }
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, walk(x)]));
  };
  return walk(value) as T;
}

function reads(b: Broker) {
  return {
    vhosts: b.vhosts(),
    users: b.users(),
    permissions: b.listPermissions(),
    accessVersion: b.accessVersion,
    machineVersion: b.machineVersion(),
    topology: b.vhosts().map((v) => [b.listExchanges(v), b.listQueues(v), b.listBindings(v)]),
  };
}

describe("snapshots with vhosts, users and permissions", () => {
  it("restore to the same bytes and the same reads, and answer later commands exactly as the live broker", () => {
    const d = populated();
    const bytes = d.broker.snapshot();
    for (const restored of [Broker.restore(bytes), Broker.restore(Buffer.concat([...d.broker.snapshotPieces(512)]))]) {
      expect(Buffer.from(restored.snapshot()).equals(Buffer.from(bytes))).toBe(true);
      expect(reads(restored)).toEqual(reads(d.broker));
      expect(restored.user("admin")).toEqual({ name: "admin", passwordHash: "$hash$admin", tags: ["administrator"] });
      expect(restored.permissions("app", "a")).toEqual({ configure: "^app\\.", write: ".*", read: ".*" });
      expect(restored.queueInfo("q", "a")).toEqual(d.broker.queueInfo("q", "a"));
      expect(restored.queueInfo("q", "a")?.messagesUnacknowledged).toBe(3);
    }
    const restored = Broker.restore(bytes);
    const live = replay(d.broker, d.index);
    expect(replay(restored, d.index)).toEqual(live);
    // The replay reached what the snapshot carried: held messages dead-lettered in "a", its consumer cancelled.
    expect(live[1]?.result).toEqual({ ok: true, kind: "nack", settled: 1 });
    expect(live[6]?.effects.filter((e) => e.kind === "consumerCancelled").map((e) => e.consumer.id)).toEqual(["ca"]);
    expect(live[7]?.result).toMatchObject({ ok: true, kind: "sessionDown", deletedQueues: ["excl", "excl"] });
    expect(Buffer.from(restored.snapshot()).equals(Buffer.from(d.broker.snapshot()))).toBe(true);
  });

  it("write vhost fields only for vhosts other than \"/\", and list every vhost", () => {
    const first = firstPiece(populated().broker.snapshot());
    expect(first.vhosts.map((v) => v.name)).toEqual(["/", "a", "b"]);
    expect(first.queues.map((q) => `${q.vhost}|${q.name}`)).toEqual(["|q", "|excl", "a|dead", "a|q", "b|excl"]);
    expect(first.exchanges.filter((e) => e.vhost === "").map((e) => e.name)).toEqual(["", "amq.direct", "amq.fanout", "amq.topic", "amq.headers"]);
    expect(first.sessions[0]?.exclusiveQueues).toEqual(["excl", "excl"]);
    expect(first.sessions[0]?.exclusiveQueueVhosts).toEqual(["b", ""]);
    expect(first.users.map((u) => u.name)).toEqual(["admin", "app"]);
    expect(first.permissions.map((p) => `${p.user}@${p.vhost}`)).toEqual(["app@a", "admin@/"]);
    expect(Number(first.accessVersion)).toBe(6);
  });

  it("refuse a snapshot whose queue is in a vhost it does not list, or whose permissions name a missing user", () => {
    const bytes = populated().broker.snapshot();
    const unlisted = editFirstPiece(bytes, (first) => {
      first.vhosts = first.vhosts.filter((v) => v.name !== "b");
    });
    expect(() => Broker.restore(unlisted)).toThrow(/vhost "b", which it does not list/);
    const orphan = editFirstPiece(bytes, (first) => {
      first.users = first.users.filter((u) => u.name !== "app");
    });
    expect(() => Broker.restore(orphan)).toThrow(/permissions of user "app"/);
  });
});

describe("snapshots written before vhosts", () => {
  it('restore with everything in "/", no users, and the same content', () => {
    const d = new Driver();
    d.queue("q", { deadLetterExchange: "dlx" });
    d.exchange("dlx", ExchangeType.EXCHANGE_TYPE_FANOUT);
    d.queue("dead");
    d.bind("dlx", "dead");
    d.ok({ declareQueue: { name: "mine", exclusive: true, ownerSessionId: "s1" } });
    for (let i = 0; i < 5; i++) d.publish("", "q", `m${i}`);
    const held = deliveries(d.subscribe("c", "q", 2).effects);
    d.ok({ get: { queue: "q", sessionId: "s1" } });
    // What the code before vhosts wrote: no vhost list, no vhost fields, no users.
    const old = editFirstPiece(d.broker.snapshot(), (first) => {
      first.vhosts = [];
      for (const s of first.sessions) s.exclusiveQueueVhosts = [];
    });
    const decoded = firstPiece(old);
    expect(JSON.stringify(decoded.toJSON())).not.toMatch(/"vhost|"users|"permissions|"accessVersion/);

    const restored = Broker.restore(old);
    expect(restored.vhosts()).toEqual(["/"]);
    expect(restored.users()).toEqual([]);
    expect(restored.accessVersion).toBe(0);
    expect(reads(restored)).toEqual(reads(d.broker));
    // The state is the one the live broker holds: it writes the same snapshot and answers alike.
    expect(Buffer.from(restored.snapshot()).equals(Buffer.from(d.broker.snapshot()))).toBe(true);
    const more: Command[] = [
      { reject: { consumerId: "c", deliveryTag: held[0]?.deliveryTag ?? 0, requeue: false } },
      { sessionDown: { sessionId: "s1" } },
    ];
    const run = (b: Broker) => canonical(more.map((c, i) => b.apply(c, { index: 100 + i, timestamp: 2_000 })));
    const live = run(d.broker);
    expect(run(restored)).toEqual(live);
    expect(live[1]?.result).toMatchObject({ kind: "sessionDown", deletedQueues: ["mine"] });
    expect(restored.queueInfo("dead")?.messagesReady).toBe(1);
  });

  it("restore a hand-written old single-message snapshot", () => {
    const { ExchangeType: T } = raftmq.v1;
    const builtins = [
      ["", T.EXCHANGE_TYPE_DIRECT],
      ["amq.direct", T.EXCHANGE_TYPE_DIRECT],
      ["amq.fanout", T.EXCHANGE_TYPE_FANOUT],
      ["amq.topic", T.EXCHANGE_TYPE_TOPIC],
      ["amq.headers", T.EXCHANGE_TYPE_HEADERS],
    ] as const;
    const old = raftmq.v1.BrokerSnapshot.encode({
      nowMs: 10,
      lastSweepAtMs: 10,
      nextMessageId: 3,
      nextQueueSeq: 2,
      nextGeneratedName: 1,
      nextGetTag: 1,
      messages: [{ routingKey: "q", body: Buffer.from("one") }, { routingKey: "q", body: Buffer.from("two") }],
      exchanges: [
        ...builtins.map(([name, type]) => ({ name, type, durable: true, builtin: true, hadBinding: name === "amq.fanout", bindings: name === "amq.fanout" ? [{ queue: "q" }] : [] })),
      ],
      queues: [{ name: "q", seq: 1, lastUsedAtMs: 10, ready: [{ id: 2, messageRef: 1 }] }],
      consumers: [{ id: "c", sessionId: "s", queue: "q", nextTag: 2, inflight: [{ deliveryTag: 1, message: { id: 1, messageRef: 0, deliveryCount: 1 } }] }],
      sessions: [{ id: "s", consumers: ["c"] }],
    }).finish();
    expect(old[0]).not.toBe(0);
    const b = Broker.restore(old);
    expect(b.vhosts()).toEqual(["/"]);
    expect(b.userCount).toBe(0);
    expect(b.machineVersion()).toBe(1);
    expect(b.queueInfo("q")).toMatchObject({ messagesReady: 1, messagesUnacknowledged: 1, consumers: 1 });
    expect(b.listBindings()).toEqual([{ exchange: "amq.fanout", queue: "q", destinationExchange: "", routingKey: "", arguments: [] }]);
    const out = b.apply({ publish: { exchange: "amq.fanout", body: Buffer.from("three") } }, { index: 1, timestamp: 20 });
    expect(out.result).toMatchObject({ ok: true, routedQueues: ["q"] });
  });
});

describe("determinism across vhosts", () => {
  type Op =
    | { op: "declare" | "publish" | "purge" | "deleteQueue"; vhost: string; queue: string }
    | { op: "subscribe"; vhost: string; queue: string; consumer: string }
    | { op: "ack"; consumer: string; tag: number }
    | { op: "addVhost" | "deleteVhost"; vhost: string }
    | { op: "user"; user: string; vhost: string; action: "add" | "grant" | "delete" }
    | { op: "sessionDown" };
  const vhostArb = fc.constantFrom("/", "a", "b");
  const queueArb = fc.constantFrom("q", "r");
  const consumerArb = fc.constantFrom("c1", "c2", "c3");
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    { weight: 3, arbitrary: fc.record({ op: fc.constantFrom("declare" as const, "publish" as const, "purge" as const, "deleteQueue" as const), vhost: vhostArb, queue: queueArb }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant("publish" as const), vhost: vhostArb, queue: queueArb }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("subscribe" as const), vhost: vhostArb, queue: queueArb, consumer: consumerArb }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant("ack" as const), consumer: consumerArb, tag: fc.integer({ min: 1, max: 5 }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constantFrom("addVhost" as const, "deleteVhost" as const), vhost: fc.constantFrom("a", "b") }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("user" as const), user: fc.constantFrom("u", "w"), vhost: vhostArb, action: fc.constantFrom("add" as const, "grant" as const, "delete" as const) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant("sessionDown" as const) }) },
  );

  function command(o: Op, n: number): Command {
    switch (o.op) {
      case "declare":
        return { declareQueue: { name: o.queue, vhost: o.vhost, arguments: { deadLetterExchange: "amq.fanout" } } };
      case "publish":
        return { publish: { routingKey: o.queue, body: Buffer.from(`m${n}`), vhost: o.vhost } };
      case "purge":
        return { purgeQueue: { name: o.queue, vhost: o.vhost } };
      case "deleteQueue":
        return { deleteQueue: { name: o.queue, vhost: o.vhost } };
      case "subscribe":
        return { subscribe: { consumerId: o.consumer, sessionId: "s", queue: o.queue, prefetch: 2, vhost: o.vhost } };
      case "ack":
        return { nack: { consumerId: o.consumer, deliveryTag: o.tag, requeue: false } };
      case "addVhost":
        return { addVhost: { name: o.vhost } };
      case "deleteVhost":
        return { deleteVhost: { name: o.vhost } };
      case "user":
        if (o.action === "add") return { addUser: { name: o.user } };
        if (o.action === "grant") return { setPermissions: { user: o.user, vhost: o.vhost, configure: "", write: `${n}`, read: "" } };
        return { deleteUser: { name: o.user } };
      case "sessionDown":
        return { sessionDown: { sessionId: "s" } };
    }
  }

  it("a broker restored at any point of a log across vhosts answers, and encodes, exactly as the live one", () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80 }), fc.nat(), (ops, cut) => {
        const setup: Command[] = [{ setClusterSettings: { machineVersion: 2 } }, { addUser: { name: "u" } }, { addVhost: { name: "a" } }];
        const log = [...setup, ...ops.map(command)].map((c, i) => raftmq.v1.CommandBatch.encode({ timestampMs: 1_000 + i, commands: [c] }).finish());
        const at = cut % log.length;
        const live = new Broker();
        for (let i = 0; i < at; i++) live.applyEntry(i + 1, log[i] as Uint8Array);
        const restored = Broker.restore(live.snapshot());
        expect(Buffer.from(restored.snapshot()).equals(Buffer.from(live.snapshot()))).toBe(true);
        const rest = (b: Broker) => canonical(log.slice(at).map((data, i) => b.applyEntry(at + i + 1, data)));
        expect(rest(restored)).toEqual(rest(live));
        expect(Buffer.from(restored.snapshot()).equals(Buffer.from(live.snapshot()))).toBe(true);
        expect(reads(restored)).toEqual(reads(live));
      }),
      { numRuns: 200 },
    );
  });
});

function firstPiece(bytes: Uint8Array): raftmq.v1.BrokerSnapshot {
  let captured: raftmq.v1.BrokerSnapshot | undefined;
  editFirstPiece(bytes, (first) => {
    captured = first;
  });
  if (captured === undefined) throw new Error("no first piece");
  return captured;
}
