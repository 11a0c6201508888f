// An SDK consumer whose stream outlives leader changes still learns the members that joined
// meanwhile: once every node it connected to has left the cluster, it subscribes again through
// one of the new ones. A resubscription used to be the SDK's only occasion to ask; a stream that
// resumes on a new leader gives it none, so it asks when the stream resumes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, TestClient, waitForLeader } from "../../../test/integration/broker-test-client.ts";
import { ClusterHarness } from "../../../test/integration/cluster-harness.ts";
import { testAuth } from "../../../test/integration/three-node-cluster.ts";
import { connect, type Delivery, type RaftmqClient } from "../src/index.ts";

const harness = new ClusterHarness("sdk-members");
const admin = new Map<number, TestClient>();
let sdk: RaftmqClient | undefined;

beforeAll(async () => {
  await harness.plan(3);
  await harness.startAll(3);
  for (const id of [1, 2, 3]) admin.set(id, new TestClient(harness.clientAddress(id), testAuth(harness)));
  await waitForLeader([...admin.values()]);
});

afterAll(async () => {
  sdk?.close();
  for (const c of admin.values()) c.close();
  await harness.cleanup();
});

const at = (id: number) => admin.get(id) as TestClient;

describe("an SDK consumer across a full change of members", () => {
  it("subscribes again through a node that joined after it connected, once every node it knew is gone", async () => {
    const leader = await waitForLeader([1, 2, 3].map(at));
    await at(leader).callRetrying("DeclareQueue", { name: "members-resume", durable: true });
    sdk = await connect([1, 2, 3].map((id) => harness.clientAddress(id)), { retryTimeoutMs: 60_000 });
    const consumer = await sdk.consume("members-resume", { prefetch: 10 });
    const iterator = consumer[Symbol.asyncIterator]();

    // Nodes 4, 5 and 6 join as voters.
    let members = [1, 2, 3];
    for (let i = 0; i < 3; i++) {
      const spec = await harness.addNodeSpec();
      members = [...members, spec.id];
      await harness.start(spec.id, { members, join: true });
      admin.set(spec.id, new TestClient(harness.clientAddress(spec.id), testAuth(harness)));
      await at(leader).callRetrying("AddMember", { id: spec.id, peerAddress: `127.0.0.1:${spec.peerPort}`, clientAddress: harness.clientAddress(spec.id) });
      await eventually(`node ${spec.id} a voter`, async () => {
        const s = await at(leader).call("Status", {}, 2000);
        return s.members.find((m) => Number(m.id) === spec.id)?.role === 1 ? true : undefined;
      });
    }
    // Leadership moves to node 4: the consumer's stream resumes there, it is not subscribed again.
    await at(4).callRetrying("TransferLeadership", { to: 4 });
    await eventually("the stream resumed", async () => (consumer.stats().resumes >= 1 ? true : undefined));
    expect(consumer.stats().resubscribes).toBe(0);

    // Nodes 1, 2 and 3 leave, and each stops; the one holding the stream (the first leader, where
    // the SDK subscribed) last, so that no node the SDK connected to is left when its stream ends.
    for (const id of [...[1, 2, 3].filter((x) => x !== leader), leader]) {
      await at(4).callRetrying("RemoveMember", { id });
      const exit = await Promise.race([harness.processes.get(id)?.exit, new Promise((r) => setTimeout(() => r("still running"), 15_000))]);
      expect(exit, `node ${id} after its removal`).toEqual({ code: 0, signal: null });
    }
    await waitForLeader([4, 5, 6].map(at));
    await at(5).callRetrying("Publish", { messages: [{ routingKey: "members-resume", body: new TextEncoder().encode("after") }] });
    const next = await Promise.race([iterator.next(), new Promise<"none">((r) => setTimeout(() => r("none"), 20_000))]);
    expect(next, `a delivery within 20 s (${JSON.stringify(consumer.stats())}; the SDK knows ${sdk.addresses.join(", ")})`).not.toBe("none");
    const d = (next as IteratorResult<Delivery>).value as Delivery;
    expect(d.text()).toBe("after");
    d.ack();
    expect(consumer.stats().resubscribes).toBeGreaterThanOrEqual(1);
    for (const id of [4, 5, 6]) expect(sdk.addresses).toContain(harness.clientAddress(id));
    await consumer.close();
  }, 120_000);
});
