// A batch of settlements caught by the leader's death: a multiple ack of 60 deliveries is sent
// and the leader is SIGKILLed at once. Whether the ack committed or not, it is one command: the
// 60 are either all settled or all redelivered, never some of each, none is lost and none comes
// twice; the 40 the consumer never got are delivered once.
import { describe, expect, it } from "vitest";
import { eventually, sleep, TestConsumer, waitForLeader, waitForNewLeader } from "./broker-test-client.ts";
import { useThreeNodeCluster } from "./three-node-cluster.ts";

const { harness, ids, clients, client } = useThreeNodeCluster("settle-interrupted");

describe("settlements interrupted by a leader kill", () => {
  it.each([0, 1, 3])("a multiple ack with the leader killed %i ms after it is sent: all or nothing, nothing lost or doubled", async (delayMs) => {
    const leader = await waitForLeader([...clients.values()]);
    const follower = ids.find((id) => id !== leader) as number;
    const queue = `settle-kill-${delayMs}`;
    await client(follower).call("DeclareQueue", { name: queue, durable: true });
    await client(follower).call("Publish", { messages: Array.from({ length: 100 }, (_, i) => ({ routingKey: queue, body: new TextEncoder().encode(String(i)) })) });

    const holder = new TestConsumer(client(follower), queue, { prefetch: 60, tag: "holder", ack: false, batch: true });
    await eventually("60 held deliveries", async () => (holder.received.length === 60 ? true : undefined));
    expect(holder.received.map((m) => m.seq)).toEqual(Array.from({ length: 60 }, (_, i) => i));
    holder.ack(60, true);
    if (delayMs > 0) await sleep(delayMs);
    await harness.stop(leader, "SIGKILL");
    // The follower holding the stream would move the holder to the next leader; it goes away
    // instead, so that only the drain below takes what comes back.
    holder.cancel();
    await holder.ended;

    const survivors = ids.filter((id) => id !== leader).map(client);
    await waitForNewLeader(survivors, leader);
    // The holder's session went down with the leader: what it still held comes back.
    const drain = new TestConsumer(client(follower), queue, { prefetch: 200, tag: "drain" });
    await drain.subscribed;
    await eventually("the rest delivered", async () => (drain.received.filter((m) => m.seq >= 60).length >= 40 ? true : undefined), 30_000);
    const info = async () => (await client(follower).callRetrying("QueueInfo", { name: queue })).queue;
    await eventually("the queue settled", async () => {
      const q = await info();
      return Number(q?.messagesReady) === 0 && Number(q?.messagesUnacked) === 0 ? true : undefined;
    }, 30_000);
    const seqs = drain.received.map((m) => m.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    const batch = drain.received.filter((m) => m.seq < 60);
    expect([0, 60]).toContain(batch.length);
    for (const m of batch) expect(m.redelivered).toBe(true);
    expect(seqs.filter((s) => s >= 60).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => 60 + i));
    drain.end();
    await drain.ended;
    await harness.start(leader, { members: ids });
    await waitForLeader([...clients.values()]);
  });
});
