// Crash and restart: SIGKILL of the leader while publishing loses no confirmed message and
// redelivers unacknowledged ones; a full stop and restart keeps queues, bindings and messages.
import { describe, expect, it } from "vitest";
import { eventually, GrpcStatus, publishReliably, raftmq, sleep, TestConsumer, waitForLeader } from "./broker-test-client.ts";
import { useThreeNodeCluster } from "./three-node-cluster.ts";

const { harness, ids, clients, client } = useThreeNodeCluster("failover");

describe("failures", () => {
  it("survives SIGKILL of the leader during publishing: no confirmed message lost, unacked ones redelivered", async () => {
    const leader = await waitForLeader([...clients.values()]);
    const [consumerNode, producerNode] = ids.filter((id) => id !== leader) as [number, number];
    await client(producerNode).call("DeclareQueue", { name: "jobs", durable: true });
    await client(producerNode).call("Publish", { messages: Array.from({ length: 20 }, (_, i) => ({ routingKey: "jobs", producerId: "p-early", sequence: i + 1, body: new TextEncoder().encode(String(100_000 + i)) })) });

    // A consumer that takes 20 messages and never acks them.
    const holder = new TestConsumer(client(consumerNode), "jobs", { prefetch: 20, tag: "holder", ack: false });
    await holder.subscribed;
    await eventually("held deliveries", async () => (holder.received.length === 20 ? true : undefined));

    const total = 3000;
    let killed = false;
    const publishing = publishReliably(client(producerNode), { exchange: "", routingKey: "jobs", producerId: "p-failover", total, perRequest: 20, window: 8 }, (n) => {
      if (!killed && n >= 1000) {
        killed = true;
        void harness.stop(leader, "SIGKILL");
      }
    });
    const { confirmed, nacked, streamFailures } = await publishing;
    expect(killed).toBe(true);
    expect(nacked).toEqual([]);
    expect(confirmed.size).toBe(total);
    expect(streamFailures).toBeGreaterThan(0);

    // The holder's session was on the old leader and went down with it; its stream, held by a
    // follower, did not: the follower moved the consumer to the new leader, which gave it the
    // same 20 again (returned messages go back to the head), redelivered, with higher tags.
    await eventually("the holder's stream resumed", async () => (holder.kinds.filter((k) => k === "session").length === 2 ? true : undefined), 30_000);
    await eventually("the 20 held again", async () => (holder.received.length === 40 ? true : undefined));
    const again = holder.received.slice(20);
    expect(again.map((m) => m.seq)).toEqual(Array.from({ length: 20 }, (_, i) => 100_000 + i));
    expect(again.every((m) => m.redelivered && m.deliveryTag > 20)).toBe(true);

    const survivors = ids.filter((id) => id !== leader).map(client);
    const next = await waitForLeader(survivors);
    expect(next).not.toBe(leader);

    // The holder goes away: its 20 messages return once more.
    holder.cancel();
    const ended = await holder.ended;
    expect(ended.code).toBe(GrpcStatus.CANCELLED);
    const drained = new TestConsumer(client(consumerNode), "jobs", { prefetch: 200, tag: "drain" });
    await drained.subscribed;
    const expected = 20 + total;
    await eventually("drained everything", async () => (drained.received.length >= expected ? true : undefined), 30_000);
    await sleep(300);
    const seqs = drained.received.map((m) => m.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs.length).toBe(expected);
    for (const seq of confirmed) expect(seqs).toContain(seq);
    const redelivered = drained.received.filter((m) => m.redelivered).map((m) => m.seq);
    expect(redelivered).toEqual(Array.from({ length: 20 }, (_, i) => 100_000 + i));
    drained.end();
    await drained.ended;
    await harness.start(leader, { members: ids });
    await waitForLeader([...clients.values()]);
  });

  it("keeps queues, bindings and messages across a stop and restart of every node", async () => {
    const leader = await waitForLeader([...clients.values()]);
    const c = client(leader);
    await c.call("DeclareExchange", { name: "durable-x", type: raftmq.v1.ExchangeType.EXCHANGE_TYPE_DIRECT, durable: true });
    await c.call("DeclareQueue", { name: "kept", durable: true });
    await c.call("Bind", { exchange: "durable-x", queue: "kept", routingKey: "k" });
    await c.call("Publish", { messages: Array.from({ length: 50 }, (_, i) => ({ exchange: "durable-x", routingKey: "k", body: new TextEncoder().encode(String(i)) })) });

    const exits = await Promise.all(ids.map((id) => harness.stop(id, "SIGTERM")));
    for (const e of exits) expect(e.code).toBe(0);
    await harness.startAll(3);
    await waitForLeader([...clients.values()]);

    for (const id of ids) {
      const info = await client(id).callRetrying("QueueInfo", { name: "kept" });
      expect(Number(info.queue?.messagesReady)).toBe(50);
      expect(info.queue?.durable).toBe(true);
      const bindings = await client(id).callRetrying("ListBindings", { queue: "kept" });
      expect(bindings.bindings.map((b) => [b.exchange, b.routingKey])).toContainEqual(["durable-x", "k"]);
    }
    const consumer = new TestConsumer(client(ids[0] as number), "kept", { prefetch: 100, tag: "after-restart" });
    await consumer.subscribed;
    await eventually("all kept messages", async () => (consumer.received.length >= 50 ? true : undefined));
    expect(consumer.received.map((m) => m.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    consumer.end();
    await consumer.ended;
    // New messages still route through the restored binding.
    const routed = await client(ids[1] as number).callRetrying("Publish", { messages: [{ exchange: "durable-x", routingKey: "k", body: new Uint8Array([1]) }] });
    expect(routed.confirms[0]?.routedQueues).toEqual(["kept"]);
  });
});
