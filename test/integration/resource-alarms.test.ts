// A node whose memory alarm is raised takes no publishes: gRPC answers RESOURCE_EXHAUSTED naming
// the alarm with retry advice, AMQP publishers are sent connection.blocked; the rest goes on.
import amqp from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, GrpcStatus, isServiceError, TestClient } from "./broker-test-client.ts";
import { ClusterHarness } from "./cluster-harness.ts";
import { testAuth } from "./three-node-cluster.ts";
import { statusDetailsOf } from "@raftmq/proto";

// Any node's memory is above 0.0001 of the machine's: the alarm is raised from the start.
const harness = new ClusterHarness("resource-alarms", ["--tick-ms", "50", "--memory-high-watermark", "0.0001", "--alarm-check-ms", "100"]);
let client: TestClient;

beforeAll(async () => {
  await harness.plan(1);
  await harness.startAll(1);
  client = new TestClient(harness.clientAddress(1), testAuth(harness));
});

afterAll(async () => {
  client?.close();
  await harness.cleanup();
});

describe("a raised memory alarm", () => {
  it("refuses publishes with RESOURCE_EXHAUSTED and retry advice, and lets declares and reads go on", async () => {
    await client.callRetrying("DeclareQueue", { name: "alarmed", durable: true });
    const err = await client.call("Publish", { messages: [{ exchange: "", routingKey: "alarmed", body: Buffer.from("x") }] }).then(
      () => null,
      (e: unknown) => e,
    );
    if (!isServiceError(err)) throw new Error(`expected a refusal, got ${String(err)}`);
    expect(err.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(err.details).toMatch(/^publishing is blocked: memory alarm: the node uses \d+ MiB, above its high watermark/);
    expect(err.details).toMatch(/retry later/);
    const details = statusDetailsOf(err.metadata);
    expect(details?.reason).toBe("RESOURCE_ALARM");
    expect(details?.retryDelayMs).toBeGreaterThan(0);
    const info = await client.call("QueueInfo", { name: "alarmed" });
    expect(Number(info.queue?.messagesReady ?? 0)).toBe(0);
    const metrics = await (await fetch(`http://127.0.0.1:${harness.spec(1).httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^raftmq_resource_alarm\{resource="memory"\} 1$/m);
    expect(metrics).toMatch(/^raftmq_resource_alarm\{resource="disk"\} 0$/m);
    expect(harness.eventCount(1, "alarm-raised")).toBe(1);
  });

  it("sends AMQP connections connection.blocked, and a publish on them is not confirmed", async () => {
    const o = harness.clientOptions();
    const user = o.credentials === undefined ? "guest:guest" : `${o.credentials.username}:${encodeURIComponent(o.credentials.password)}`;
    const conn = await amqp.connect(`amqp://${user}@127.0.0.1:${harness.spec(1).amqpPort}`);
    try {
      const blocked = new Promise<string>((resolve) => conn.once("blocked", (reason: string) => resolve(reason)));
      const ch = await conn.createConfirmChannel();
      ch.on("error", () => {});
      await ch.assertQueue("alarmed-amqp", { durable: true });
      // Its first publish holds the connection back, and the client is told why.
      const outcome = new Promise<string>((resolve) => ch.publish("", "alarmed-amqp", Buffer.from("x"), {}, (e) => resolve(e ? "nacked" : "acked")));
      expect(await blocked).toMatch(/^memory alarm/);
      const settled = await Promise.race([outcome, new Promise<string>((r) => setTimeout(() => r("held"), 1500))]);
      expect(settled).not.toBe("acked");
      await eventually("the queue still empty", async () => (Number((await client.call("QueueInfo", { name: "alarmed-amqp" })).queue?.messagesReady ?? -1) === 0 ? true : undefined));
    } finally {
      // A blocked publisher's connection is not read, its close included (as in RabbitMQ): cut it.
      conn.on("error", () => {});
      (conn.connection as unknown as { stream: { destroy(): void } }).stream.destroy();
    }
  });
});
