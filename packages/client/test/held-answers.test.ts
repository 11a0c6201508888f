// The SDK when a node's answers are held back: a one-node cluster advertises its client address
// on 127.0.0.2, where a proxy in this test can hold everything the node sends.
// - Exactly-once enqueue when the broker forgets a producer: the SDK marks every resend whose
//   earlier attempt may have been applied, and the broker answers such a retry of a producer it
//   no longer remembers as of unknown outcome instead of enqueuing it again. The publish is
//   applied, its confirm held, the producer evicted, and the SDK resends.
// - A consumer whose stream falls silent (no heartbeat for a few intervals) gives it up and
//   subscribes again, instead of waiting on it for ever.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClusterHarness } from "../../../test/integration/cluster-harness.ts";
import { TcpRelay } from "../../../test/integration/tcp-relay.ts";
import * as grpc from "@grpc/grpc-js";
import { connect, DedupWindowPassedError, type PublishConfirm, type RaftmqClient } from "../src/index.ts";
import { FakeNode } from "./fake-node.ts";

const PROXY_HOST = "127.0.0.2";
const CALL_TIMEOUT_MS = 800;
const harness = new ClusterHarness("publish-retry", ["--tick-ms", "50", "--log-level", "info"], undefined, "insecure");
let proxy: TcpRelay;
/** Through the proxy: the only address the node advertises. */
let client: RaftmqClient;
/** Straight to the node, for what the test itself asks. */
let direct: RaftmqClient;
let maxProducers = 0;

beforeAll(async () => {
  await harness.plan(1);
  const spec = harness.spec(1);
  proxy = await TcpRelay.start({ target: { host: "127.0.0.1", port: spec.clientPort }, listen: { host: PROXY_HOST, port: spec.clientPort } });
  const advertised = `1=127.0.0.1:${spec.peerPort}/${PROXY_HOST}:${spec.clientPort}`;
  await harness.start(1, { members: [1], flags: ["--initial-cluster", advertised] });
  direct = await connect([harness.clientAddress(1)]);
  const until = Date.now() + 20_000;
  // Ready: elected, and the machine version moved to this code's (a retry mark counts from 5 on).
  while ((await direct.settings()).machineVersion < 5) {
    if (Date.now() > until) throw new Error("the node did not lead");
    await new Promise((r) => setTimeout(r, 50));
  }
  maxProducers = Number((await direct.settings()).settings.maxProducers);
  client = await connect([`${PROXY_HOST}:${harness.spec(1).clientPort}`], { callTimeoutMs: CALL_TIMEOUT_MS });
}, 60_000);

afterAll(async () => {
  client?.close();
  direct?.close();
  await proxy?.close();
  await harness.cleanup();
});

/** Publishes with the node's answers held until the first attempt timed out; `meanwhile` runs once the message is queued. */
async function publishWithLostConfirm(queue: string, send: () => Promise<PublishConfirm>, meanwhile: () => Promise<void>): Promise<PromiseSettledResult<PublishConfirm>> {
  proxy.holding = true;
  const started = Date.now();
  const outcome = send().then(
    (value): PromiseSettledResult<PublishConfirm> => ({ status: "fulfilled", value }),
    (reason: unknown): PromiseSettledResult<PublishConfirm> => ({ status: "rejected", reason }),
  );
  const until = Date.now() + 10_000;
  while ((await direct.queueInfo(queue)).messagesReady < 1) {
    if (Date.now() > until) throw new Error("the publish was not applied");
    await new Promise((r) => setTimeout(r, 20));
  }
  await meanwhile();
  // Past the attempt's deadline: its confirm, released now, arrives for a call already given up.
  await new Promise((r) => setTimeout(r, Math.max(0, started + CALL_TIMEOUT_MS * 2 - Date.now())));
  proxy.release();
  return outcome;
}

async function evict(): Promise<void> {
  await direct.setSettings({ maxProducers: 1 });
  await direct.declareQueue("evictor");
  // The newest producer is the only one remembered now.
  await direct.publish("", "evictor", "x");
}

