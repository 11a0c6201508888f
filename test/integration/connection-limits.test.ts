// One client connection may have --max-streams-per-connection calls open at once; a further call
// waits in the client until one ends, so a single connection cannot pile up work on a node.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GrpcStatus, isServiceError, TestClient } from "./broker-test-client.ts";
import { ClusterHarness } from "./cluster-harness.ts";
import { testAuth } from "./three-node-cluster.ts";

const harness = new ClusterHarness("connection-limits", ["--tick-ms", "50", "--log-level", "info", "--max-streams-per-connection", "2"]);
let client: TestClient;

beforeAll(async () => {
  await harness.plan(1);
  await harness.start(1, { members: [1] });
  await harness.adminReady();
  client = new TestClient(harness.clientAddress(1), testAuth(harness));
  await client.callRetrying("DeclareQueue", { name: "limited" });
});

afterAll(async () => {
  client?.close();
  await harness.cleanup();
});

describe("streams per client connection", () => {
  it("holds a third call while two streams are open, and serves it once one ends", async () => {
    const streams = [client.consume(), client.consume()];
    for (const s of streams) s.on("error", () => {});
    const opened = streams.map((s) => new Promise<void>((resolve) => s.once("data", () => resolve())));
    for (const s of streams) s.write({ subscribe: { queue: "limited", prefetch: 1, consumerTag: "c" } });
    await Promise.all(opened);

    const held = await client.call("ListQueues", {}, 1000).catch((err: unknown) => err);
    expect(isServiceError(held) && held.code).toBe(GrpcStatus.DEADLINE_EXCEEDED);

    streams[0]?.cancel();
    const served = await client.callRetrying("ListQueues", {});
    expect(served.queues.map((q) => q.name)).toContain("limited");
    streams[1]?.cancel();
  });
});
