// A 3-node cluster of real processes: it forms, moves 10,000 confirmed messages from a producer on
// one follower to a consumer on another node exactly once and in order, and refuses bad input.
import { testAuth } from "./three-node-cluster.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, GrpcStatus, isServiceError, publishRange, raftmq, sleep, TestClient, TestConsumer, waitForLeader } from "./broker-test-client.ts";
import { ClusterHarness } from "./cluster-harness.ts";
import { decodeStatusDetails, google, STATUS_DETAILS_METADATA_KEY } from "@raftmq/proto";
import type { Metadata } from "@raftmq/server";

const harness = new ClusterHarness("basics");
const clients = new Map<number, TestClient>();

function client(id: number): TestClient {
  const c = clients.get(id);
  if (c === undefined) throw new Error(`no client for node ${id}`);
  return c;
}

async function expectStatus(promise: Promise<unknown>, code: number, pattern: RegExp): Promise<void> {
  try {
    await promise;
  } catch (err) {
    if (!isServiceError(err)) throw err;
    expect({ code: err.code, details: err.details }).toMatchObject({ code, details: expect.stringMatching(pattern) });
    return;
  }
  throw new Error(`expected status ${GrpcStatus[code]}, but the call succeeded`);
}

let leader = 0;
let followers: number[] = [];

beforeAll(async () => {
  await harness.plan(3);
  await harness.startAll(3);
  for (const s of harness.specs) clients.set(s.id, new TestClient(harness.clientAddress(s.id), testAuth(harness)));
  leader = await waitForLeader([...clients.values()]);
  followers = harness.specs.map((s) => s.id).filter((id) => id !== leader);
});

afterAll(async () => {
  for (const c of clients.values()) c.close();
  await harness.cleanup();
});