describe("a publish whose confirm was lost, resent by the SDK", () => {
  it("is answered as a duplicate while the broker remembers its producer", async () => {
    await direct.declareQueue("kept");
    const outcome = await publishWithLostConfirm("kept", () => client.publish("", "kept", "order 1"), async () => {});
    expect(outcome).toMatchObject({ status: "fulfilled", value: { duplicate: true, routedQueues: ["kept"] } });
    expect((await direct.queueInfo("kept")).messagesReady).toBe(1);
  });

  it("is answered as of unknown outcome, not enqueued again, once its producer was evicted (unary Publish)", async () => {
    await direct.declareQueue("evicted-unary");
    const outcome = await publishWithLostConfirm("evicted-unary", () => client.publish("", "evicted-unary", "order 1"), evict);
    await direct.setSettings({ maxProducers });
    expect(outcome.status).toBe("rejected");
    const reason = outcome.status === "rejected" ? outcome.reason : null;
    expect(reason).toBeInstanceOf(DedupWindowPassedError);
    expect(String((reason as Error).message)).toMatch(/outcome unknown to the broker: retry of sequence \d+: the broker has no record of producer/);
    expect((await direct.queueInfo("evicted-unary")).messagesReady).toBe(1);
  });

  it("is answered as of unknown outcome, not enqueued again, once its producer was evicted (PublishStream)", async () => {
    await direct.declareQueue("evicted-stream");
    const publisher = client.createPublisher({ confirmTimeoutMs: CALL_TIMEOUT_MS });
    try {
      const outcome = await publishWithLostConfirm("evicted-stream", () => publisher.publish("", "evicted-stream", "order 1"), evict);
      await direct.setSettings({ maxProducers });
      expect(outcome.status).toBe("rejected");
      expect(outcome.status === "rejected" ? outcome.reason : null).toBeInstanceOf(DedupWindowPassedError);
      expect(publisher.stats().resent).toBeGreaterThan(0);
      expect((await direct.queueInfo("evicted-stream")).messagesReady).toBe(1);
    } finally {
      await publisher.close();
    }
  });
});

describe("the SDK's retry mark on a unary publish", () => {
  it("is set only after an attempt the node did not say it left unapplied", async () => {
    const node = new FakeNode();
    const address = await node.start();
    const failures = [
      { code: grpc.status.UNAVAILABLE, details: "no leader is known", outcome: "not_applied" as const },
      { code: grpc.status.UNAVAILABLE, details: "connection reset" },
      { code: grpc.status.UNAVAILABLE, details: "leadership changed before the command was applied", outcome: "unknown" as const },
    ];
    node.publishAnswer = (n) => failures[n] ?? null;
    const c = await connect([address], { backoffInitialMs: 1, backoffMaxMs: 5 });
    try {
      await c.publish("", "q", "a");
      // First attempt; after a not-applied answer, still a first attempt; then retries.
      expect(node.publishes.map((r) => r.messages?.[0]?.retry ?? false)).toEqual([false, false, true, true]);
      expect(new Set(node.publishes.map((r) => r.messages?.[0]?.sequence)).size).toBe(1);
    } finally {
      c.close();
      node.stop();
    }
  });
});

describe("a consumer whose stream falls silent", () => {
  it("gives the stream up after missed heartbeats and subscribes again; what was published meanwhile arrives", async () => {
    await direct.declareQueue("heartbeats");
    const consumer = await client.consume("heartbeats", { heartbeatMs: 200 });
    try {
      proxy.holding = true;
      await direct.publish("", "heartbeats", "while silent");
      // Three intervals without a word, then the watchdog's next look.
      const until = Date.now() + 5_000;
      while (consumer.stats().silentStreams === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(consumer.stats().silentStreams).toBeGreaterThanOrEqual(1);
      proxy.release();
      const next = await Promise.race([consumer.next(), new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
      expect(next === null ? null : next.value?.text()).toBe("while silent");
      expect(consumer.stats().resubscribes).toBeGreaterThanOrEqual(1);
    } finally {
      proxy.release();
      await consumer.close();
    }
  });

  it("keeps a stream that only idles: heartbeats arrive, nothing is given up", async () => {
    await direct.declareQueue("idle");
    const consumer = await client.consume("idle", { heartbeatMs: 100 });
    try {
      await new Promise((r) => setTimeout(r, 1_000));
      const { heartbeats, silentStreams, resubscribes } = consumer.stats();
      expect(heartbeats).toBeGreaterThanOrEqual(5);
      expect([silentStreams, resubscribes]).toEqual([0, 0]);
    } finally {
      await consumer.close();
    }
  });
});
