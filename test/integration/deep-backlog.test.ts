// A deep backlog on a 3-node cluster. Up to a million 1 KiB messages, each with a message id
// and a header, are queued with a memory watermark set 128 MiB above what the nodes use warm and
// empty: the alarm must stop the publisher before a node runs out, every confirmed message must
// come back once drained, and the alarm must clear by itself. Then, with each node's data directory on a small filesystem of its own, a publisher
// fills the disks: the disk alarm stops it, no node fails, and nothing confirmed is lost.
import { execFileSync } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { mkdirSync } from "node:fs";
import { statusDetailsOf } from "@raftmq/proto";
import { afterAll, describe, expect, it } from "vitest";
import { eventually, GrpcStatus, isServiceError, publishRange, type raftmq, TestClient, waitForLeader } from "./broker-test-client.ts";
import { ClusterHarness } from "./cluster-harness.ts";
import { testAuth } from "./three-node-cluster.ts";

const MiB = 1024 * 1024;
const ids = [1, 2, 3];
const BODY = new Uint8Array(1024).fill(42);
/** 1 KiB of random bytes (LevelDB compresses nothing of it) whose first four are the sequence number. */
function bodyOf(seq: number): Uint8Array {
  const b = randomFillSync(new Uint8Array(1024));
  new DataView(b.buffer).setUint32(0, seq);
  return b;
}

function clientsOf(harness: ClusterHarness): (id: number) => TestClient {
  const clients = new Map<number, TestClient>();
  return (id) => {
    let c = clients.get(id);
    if (c === undefined) {
      c = new TestClient(harness.clientAddress(id), testAuth(harness));
      clients.set(id, c);
    }
    return c;
  };
}

