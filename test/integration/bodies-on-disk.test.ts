// Message bodies live in each node's body store, not in the state or its snapshots. A snapshot
// of a deep queue is the size of its metadata; a follower that receives one fetches the bodies it
// names from its peers, and then delivers every message with its own body as the leader; bodies
// settled everywhere leave the stores; after a restart of every node the bodies are read back.
import { afterAll, describe, expect, it } from "vitest";
import { eventually, publishRange, TestClient, TestConsumer, waitForLeader } from "./broker-test-client.ts";
import { ClusterHarness } from "./cluster-harness.ts";
import { testAuth } from "./three-node-cluster.ts";

const FLAGS = ["--tick-ms", "50", "--log-level", "info", "--snapshot-bytes", "1000000", "--snapshot-keep-entries", "5", "--snapshot-keep-bytes", "100000"];
const harness = new ClusterHarness("bodies-on-disk", FLAGS);
const ids = [1, 2, 3];
const clients = new Map<number, TestClient>();
const client = (id: number): TestClient => {
  let c = clients.get(id);
  if (c === undefined) {
    c = new TestClient(harness.clientAddress(id), testAuth(harness));
    clients.set(id, c);
  }
  return c;
};

afterAll(async () => {
  for (const c of clients.values()) c.close();
  await harness.cleanup();
});

const BODY_BYTES = 1024;
/** A 1 KiB body that reads as its sequence number (TestConsumer parses it) and differs per message. */
const body = (seq: number) => new TextEncoder().encode(`${seq}`.padEnd(BODY_BYTES, " "));

interface LogLine {
  event: string;
  [key: string]: unknown;
}

function lines(id: number, event: string): LogLine[] {
  return harness
    .logs(id)
    .split("\n")
    .filter((l) => l.includes(`"event":"${event}"`))
    .map((l) => JSON.parse(l) as LogLine);
}

async function metric(id: number, name: string): Promise<number> {
  const text = await (await fetch(`http://${harness.host(id)}:${harness.spec(id).httpPort}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return Number(line?.split(" ")[1] ?? Number.NaN);
}

async function consumeAll(id: number, queue: string, count: number): Promise<TestConsumer> {
  const consumer = new TestConsumer(client(id), queue, { prefetch: 200, tag: `drain-${id}`, batch: true });
  await eventually(`${count} deliveries from node ${id}`, async () => (consumer.received.length >= count ? true : undefined), 60_000);
  return consumer;
}

describe("bodies on disk", () => {
  it("a follower that receives a snapshot fetches its bodies, and delivers them all as leader; settled bodies leave the stores", async () => {
    await harness.plan(3);
    for (const id of ids) await harness.start(id, { members: ids });
    await harness.adminReady();
    const leader = await waitForLeader(ids.map(client));
    const behind = ids.find((id) => id !== leader) as number;
    await client(leader).callRetrying("DeclareQueue", { name: "deep", durable: true });
    await harness.stop(behind);

    // 3 MiB of messages in the log: the others snapshot after each MB and compact their logs
    // well past where the stopped node stands.
    const total = 3_000;
    const published = await publishRange(client(leader), { exchange: "", routingKey: "deep", producerId: "p-deep", from: 0, to: total, perRequest: 10, window: 8, body });
    expect(published.confirmed.length).toBe(total);
    const snapshots = await eventually("a snapshot on the leader", async () => {
      const found = lines(leader, "snapshot");
      return found.length >= 2 ? found : undefined;
    });
    // The snapshot holds metadata: far less than the 3 MiB of bodies queued.
    for (const s of snapshots) expect(Number(s.bytes)).toBeLessThan((total * BODY_BYTES) / 8);

    await harness.start(behind, { members: ids });
    const fetched = await eventually("the bodies fetched by the node that was behind", async () => lines(behind, "bodies-fetched")[0], 60_000);
    expect(lines(behind, "snapshot-restored").length).toBeGreaterThan(0);
    expect(fetched.unreachable).toBe(0);
    expect(Number(fetched.fetched)).toBeGreaterThan(0);

    await client(behind).callRetrying("TransferLeadership", { to: behind });
    await eventually("the node that was behind leads", async () => ((await waitForLeader(ids.map(client))) === behind ? true : undefined));
    const consumer = await consumeAll(behind, "deep", total);
    expect(consumer.errors).toEqual([]);
    expect(consumer.received.map((m) => m.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i));
    consumer.end();

    // Acked everywhere, the bodies go once each node stores its next snapshot.
    const more = await publishRange(client(behind), { exchange: "", routingKey: "other", producerId: "p-more", from: 0, to: 3_000, perRequest: 10, window: 8, body });
    expect(more.confirmed.length).toBe(3_000);
    for (const id of ids) {
      await eventually(
        `node ${id}'s body store deleting the acked bodies`,
        async () => {
          const deleted = await metric(id, "raftmq_body_store_deletes");
          return deleted >= total ? deleted : undefined;
        },
        60_000,
      );
    }
  });

  it("after all nodes restart, queued bodies are read back from the stores", async () => {
    const leader = await waitForLeader(ids.map(client));
    await client(leader).callRetrying("DeclareQueue", { name: "kept", durable: true });
    const total = 1_000;
    const published = await publishRange(client(leader), { exchange: "", routingKey: "kept", producerId: "p-kept", from: 0, to: total, perRequest: 20, window: 4, body });
    expect(published.confirmed.length).toBe(total);
    for (const id of ids) await harness.stop(id);
    for (const id of ids) await harness.start(id, { members: ids });
    const next = await waitForLeader(ids.map(client));
    // Each node applies again the entries after its snapshot; the bodies among them are in its
    // store already and are not written again. Nodes snapshot at points of their own, and a
    // snapshot right after the last publish would leave a node none to skip: summed over them.
    const replays = await eventually("every node replayed its log", async () => {
      const found = ids.map((id) => lines(id, "log-replayed")[0]);
      return found.every((l) => l !== undefined) ? (found as LogLine[]) : undefined;
    });
    expect(replays.reduce((sum, l) => sum + Number(l.bodiesAlreadyStored), 0)).toBeGreaterThan(0);
    const consumer = await consumeAll(next, "kept", total);
    expect(consumer.errors).toEqual([]);
    expect(consumer.received.map((m) => m.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i));
    consumer.end();
    // The bodies after the first prefetch's worth were read ahead of their deliveries (and each
    // delivered body is the one published: its sequence is its text).
    expect(await metric(next, "raftmq_body_read_ahead_hits")).toBeGreaterThan(0);
  });
});