describe("a 3-node cluster", () => {
  it("elects one leader that every node reports, with all three members", async () => {
    for (const c of clients.values()) {
      const s = await c.call("Status", {});
      expect(Number(s.leaderId)).toBe(leader);
      expect(s.members.map((m) => Number(m.id))).toEqual([1, 2, 3]);
      expect(s.leaderClientAddress).toBe(harness.clientAddress(leader));
    }
  });

  it("delivers 10,000 messages published through a follower to a consumer on another node, exactly once and in order", async () => {
    const [producerNode, consumerNode] = followers as [number, number];
    await client(producerNode).call("DeclareQueue", { name: "orders", durable: true });
    const total = 10_000;
    const published = await publishRange(client(producerNode), { exchange: "", routingKey: "orders", producerId: "p-basics", from: 0, to: total, perRequest: 50, window: 8 });
    expect(published.nacked).toEqual([]);
    expect(published.confirmed.length).toBe(total);

    const info = await client(consumerNode).call("QueueInfo", { name: "orders" });
    expect(Number(info.queue?.messagesReady)).toBe(total);

    const consumer = new TestConsumer(client(consumerNode), "orders", { prefetch: 500, tag: "c-basics" });
    await consumer.subscribed;
    await eventually("all deliveries", async () => (consumer.received.length >= total ? true : undefined), 60_000);
    expect(consumer.errors).toEqual([]);
    const seqs = consumer.received.map((m) => m.seq);
    expect(seqs.length).toBe(total);
    expect(seqs).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(consumer.received.some((m) => m.redelivered)).toBe(false);

    // Acks are commands too: once committed the queue is empty on every node.
    await eventually("acks applied", async () => {
      const q = await client(producerNode).call("QueueInfo", { name: "orders" });
      return Number(q.queue?.messagesReady) === 0 && Number(q.queue?.messagesUnacked) === 0 ? true : undefined;
    });
    consumer.end();
    await consumer.ended;
  });

  it("answers a unary publish through a follower after commit, with routed queues", async () => {
    const follower = followers[0] as number;
    await client(follower).call("DeclareQueue", { name: "unary" });
    const res = await client(follower).call("Publish", { messages: [{ exchange: "", routingKey: "unary", body: new Uint8Array([1, 2, 3]) }] });
    expect(res.confirms).toHaveLength(1);
    expect(res.confirms[0]?.status).toBe(raftmq.v1.ConfirmStatus.CONFIRM_STATUS_ACK);
    expect(res.confirms[0]?.routedQueues).toEqual(["unary"]);
    const got = await client(leader).call("Get", { queue: "unary" });
    expect(Array.from(got.delivery?.body ?? [])).toEqual([1, 2, 3]);
    const empty = await client(follower).call("Get", { queue: "unary" });
    expect(empty.delivery).toBeFalsy();
  });

  it("sends a consumer that asks for batches the deliveries of one apply in one stream message, and one each to a consumer that does not", async () => {
    const follower = followers[0] as number;
    for (const batch of [true, false]) {
      const queue = `batches-${batch}`;
      await client(follower).call("DeclareQueue", { name: queue });
      await client(follower).call("Publish", { messages: Array.from({ length: 20 }, (_, i) => ({ exchange: "", routingKey: queue, body: new TextEncoder().encode(String(i)) })) });
      // The subscription's apply hands out the whole backlog, as far as the prefetch allows.
      const consumer = new TestConsumer(client(follower), queue, { prefetch: 20, tag: "b", ack: false, batch });
      await eventually("20 deliveries", async () => (consumer.received.length === 20 ? true : undefined));
      expect(consumer.received.map((m) => m.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(consumer.received.map((m) => m.deliveryTag)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(consumer.messageSizes).toEqual(batch ? [20] : Array.from({ length: 20 }, () => 1));
      // The apply that subscribes also delivers, yet the client hears of the subscription first.
      expect(consumer.kinds.slice(0, 3)).toEqual(["session", "subscribed", batch ? "deliveries" : "delivery"]);
      expect(consumer.kinds.filter((k) => k === "subscribed")).toEqual(["subscribed"]);
      consumer.end();
      await consumer.ended;
    }
  });

  it("proposes the single acks a stream sends together as one command per consumer, and answers an unknown tag among them alone", async () => {
    const follower = followers[0] as number;
    await client(follower).call("DeclareQueue", { name: "ack-each" });
    await client(follower).call("Publish", { messages: Array.from({ length: 300 }, (_, i) => ({ routingKey: "ack-each", body: new TextEncoder().encode(String(i)) })) });
    const consumer = new TestConsumer(client(follower), "ack-each", { prefetch: 300, tag: "each", ack: false });
    await eventually("300 deliveries", async () => (consumer.received.length === 300 ? true : undefined));
    const spec = harness.specs.find((x) => x.id === leader);
    const proposed = async () => {
      const res = await fetch(`http://127.0.0.1:${spec?.httpPort}/metrics`, { signal: AbortSignal.timeout(5_000) });
      const m = /^raftmq_proposed_commands_total ([0-9.e+]+)$/m.exec(await res.text());
      return Number(m?.[1]);
    };
    const before = await proposed();
    // 300 single acks written at once, an unknown tag among them.
    for (const m of consumer.received.slice(0, 150)) consumer.ack(m.deliveryTag, false);
    consumer.ack(9999, false);
    for (const m of consumer.received.slice(150)) consumer.ack(m.deliveryTag, false);
    await eventually("every ack applied", async () => {
      const q = (await client(leader).call("QueueInfo", { name: "ack-each" })).queue;
      return Number(q?.messagesUnacked) === 0 && Number(q?.messagesReady) === 0 ? true : undefined;
    });
    await eventually("the unknown tag's error", async () => (consumer.errors.length > 0 ? true : undefined));
    expect(consumer.errors).toEqual([expect.stringMatching(/^9: unknown delivery tag 9999 on consumer .*each$/)]);
    expect(consumer.errorTags).toEqual([9999]);
    // One Ack each would be 301 commands; gathered per turn they are a handful.
    expect(Number.isFinite(before)).toBe(true);
    expect((await proposed()) - before).toBeLessThan(60);
    consumer.end();
    await consumer.ended;
  });

  it("answers a retry older than the producer's dedup window with its own confirm status, alone or in a batch, and enqueues nothing", async () => {
    const c = client(leader);
    await c.call("DeclareQueue", { name: "window-passed" });
    const window = Number((await c.call("Status", {})).settings?.dedupWindow);
    expect(window).toBeGreaterThan(0);
    const total = window + 10;
    const published = await publishRange(c, { exchange: "", routingKey: "window-passed", producerId: "p-window", from: 0, to: total, perRequest: 100, window: 4 });
    // Sequences 1 … total: the window covers the newest `window` of them, 11 … total.
    expect(published.confirmed.length).toBe(total);
    const message = (sequence: number) => ({ routingKey: "window-passed", body: new TextEncoder().encode(String(sequence)), producerId: "p-window", sequence });
    // Alone: a confirm, not a status, since the broker neither took nor refused it.
    const alone = await c.call("Publish", { messages: [message(1)] });
    expect(alone.confirms).toEqual([expect.objectContaining({ status: raftmq.v1.ConfirmStatus.CONFIRM_STATUS_OUTCOME_UNKNOWN, reason: expect.stringMatching(/^outcome unknown to the broker: sequence 1 of producer "p-window" is older than its dedup window/) })]);
    // In a batch, beside a retry the window still covers (a duplicate) and a new sequence.
    const batch = await c.call("Publish", { messages: [message(2), message(total), message(total + 1)] });
    expect(batch.confirms.map((x) => [x.status, x.duplicate ?? false])).toEqual([
      [raftmq.v1.ConfirmStatus.CONFIRM_STATUS_OUTCOME_UNKNOWN, false],
      [raftmq.v1.ConfirmStatus.CONFIRM_STATUS_ACK, true],
      [raftmq.v1.ConfirmStatus.CONFIRM_STATUS_ACK, false],
    ]);
    expect(Number((await c.call("QueueInfo", { name: "window-passed" })).queue?.messagesReady)).toBe(total + 1);
  });

  it("answers a marked retry of an evicted producer as of unknown outcome, and an unmarked one as new", async () => {
    const c = client(followers[0] as number);
    await c.call("DeclareQueue", { name: "evicted-retry" });
    const status = await c.call("Status", {});
    const maxProducers = Number(status.settings?.maxProducers);
    const message = (producerId: string, retry: boolean) => ({ routingKey: "evicted-retry", body: new TextEncoder().encode(producerId), producerId, sequence: 1, retry });
    const first = await c.call("Publish", { messages: [message("p-evicted", false)] });
    expect(first.confirms[0]?.status).toBe(raftmq.v1.ConfirmStatus.CONFIRM_STATUS_ACK);
    // While remembered, a marked retry is a duplicate.
    expect((await c.call("Publish", { messages: [message("p-evicted", true)] })).confirms[0]).toMatchObject({ status: raftmq.v1.ConfirmStatus.CONFIRM_STATUS_ACK, duplicate: true });
    await c.call("SetSettings", { machineVersion: status.machineVersion, settings: { maxProducers: 1 } });
    try {
      // The newest producer is the only one remembered.
      await c.call("Publish", { messages: [message("p-newer", false)] });
      const retried = await c.call("Publish", { messages: [message("p-evicted", true)] });
      expect(retried.confirms).toEqual([
        expect.objectContaining({
          status: raftmq.v1.ConfirmStatus.CONFIRM_STATUS_OUTCOME_UNKNOWN,
          reason: expect.stringMatching(/^outcome unknown to the broker: retry of sequence 1: the broker has no record of producer "p-evicted" \(.*evicted past 1 producers/),
        }),
      ]);
      expect(Number((await c.call("QueueInfo", { name: "evicted-retry" })).queue?.messagesReady)).toBe(2);
      // Unmarked, the same pair is taken as a new message: the mark is what tells a retry.
      expect((await c.call("Publish", { messages: [message("p-evicted", false)] })).confirms[0]).toMatchObject({ status: raftmq.v1.ConfirmStatus.CONFIRM_STATUS_ACK, duplicate: false });
      expect(Number((await c.call("QueueInfo", { name: "evicted-retry" })).queue?.messagesReady)).toBe(3);
    } finally {
      await c.call("SetSettings", { machineVersion: status.machineVersion, settings: { maxProducers } });
    }
  });

  it("gives a failed call standard structured details: google.rpc.Status with an ErrorInfo of reason and outcome", async () => {
    const failed = async (call: Promise<unknown>) => {
      try {
        await call;
      } catch (err) {
        if (!isServiceError(err)) throw err;
        const bytes = err.metadata.get(STATUS_DETAILS_METADATA_KEY)[0];
        if (!(bytes instanceof Buffer)) throw new Error(`status ${err.code} "${err.details}" carries no grpc-status-details-bin`);
        const status = google.rpc.Status.decode(bytes);
        return { code: err.code, statusCode: status.code, details: decodeStatusDetails(bytes) };
      }
      throw new Error("the call succeeded");
    };
    const follower = client(followers[0] as number);
    // Refused before anything is proposed, on the node called.
    expect(await failed(follower.call("DeclareQueue", { name: "".padEnd(300, "q") }))).toEqual({
      code: GrpcStatus.INVALID_ARGUMENT,
      statusCode: GrpcStatus.INVALID_ARGUMENT,
      details: { reason: "INVALID_ARGUMENT", outcome: "refused" },
    });
    // Refused by the broker on the leader, relayed by the follower.
    expect(await failed(follower.call("Bind", { exchange: "no-such-exchange", queue: "no-such-queue", routingKey: "" }))).toEqual({
      code: GrpcStatus.NOT_FOUND,
      statusCode: GrpcStatus.NOT_FOUND,
      details: { reason: "NOT_FOUND", outcome: "refused" },
    });
  });

  it("sends heartbeats on an idle Consume stream at the interval the client asks for, through a follower too", async () => {
    const watch = async (node: number, extra: Record<string, string>, forMs: number) => {
      const stream = client(node).consume(extra);
      const kinds: string[] = [];
      let heartbeatMs = -1;
      stream.on("data", (r: raftmq.v1.ConsumeResponse) => {
        kinds.push(r.kind ?? "");
        if (r.kind === "session") heartbeatMs = Number(r.session?.heartbeatMs ?? 0);
      });
      const status = new Promise<{ code: number; details: string; metadata: Metadata }>((resolve) => stream.on("status", resolve));
      stream.on("error", () => {});
      await sleep(forMs);
      stream.end();
      stream.cancel();
      return { kinds, heartbeatMs, status: await status };
    };
    for (const node of [leader, followers[0] as number]) {
      const asked = await watch(node, { "raftmq-heartbeat-ms": "200" }, 1100);
      expect(asked.heartbeatMs).toBe(200);
      expect(asked.kinds[0]).toBe("session");
      expect(asked.kinds.filter((k) => k === "heartbeat").length).toBeGreaterThanOrEqual(3);
      const none = await watch(node, {}, 700);
      expect([none.heartbeatMs, none.kinds]).toEqual([0, ["session"]]);
    }
    const refused = await watch(leader, { "raftmq-heartbeat-ms": "5" }, 300);
    expect([refused.status.code, refused.status.details]).toEqual([GrpcStatus.INVALID_ARGUMENT, 'raftmq-heartbeat-ms must be one whole number of milliseconds from 100 to 60000, got ["5"]']);
    expect(decodeStatusDetails(refused.status.metadata.get(STATUS_DETAILS_METADATA_KEY)[0] as Buffer)).toEqual({ reason: "INVALID_REQUEST", outcome: "refused" });
  });

  it("lists queues, exchanges and bindings linearizably on any node", async () => {
    const follower = followers[1] as number;
    await client(follower).call("DeclareExchange", { name: "events", type: raftmq.v1.ExchangeType.EXCHANGE_TYPE_TOPIC, durable: true });
    await client(follower).call("DeclareQueue", { name: "audit" });
    await client(follower).call("Bind", { exchange: "events", queue: "audit", routingKey: "user.*" });
    // Read right after the write, on another follower: ReadIndex makes the write visible.
    const other = followers[0] as number;
    const bindings = await client(other).call("ListBindings", { exchange: "events" });
    expect(bindings.bindings.map((b) => [b.exchange, b.queue, b.routingKey])).toEqual([["events", "audit", "user.*"]]);
    const exchanges = await client(other).call("ListExchanges", {});
    expect(exchanges.exchanges.find((e) => e.name === "events")?.type).toBe(raftmq.v1.ExchangeType.EXCHANGE_TYPE_TOPIC);
    const queues = await client(other).call("ListQueues", {});
    expect(queues.queues.map((q) => q.name)).toEqual(expect.arrayContaining(["orders", "unary", "audit"]));
    const routed = await client(other).call("Publish", { messages: [{ exchange: "events", routingKey: "user.created", body: new Uint8Array([7]) }] });
    expect(routed.confirms[0]?.routedQueues).toEqual(["audit"]);
    await client(other).call("Unbind", { exchange: "events", queue: "audit", routingKey: "user.*" });
    const purged = await client(other).call("PurgeQueue", { name: "audit" });
    expect(Number(purged.messageCount)).toBe(1);
    await client(other).call("DeleteQueue", { name: "audit" });
    await client(other).call("DeleteExchange", { name: "events" });
    const after = await client(leader).call("ListExchanges", {});
    expect(after.exchanges.some((e) => e.name === "events")).toBe(false);
  });

  it("routes through an exchange-to-exchange binding, which a fresh cluster's leader enables (state-machine version 6)", async () => {
    const [a, b] = followers as [number, number];
    // The leader moves a new cluster to the newest version by itself, soon after its election.
    await eventually("state-machine version 6", async () => (Number((await client(a).call("Status", {})).machineVersion) >= 6 ? true : undefined));
    await client(a).call("DeclareExchange", { name: "e2e-src", type: raftmq.v1.ExchangeType.EXCHANGE_TYPE_TOPIC });
    await client(a).call("DeclareExchange", { name: "e2e-dst", type: raftmq.v1.ExchangeType.EXCHANGE_TYPE_FANOUT, internal: true });
    await client(a).call("DeclareQueue", { name: "e2e-q" });
    await client(a).call("Bind", { exchange: "e2e-dst", queue: "e2e-q" });
    await client(a).call("Bind", { exchange: "e2e-src", destinationExchange: "e2e-dst", routingKey: "a.*" });
    await client(a).call("Bind", { exchange: "e2e-src", queue: "e2e-q", routingKey: "#" });
    const listed = await client(b).call("ListBindings", { destinationExchange: "e2e-dst" });
    expect(listed.bindings.map((x) => [x.exchange, x.queue, x.destinationExchange, x.routingKey])).toEqual([["e2e-src", "", "e2e-dst", "a.*"]]);
    // Two paths to one queue: one copy.
    const routed = await client(b).call("Publish", { messages: [{ exchange: "e2e-src", routingKey: "a.b", body: new Uint8Array([1]) }] });
    expect(routed.confirms[0]?.routedQueues).toEqual(["e2e-q"]);
    await expectStatus(client(b).call("Bind", { exchange: "e2e-src", destinationExchange: "no-such-exchange" }), GrpcStatus.NOT_FOUND, /no exchange "no-such-exchange"/);
    await expectStatus(client(b).call("Bind", { exchange: "e2e-src" }), GrpcStatus.INVALID_ARGUMENT, /needs a destination/);
    // Deleting the destination removes the binding on every node.
    await client(b).call("DeleteExchange", { name: "e2e-dst" });
    expect((await client(a).call("ListBindings", { exchange: "e2e-src" })).bindings.map((x) => x.queue)).toEqual(["e2e-q"]);
    await client(a).call("DeleteQueue", { name: "e2e-q" });
    await client(a).call("DeleteExchange", { name: "e2e-src" });
  });

  it("answers bad input with INVALID_ARGUMENT or NOT_FOUND and a message that says what to fix", async () => {
    const f = client(followers[0] as number);
    await expectStatus(f.call("DeclareExchange", { name: "typeless" }), GrpcStatus.INVALID_ARGUMENT, /needs a type/);
    await expectStatus(f.call("DeclareQueue", { name: "q".repeat(300) }), GrpcStatus.INVALID_ARGUMENT, /longer than 255 bytes/);
    await expectStatus(f.call("Publish", { messages: [] }), GrpcStatus.INVALID_ARGUMENT, /at least one message/);
    await expectStatus(
      f.call("Publish", { messages: [{ exchange: "", routingKey: "orders", properties: { expiration: "soon" } }] }),
      GrpcStatus.INVALID_ARGUMENT,
      /expiration "soon"/,
    );
    await expectStatus(f.call("Publish", { messages: [{ exchange: "no-such-exchange", routingKey: "x" }] }), GrpcStatus.NOT_FOUND, /no exchange "no-such-exchange"/);
    await expectStatus(f.call("Bind", { exchange: "amq.direct", queue: "no-such-queue" }), GrpcStatus.NOT_FOUND, /no-such-queue/);
    await expectStatus(f.call("QueueInfo", { name: "no-such-queue" }), GrpcStatus.NOT_FOUND, /no queue "no-such-queue"/);
    await expectStatus(f.call("Get", { queue: "" }), GrpcStatus.INVALID_ARGUMENT, /queue name must not be empty/);
    await expectStatus(f.call("DeclareQueue", { name: "orders", passive: false, durable: false }), GrpcStatus.FAILED_PRECONDITION, /orders/);
  });

  it("keeps an exclusive queue to the Consume session that declared it, deletes it when the stream ends, and refuses one for a session that is not open", async () => {
    const [f1, f2] = [client(followers[0] as number), client(followers[1] as number)];
    await f1.call("DeclareQueue", { name: "exclusive-anchor" });
    const owner = new TestConsumer(f1, "exclusive-anchor", { prefetch: 1 });
    const other = new TestConsumer(f2, "exclusive-anchor", { prefetch: 1, tag: "c2" });
    await Promise.all([owner.subscribed, other.subscribed]);
    expect(owner.sessionId).not.toBe("");
    // A server-named queue of the owner's session, declared through another node than its stream.
    const declared = (await f2.call("DeclareQueue", { name: "", exclusive: true, sessionId: owner.sessionId })) as { name: string };
    expect(declared.name).toMatch(/^amq\.gen-/);
    await f1.call("Publish", { messages: [{ routingKey: declared.name, body: new TextEncoder().encode("1") }] });
    const info = (await f2.call("QueueInfo", { name: declared.name })) as raftmq.v1.QueueInfoResponse;
    expect({ exclusive: info.queue?.exclusive, ready: Number(info.queue?.messagesReady) }).toEqual({ exclusive: true, ready: 1 });
    await expectStatus(f2.call("DeclareQueue", { name: declared.name, exclusive: true, sessionId: other.sessionId }), GrpcStatus.FAILED_PRECONDITION, /exclusive to another session/);
    await expectStatus(f2.call("PurgeQueue", { name: declared.name, sessionId: other.sessionId }), GrpcStatus.FAILED_PRECONDITION, /exclusive/);
    // No stream, no exclusive queue: it would have nobody to delete it.
    await expectStatus(f1.call("DeclareQueue", { name: "orphan", exclusive: true, sessionId: "no-such-session" }), GrpcStatus.FAILED_PRECONDITION, /no open Consume stream/);
    owner.end();
    await owner.ended;
    await eventually("the exclusive queue deleted with its session", async () => {
      try {
        await f2.call("QueueInfo", { name: declared.name });
        return undefined;
      } catch (err) {
        return isServiceError(err) && err.code === GrpcStatus.NOT_FOUND ? true : undefined;
      }
    });
    await expectStatus(f1.call("DeclareQueue", { name: "late", exclusive: true, sessionId: owner.sessionId }), GrpcStatus.FAILED_PRECONDITION, /no open Consume stream/);
    await expectStatus(f1.call("QueueInfo", { name: "orphan" }), GrpcStatus.NOT_FOUND, /orphan/);
    other.end();
    await other.ended;
  });

  it("answers an invalid request on a PublishStream with NACKs and keeps the stream for the valid ones", async () => {
    const f = client(followers[1] as number);
    await f.callRetrying("DeclareQueue", { name: "stream-mixed", durable: true });
    const stream = f.publishStream();
    const responses: raftmq.v1.PublishResponse[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on("data", (r: raftmq.v1.PublishResponse) => {
        responses.push(r);
        if (responses.length === 3) stream.end();
      });
      stream.on("error", reject);
      stream.on("end", () => resolve());
    });
    const message = (body: string, expiration = "") => ({ exchange: "", routingKey: "stream-mixed", body: new TextEncoder().encode(body), properties: { expiration } });
    stream.write({ clientSequence: 1, messages: [message("a")] });
    stream.write({ clientSequence: 2, messages: [message("b", "soon"), message("c")] });
    stream.write({ clientSequence: 3, messages: [message("d")] });
    await done;
    const bySequence = new Map(responses.map((r) => [Number(r.clientSequence), r.confirms]));
    const { ACK, NACK } = { ACK: raftmq.v1.ConfirmStatus.CONFIRM_STATUS_ACK, NACK: raftmq.v1.ConfirmStatus.CONFIRM_STATUS_NACK };
    expect(bySequence.get(1)?.map((c) => c.status)).toEqual([ACK]);
    expect(bySequence.get(3)?.map((c) => c.status)).toEqual([ACK]);
    const refused = bySequence.get(2) ?? [];
    expect(refused.map((c) => c.status)).toEqual([NACK, NACK]);
    expect(refused[0]?.reason).toMatch(/INVALID_ARGUMENT: .*expiration "soon"/);
    // Only the valid requests were enqueued.
    const info = await f.callRetrying("QueueInfo", { name: "stream-mixed" });
    expect(Number(info.queue?.messagesReady)).toBe(2);
  });
});
