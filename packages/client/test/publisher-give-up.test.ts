// A publisher that cannot reach the cluster for its retry timeout gives up: a message it had sent
// without a confirm may have been published (PublishOutcomeUnknownError, naming its sequence);
// one never sent was not (a plain UnavailableError).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClusterHarness } from "../../../test/integration/cluster-harness.ts";
import { connect, PublishOutcomeUnknownError, type RaftmqClient, UnavailableError } from "../src/index.ts";

const harness = new ClusterHarness("sdk-give-up");
let client: RaftmqClient;

beforeAll(async () => {
  await harness.plan(3);
  await harness.startAll(3);
  client = await connect([harness.clientAddress(1)], { retryTimeoutMs: 1500 });
  await client.declareQueue("orders");
});

afterAll(async () => {
  for (const p of harness.processes.values()) p.child.kill("SIGCONT");
  client?.close();
  await harness.cleanup();
});

describe("publisher giving up", () => {
  it("tells a message that may have been published from one that never left", async () => {
    const publisher = client.createPublisher({ window: 4, confirmTimeoutMs: 400, producerId: "give-up" });
    // Every node stops answering: the stream stays open but no confirm comes.
    for (const p of harness.processes.values()) p.child.kill("SIGSTOP");
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, (_, i) => publisher.publish("", "orders", `order ${i}`).then(() => "confirmed", (err: unknown) => err)),
    );
    for (const p of harness.processes.values()) p.child.kill("SIGCONT");
    const unknown = outcomes.filter((o): o is PublishOutcomeUnknownError => o instanceof PublishOutcomeUnknownError);
    const neverSent = outcomes.filter((o) => o instanceof UnavailableError && !(o instanceof PublishOutcomeUnknownError));
    // The window lets 4 out; the other 6 waited for a slot and were never sent.
    expect(unknown.map((e) => e.sequence)).toEqual([1, 2, 3, 4]);
    expect(unknown.every((e) => e.producerId === "give-up" && /may have been published/.test(e.message))).toBe(true);
    expect(neverSent).toHaveLength(6);
    expect((neverSent[0] as Error).message).toMatch(/never sent/);
    await publisher.close().catch(() => undefined);
  });
});