async function metric(harness: ClusterHarness, id: number, name: string): Promise<number> {
  const text = await (await fetch(`http://${harness.host(id)}:${harness.spec(id).httpPort}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return Number(line?.split(" ")[1] ?? Number.NaN);
}

interface Published {
  /** Sequence numbers confirmed, as a bitmap. */
  confirmed: Uint8Array;
  count: number;
  /** The refusal that stopped the publisher, if one did. */
  refusal: { details: string; reason: string | undefined } | null;
}

/** Publishes sequences [0, limit) in rounds until done or refused by a resource alarm. */
async function publishUntilRefused(client: TestClient, queue: string, limit: number, properties?: (seq: number) => raftmq.v1.MessageProperties.$Properties): Promise<Published> {
  const out: Published = { confirmed: new Uint8Array(limit), count: 0, refusal: null };
  const ROUND = 50_000;
  for (let from = 0; from < limit && out.refusal === null; from += ROUND) {
    const to = Math.min(limit, from + ROUND);
    let confirmed: number[];
    try {
      confirmed = (
        await publishRange(client, { exchange: "", routingKey: queue, producerId: `p-${queue}`, from, to, perRequest: 64, window: 16, body: bodyOf, ...(properties === undefined ? {} : { properties }) })
      ).confirmed;
    } catch (err) {
      if (!isServiceError(err) || err.code !== GrpcStatus.RESOURCE_EXHAUSTED) throw err;
      out.refusal = { details: err.details, reason: statusDetailsOf(err.metadata)?.reason };
      confirmed = (err as unknown as { outcome: { confirmed: number[] } }).outcome.confirmed;
    }
    for (const seq of confirmed) {
      if (out.confirmed[seq] === 0) out.count++;
      out.confirmed[seq] = 1;
    }
  }
  return out;
}

/** Consumes the queue until it is empty and idle; answers which sequences came, as a bitmap. */
async function drain(client: TestClient, queue: string, size: number): Promise<Uint8Array> {
  const seen = new Uint8Array(size);
  const stream = client.consume();
  let last = Date.now();
  stream.on("data", (r: raftmq.v1.ConsumeResponse) => {
    if (r.kind !== "delivery" && r.kind !== "deliveries") return;
    const batch = r.kind === "delivery" ? [r.delivery] : (r.deliveries?.deliveries ?? []);
    last = Date.now();
    for (const d of batch) {
      if (d == null) continue;
      const body = d.body ?? new Uint8Array(0);
      if (body.length === 1024) seen[new DataView(body.buffer, body.byteOffset, 4).getUint32(0)] = 1;
      stream.write({ ack: { consumerTag: "drain", deliveryTag: d.deliveryTag, multiple: false } });
    }
  });
  stream.on("error", () => {});
  stream.write({ subscribe: { queue, prefetch: 512, consumerTag: "drain", batchDeliveries: true } });
  await eventually(
    "the queue drained",
    async () => {
      const info = await client.call("QueueInfo", { name: queue });
      return Number(info.queue?.messagesReady) === 0 && Number(info.queue?.messagesUnacked) === 0 && Date.now() - last > 500 ? true : undefined;
    },
    600_000,
  );
  stream.cancel();
  return seen;
}

/** Confirmed sequences never delivered (the first 20). */
function lost(published: Published, seen: Uint8Array): number[] {
  const out: number[] = [];
  for (let seq = 0; seq < published.confirmed.length && out.length < 20; seq++) if (published.confirmed[seq] === 1 && seen[seq] !== 1) out.push(seq);
  return out;
}

describe("a deep backlog with a low memory watermark", () => {
  const harness = new ClusterHarness("deep-backlog", ["--tick-ms", "50", "--log-level", "info", "--alarm-check-ms", "200"]);
  const client = clientsOf(harness);
  afterAll(() => harness.cleanup());

  it("raises the memory alarm before the nodes run out, loses nothing confirmed, and clears the alarm once drained", { timeout: 900_000 }, async () => {
    await harness.plan(3);
    await harness.startAll(3);
    const first = await waitForLeader(ids.map(client));
    // What the nodes use warm (after 100,000 messages went through, filling LevelDB's memtables
    // and caches) and empty, as resident memory no file backs (the alarm's reading); then a
    // watermark 128 MiB above it.
    await client(first).callRetrying("DeclareQueue", { name: "warm-up", durable: true });
    await publishUntilRefused(client(first), "warm-up", 100_000);
    await client(first).call("PurgeQueue", { name: "warm-up" });
    const empty = Math.max(...(await Promise.all(ids.map((id) => metric(harness, id, "raftmq_process_anonymous_memory_bytes")))));
    const watermark = Math.round(empty + 128 * MiB);
    for (const id of ids) await harness.stop(id);
    for (const id of ids) await harness.start(id, { members: ids, flags: ["--memory-high-watermark-bytes", String(watermark)] });
    let leader = await waitForLeader(ids.map(client));
    await client(leader).callRetrying("DeclareQueue", { name: "deep", durable: true });

    // Orders with a message id and a header each: what a queued message keeps in memory besides
    // its ~45 bytes is its own properties, a few hundred bytes.
    const LIMIT = 1_000_000;
    const published = await publishUntilRefused(client(leader), "deep", LIMIT, (seq) => ({ messageId: `order-${seq}`, headers: [{ key: "customer", value: { stringValue: `customer-${seq % 1000}` } }] }));
    expect(published.refusal, `no alarm within ${LIMIT} messages (watermark ${Math.round(watermark / MiB)} MiB)`).not.toBeNull();
    expect(published.refusal?.reason).toBe("RESOURCE_ALARM");
    expect(published.refusal?.details).toMatch(/memory alarm/);
    expect(published.count).toBeGreaterThan(50_000);
    process.stdout.write(`deep backlog: the memory alarm (watermark ${Math.round(watermark / MiB)} MiB, ${Math.round(empty / MiB)} MiB warm and empty) stopped the publisher after ${published.count} confirmed messages\n`);
    // Alarms are cluster-wide: every node learns of it within an alarm check or two.
    await eventually("every node aware of the alarm", async () =>
      ids.every((id) => harness.eventCount(id, "alarm-raised") + harness.eventCount(id, "member-alarm-raised") > 0) ? true : undefined,
    );
    const depth = Number((await client(leader).call("QueueInfo", { name: "deep" })).queue?.messagesReady);
    // Unconfirmed publishes may have been enqueued too; every confirmed one is there.
    expect(depth).toBeGreaterThanOrEqual(published.count);

    leader = await waitForLeader(ids.map(client));
    const seen = await drain(client(leader), "deep", LIMIT);
    expect(lost(published, seen)).toEqual([]);

    // Drained, the nodes' memory falls back under the watermark and the alarm clears by itself.
    await eventually(
      "the alarms cleared",
      async () => {
        const statuses = await Promise.all(ids.map((id) => client(id).call("Status", {})));
        return statuses.every((s) => (s.alarms ?? []).length === 0) ? true : undefined;
      },
      120_000,
    );
    leader = await waitForLeader(ids.map(client));
    await eventually("a publish taken again", async () => {
      try {
        await client(leader).call("Publish", { messages: [{ exchange: "", routingKey: "deep", body: BODY }] });
        return true;
      } catch {
        return undefined;
      }
    });
    // The node whose own alarm was raised says it cleared.
    expect(ids.reduce((n, id) => n + harness.eventCount(id, "alarm-cleared"), 0)).toBeGreaterThan(0);
  });
});

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot)("data directories on small filesystems that fill up", () => {
  const harness = new ClusterHarness("full-disk", ["--tick-ms", "50", "--log-level", "info", "--alarm-check-ms", "100", "--disk-free-limit-bytes", String(40 * MiB)]);
  const client = clientsOf(harness);
  const mounted: string[] = [];
  afterAll(async () => {
    for (const id of ids) await harness.stop(id).catch(() => undefined);
    for (const dir of mounted) execFileSync("umount", [dir]);
    await harness.cleanup();
  });

  it("raise the disk alarm and stop publishers; no node fails and nothing confirmed is lost", { timeout: 300_000 }, async () => {
    await harness.plan(3);
    for (const id of ids) {
      const dir = harness.spec(id).dataDir;
      mkdirSync(dir, { recursive: true });
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=160m", "tmpfs", dir]);
      mounted.push(dir);
    }
    for (const id of ids) await harness.start(id, { members: ids });
    await harness.adminReady();
    const leader = await waitForLeader(ids.map(client));
    await client(leader).callRetrying("DeclareQueue", { name: "filling", durable: true });

    // 160 MiB each: the Raft log and the body store each hold every body, so the disks fill
    // long before 200,000 messages.
    const LIMIT = 200_000;
    const published = await publishUntilRefused(client(leader), "filling", LIMIT);
    expect(published.refusal, "the publisher was never refused").not.toBeNull();
    expect(published.refusal?.reason).toBe("RESOURCE_ALARM");
    expect(published.refusal?.details).toMatch(/disk alarm/);
    for (const id of ids) {
      const status = await client(id).call("Status", {});
      expect(status.ready, `node ${id} is ready`).toBe(true);
    }
    const info = await client(leader).call("QueueInfo", { name: "filling" });
    expect(Number(info.queue?.messagesReady)).toBeGreaterThanOrEqual(published.count);
    // Everything confirmed is delivered, from bodies on the full disks.
    const seen = await drain(client(leader), "filling", LIMIT);
    expect(lost(published, seen)).toEqual([]);
    for (const id of ids) expect((await client(id).call("Status", {})).ready).toBe(true);
  });
});
