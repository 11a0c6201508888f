// A consumer whose client vanishes without closing its connection goes away by itself: the node
// pings every client connection (--client-keepalive-ms), closes one that stops answering, ends
// its streams and downs its consumers, so what they held returns to the queue, redelivered. The
// client here is a real process frozen with SIGSTOP, attached to the leader or to a follower that
// forwards its stream. And a consumer that holds a delivery unacknowledged for longer than
// --consumer-timeout-ms is ended, as RabbitMQ's consumer_timeout does.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { eventually, publishRange, type raftmq, type TestClient, waitForLeader } from "./broker-test-client.ts";
import { useThreeNodeCluster } from "./three-node-cluster.ts";

const KEEPALIVE = ["--client-keepalive-ms", "500", "--client-keepalive-timeout-ms", "1000"];
const CONSUMER_TIMEOUT_MS = 4000;
const cluster = useThreeNodeCluster("liveness", ["--tick-ms", "50", "--log-level", "info", ...KEEPALIVE, "--consumer-timeout-ms", String(CONSUMER_TIMEOUT_MS)]);
const FROZEN = fileURLToPath(new URL("./frozen-consumer.ts", import.meta.url));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

/** Starts a frozen-consumer process at `address`; resolves once it holds `prefetch` deliveries. */
function holdingConsumer(address: string, queue: string, prefetch: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", FROZEN, address, queue, String(prefetch)], { stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`the consumer did not take its prefetch: ${out}`)), 20_000);
    child.stdout?.on("data", (b: Buffer) => {
      out += b.toString();
      if (out.includes(`held ${prefetch}`)) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once("exit", (code) => reject(new Error(`the consumer exited (${code}): ${out}`)));
  });
}

async function queueInfo(client: TestClient, name: string): Promise<raftmq.v1.QueueInfo> {
  const info = (await client.call("QueueInfo", { name })).queue;
  if (info == null) throw new Error(`no queue ${name}`);
  return info as raftmq.v1.QueueInfo;
}

/** Takes `count` deliveries on a fresh stream and acks them; returns how many came redelivered. */
async function drain(client: TestClient, queue: string, count: number): Promise<number> {
  const stream = client.consume();
  let got = 0;
  let redelivered = 0;
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${got} of ${count} deliveries within 15 s`)), 15_000);
    stream.on("data", (r: raftmq.v1.ConsumeResponse) => {
      if (r.kind !== "delivery" || r.delivery == null) return;
      if (r.delivery.redelivered) redelivered++;
      stream.write({ ack: { consumerTag: "fresh", deliveryTag: r.delivery.deliveryTag } });
      if (++got === count) {
        clearTimeout(timer);
        resolve();
      }
    });
    stream.on("error", () => {});
  });
  stream.write({ subscribe: { queue, prefetch: 50, consumerTag: "fresh" } });
  await done;
  stream.cancel();
  return redelivered;
}

describe("a consumer whose client vanishes", () => {
  for (const where of ["leader", "follower"] as const) {
    it(`attached to the ${where}: is downed by the node's keepalive and its unacked messages are redelivered`, async () => {
      const leader = await waitForLeader([...cluster.clients.values()]);
      const node = where === "leader" ? leader : (cluster.ids.find((id) => id !== leader) as number);
      const queue = `liveness-${where}`;
      const admin = cluster.client(leader);
      await admin.callRetrying("DeclareQueue", { name: queue });
      await publishRange(admin, { exchange: "", routingKey: queue, producerId: `p-${where}`, from: 0, to: 20, perRequest: 10, window: 2 });

      const child = await holdingConsumer(cluster.harness.clientAddress(node), queue, 8);
      const held = await queueInfo(admin, queue);
      expect({ consumers: held.consumers, unacked: Number(held.messagesUnacked) }).toEqual({ consumers: 1, unacked: 8 });

      child.kill("SIGSTOP");
      const frozenAt = Date.now();
      const released = await eventually(
        "the frozen consumer downed",
        async () => {
          const q = await queueInfo(admin, queue);
          return q.consumers === 0 && Number(q.messagesUnacked) === 0 ? q : undefined;
        },
        15_000,
      );
      const downedMs = Date.now() - frozenAt;
      expect(Number(released.messagesReady)).toBe(20);
      // Keepalive 0.5 s plus a 1 s timeout, then the session's end through the log.
      expect(downedMs).toBeLessThan(10_000);
      process.stdout.write(`consumer on the ${where} downed ${downedMs} ms after its client froze\n`);

      expect(await drain(cluster.client(node), queue, 20)).toBe(8);
      child.kill("SIGKILL");
    });
  }
});

describe("a consumer that never acknowledges", () => {
  it("is ended after --consumer-timeout-ms with FAILED_PRECONDITION, and what it held is redelivered", async () => {
    const leader = await waitForLeader([...cluster.clients.values()]);
    const follower = cluster.ids.find((id) => id !== leader) as number;
    const queue = "liveness-timeout";
    const admin = cluster.client(leader);
    await admin.callRetrying("DeclareQueue", { name: queue });
    await publishRange(admin, { exchange: "", routingKey: queue, producerId: "p-timeout", from: 0, to: 10, perRequest: 10, window: 1 });
    const stream = cluster.client(follower).consume();
    let held = 0;
    const started = Date.now();
    const ended = new Promise<{ code: number; details: string; ms: number }>((resolve) => {
      stream.on("status", (st: { code: number; details: string }) => resolve({ ...st, ms: Date.now() - started }));
    });
    stream.on("data", (r: raftmq.v1.ConsumeResponse) => {
      if (r.kind === "delivery") held++;
    });
    stream.on("error", () => {});
    stream.write({ subscribe: { queue, prefetch: 3, consumerTag: "sleepy" } });
    const end = await ended;
    expect(held).toBe(3);
    expect(end.code).toBe(9); // FAILED_PRECONDITION
    expect(end.details).toMatch(/delivery acknowledgement timed out: consumer "sleepy" held delivery \d+ for longer than 4000 ms/);
    expect(end.ms).toBeGreaterThanOrEqual(CONSUMER_TIMEOUT_MS);
    expect(end.ms).toBeLessThan(CONSUMER_TIMEOUT_MS + 5000);
    await eventually("the timed-out consumer's deliveries back in the queue", async () => {
      const q = await queueInfo(admin, queue);
      return q.consumers === 0 && Number(q.messagesReady) === 10 ? true : undefined;
    });
    expect(await drain(cluster.client(leader), queue, 10)).toBe(3);
  });
});
