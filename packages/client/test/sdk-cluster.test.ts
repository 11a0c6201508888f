// The SDK against a real 3-node cluster: typed errors, confirms and NACKs, the publisher's window,
// consumers, the example, and publishing through a SIGKILL of the leader without loss or duplicates.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ClusterHarness, freePorts } from "../../../test/integration/cluster-harness.ts";
import {
  connect,
  DedupWindowPassedError,
  type Delivery,
  InvalidArgumentError,
  NotFoundError,
  PreconditionFailedError,
  PublishNackError,
  type RaftmqClient,
  ResourceExhaustedError,
  StaleDeliveryError,
  UnavailableError,
} from "../src/index.ts";

const REPO_ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const harness = new ClusterHarness("sdk");
const ids = [1, 2, 3];
let client: RaftmqClient;

async function waitForReadyLeader(c: RaftmqClient, timeoutMs = 30_000): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { nodes } = await c.clusterStatus();
    const leader = nodes[0]?.leaderId ?? 0;
    if (leader !== 0 && nodes.length >= 2 && nodes.every((n) => n.leaderId === leader && n.ready)) return leader;
    if (Date.now() > until) throw new Error(`no leader: ${JSON.stringify(nodes.map((n) => [n.nodeId, n.role, n.leaderId, n.ready]))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until `check` holds, polling. */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Declares `queue` and publishes "0" … "count - 1" to it with confirms; the publisher stays open. */
async function queueWithMessages(queue: string, count: number) {
  await client.declareQueue(queue);
  const publisher = client.createPublisher();
  await Promise.all(Array.from({ length: count }, (_, i) => publisher.publish("", queue, String(i))));
  return publisher;
}

beforeAll(async () => {
  await harness.plan(3);
  await harness.startAll(3);
  // One seed is enough: the rest is discovered.
  client = await connect([harness.clientAddress(2)], { retryTimeoutMs: 40_000 });
  await waitForReadyLeader(client);
});

afterAll(async () => {
  client?.close();
  await harness.cleanup();
});

describe("connect", () => {
  it("discovers every member and prefers the leader", async () => {
    const leader = await waitForReadyLeader(client);
    for (const id of ids) expect(client.addresses).toContain(harness.clientAddress(id));
    const c = await connect([harness.clientAddress(ids.find((id) => id !== leader) ?? 1)]);
    try {
      expect(c.address).toBe(harness.clientAddress(leader));
    } finally {
      c.close();
    }
  });

  it("names every address tried when no node answers", async () => {
    const [a, b] = await freePorts(2);
    const addresses = [`127.0.0.1:${a}`, `127.0.0.1:${b}`];
    const err = await connect(addresses).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    const u = err as UnavailableError;
    expect(u.attempts.map((x) => x.address).sort()).toEqual([...addresses].sort());
    for (const address of addresses) expect(u.message).toContain(address);
  });
});

describe("typed errors", () => {
  it("NOT_FOUND for an unknown queue and exchange", async () => {
    const err = await client.queueInfo("no-such-queue").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).details).toContain("no-such-queue");
    await expect(client.bind("no-such-exchange", "no-such-queue", "k")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("INVALID_ARGUMENT for a name over the limit", async () => {
    const err = await client.declareQueue("q".repeat(300)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).details.length).toBeGreaterThan(0);
  });

  it("PRECONDITION_FAILED when a queue is redeclared with other properties", async () => {
    await client.declareQueue("redeclared", { durable: true });
    await expect(client.declareQueue("redeclared", { durable: false })).rejects.toBeInstanceOf(PreconditionFailedError);
  });
});

describe("publish and consume", () => {
  it("declares, binds, lists, publishes with confirms and gets", async () => {
    await client.declareExchange("sdk-x", "topic");
    await client.declareQueue("sdk-q");
    await client.bind("sdk-x", "sdk-q", "a.*");
    expect((await client.listExchanges()).map((e) => e.name)).toContain("sdk-x");
    expect((await client.listBindings({ queue: "sdk-q" })).map((b) => `${b.exchange}/${b.routingKey}`)).toContain("sdk-x/a.*");
    const confirm = await client.publish("sdk-x", "a.b", "hello", { properties: { headers: { n: 7 } } });
    expect(confirm.routedQueues).toEqual(["sdk-q"]);
    expect((await client.queueInfo("sdk-q")).messagesReady).toBe(1);
    const got = await client.get("sdk-q");
    expect(got?.body.toString()).toBe("hello");
    expect(got?.properties.headers).toEqual({ n: 7 });
    expect(await client.get("sdk-q")).toBeNull();
  });

  it("turns NACKs into typed errors: unroutable with mandatory, and reject-publish", async () => {
    await client.declareExchange("sdk-empty", "direct");
    const noRoute = await client.publish("sdk-empty", "nowhere", "x", { mandatory: true }).catch((e: unknown) => e);
    expect(noRoute).toBeInstanceOf(PublishNackError);
    expect((noRoute as PublishNackError).kind).toBe("no-route");

    await client.declareQueue("sdk-full", { arguments: { maxLength: 1, overflow: "reject-publish" } });
    const p = client.createPublisher({ window: 4 });
    await p.publish("", "sdk-full", "first");
    const rejected = await p.publish("", "sdk-full", "second").catch((e: unknown) => e);
    expect(rejected).toBeInstanceOf(PublishNackError);
    expect((rejected as PublishNackError).kind).toBe("reject-publish");
    expect((rejected as PublishNackError).queue).toBe("sdk-full");
    await p.close();
  });

  it("cuts requests by body bytes as well as by count; a message over the limit travels alone", async () => {
    await client.declareQueue("sdk-batch-bytes");
    const p = client.createPublisher({ window: 100, maxBatch: 100, maxBatchBytes: 10_000 });
    const bodies = [...Array.from({ length: 30 }, () => "x".repeat(3000)), "y".repeat(20_000), ...Array.from({ length: 3 }, () => "z".repeat(3000))];
    // One burst, gathered in one turn of the event loop: only the byte limit splits it.
    await Promise.all(bodies.map((b) => p.publish("", "sdk-batch-bytes", b)));
    // 30 × 3000 B in requests of 3 (10 requests), the 20,000 B message alone, then 3 more.
    expect(p.stats().requests).toBe(12);
    expect((await client.queueInfo("sdk-batch-bytes")).messagesReady).toBe(bodies.length);
    await p.close();
  });

  it("never has more than `window` messages in flight, and makes publish wait for a slot", async () => {
    await client.declareQueue("sdk-window");
    const window = 8;
    const p = client.createPublisher({ window, maxBatch: 3 });
    let sampledMax = 0;
    let sawQueued = false;
    const sample = () => {
      const s = p.stats();
      sampledMax = Math.max(sampledMax, s.inFlight);
      if (s.queued > 0) sawQueued = true;
    };
    const timer = setInterval(sample, 1);
    const confirms = Array.from({ length: 300 }, (_, i) =>
      p.publish("", "sdk-window", String(i)).then((c) => {
        sample();
        return c;
      }),
    );
    sample();
    await Promise.all(confirms);
    clearInterval(timer);
    expect(sawQueued).toBe(true);
    expect(sampledMax).toBeLessThanOrEqual(window);
    expect(p.stats().maxInFlight).toBe(window);
    expect((await client.queueInfo("sdk-window")).messagesReady).toBe(300);

    // Past maxQueued waiting callers, publish fails fast instead of buffering.
    const tiny = client.createPublisher({ window: 1, maxQueued: 2 });
    const accepted = [tiny.publish("", "sdk-window", "a"), tiny.publish("", "sdk-window", "b"), tiny.publish("", "sdk-window", "c")];
    await expect(tiny.publish("", "sdk-window", "d")).rejects.toBeInstanceOf(ResourceExhaustedError);
    await Promise.all(accepted);
    await Promise.all([p.close(), tiny.close()]);
  });

  it("answers a repeated (producer id, sequence) with the original confirm and enqueues nothing", async () => {
    await client.declareQueue("sdk-idempotent");
    const first = client.createPublisher({ window: 32 });
    const original = await Promise.all(Array.from({ length: 100 }, (_, i) => first.publish("", "sdk-idempotent", String(i))));
    expect(original.every((c) => !c.duplicate)).toBe(true);
    await first.close();
    // A producer restarted with the same id repeats its sequences, as a retry after a crash would.
    const again = client.createPublisher({ window: 32, producerId: first.producerId, firstSequence: 1 });
    const repeated = await Promise.all(Array.from({ length: 100 }, (_, i) => again.publish("", "sdk-idempotent", String(i))));
    expect(repeated.map((c) => c.sequence)).toEqual(original.map((c) => c.sequence));
    expect(repeated.every((c) => c.duplicate && c.routedQueues.includes("sdk-idempotent"))).toBe(true);
    // New sequences of the same producer are enqueued.
    const fresh = await again.publish("", "sdk-idempotent", "100");
    expect(fresh.duplicate).toBe(false);
    expect((await client.queueInfo("sdk-idempotent")).messagesReady).toBe(101);
    await again.close();
  });

  it("rejects a retry older than the producer's dedup window as of unknown outcome: neither enqueued nor refused", async () => {
    await client.declareQueue("sdk-window-passed");
    const first = client.createPublisher();
    const dedupWindow = (await client.settings()).settings.dedupWindow ?? 0;
    expect(dedupWindow).toBeGreaterThan(0);
    const total = dedupWindow + 10;
    await Promise.all(Array.from({ length: total }, (_, i) => first.publish("", "sdk-window-passed", String(i))));
    await first.close();
    // Sequence 1 has fallen out of the window: the broker cannot tell whether it was enqueued.
    const again = client.createPublisher({ producerId: first.producerId, firstSequence: 1 });
    const err = await again.publish("", "sdk-window-passed", "0").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DedupWindowPassedError);
    expect(err).not.toBeInstanceOf(PublishNackError);
    expect((err as DedupWindowPassedError).sequence).toBe(1);
    expect((err as DedupWindowPassedError).message).toMatch(/outcome unknown to the broker: sequence 1 of producer .* is older than its dedup window/);
    expect((await client.queueInfo("sdk-window-passed")).messagesReady).toBe(total);
    await again.close();
  });

  it("consumes with prefetch and acks; settling after the stream ended is refused", async () => {
    const p = await queueWithMessages("sdk-consume", 50);
    const consumer = await client.consume("sdk-consume", { prefetch: 10 });
    const seen: number[] = [];
    let held: Delivery | undefined;
    for await (const d of consumer) {
      seen.push(Number(d.text()));
      if (seen.length === 50) {
        held = d;
        break;
      }
      d.ack();
    }
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(held).toBeDefined();
    expect(() => held?.ack()).toThrow(StaleDeliveryError);
    // The unacked one went back to the queue when the stream ended.
    const handled: string[] = [];
    const handledRun = await client.consumeWith("sdk-consume", (d) => {
      handled.push(`${d.text()}:${d.redelivered}`);
    });
    const until = Date.now() + 10_000;
    while (handled.length < 1 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    await handledRun.close();
    await handledRun.done;
    expect(handled).toEqual(["49:true"]);
    // Acks have no answer: the queue empties once the ack is committed.
    let info = await client.queueInfo("sdk-consume");
    for (let i = 0; i < 50 && info.messagesReady + info.messagesUnacked > 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      info = await client.queueInfo("sdk-consume");
    }
    expect(info.messagesReady + info.messagesUnacked, JSON.stringify([info, await client.get("sdk-consume")])).toBe(0);
    await p.close();
  });

  it("coalesces acks into multiple acks, never covering a delivery the application has not settled", async () => {
    const p = await queueWithMessages("sdk-coalesce", 200);
    const consumer = await client.consume("sdk-coalesce", { prefetch: 200 });
    let held: Delivery | undefined;
    let n = 0;
    for await (const d of consumer) {
      n++;
      // The 105th stays unsettled while everything after it is acked.
      if (n === 105) held = d;
      else d.ack();
      if (n === 200) break;
    }
    const stats = consumer.stats();
    expect(stats.settlements).toBe(199);
    // The first 104 in a handful of multiple acks; the 95 above the unsettled one each alone.
    expect(stats.settlementRequests).toBeLessThan(199);
    expect(stats.settlementRequests).toBeGreaterThanOrEqual(96);
    await eventually("199 acks applied", async () => (await client.queueInfo("sdk-coalesce")).messagesUnacked <= 1);
    const info = await client.queueInfo("sdk-coalesce");
    // Nothing covered the held delivery: it is still out, then back when the stream ends.
    expect(info.messagesUnacked + info.messagesReady).toBe(1);
    expect(held).toBeDefined();

    const one = await client.consume("sdk-coalesce", { prefetch: 10, ackDelayMs: null });
    for await (const d of one) {
      expect(d.text()).toBe("104");
      d.ack();
      break;
    }
    expect(one.stats()).toMatchObject({ settlements: 1, settlementRequests: 1 });
    await eventually("empty", async () => {
      const i = await client.queueInfo("sdk-coalesce");
      return i.messagesReady + i.messagesUnacked === 0;
    });
    await p.close();
  });

  it("sends held acks as soon as half the prefetch is held, without waiting out the delay", async () => {
    const p = await queueWithMessages("sdk-half", 8);
    const consumer = await client.consume("sdk-half", { prefetch: 8, ackDelayMs: 1000 });
    const iterator = consumer[Symbol.asyncIterator]();
    const requests: number[] = [];
    for (let i = 0; i < 4; i++) {
      const d = (await iterator.next()).value as Delivery;
      d.ack();
      requests.push(consumer.stats().settlementRequests);
    }
    // Three held; the fourth is half the prefetch: one multiple ack for all four, sent at once.
    expect(requests).toEqual([0, 0, 0, 1]);
    expect(consumer.stats().settlements).toBe(4);
    await consumer.close();
    await p.close();
  });

  it("subscribes to a backlog when its prefetch is larger than its buffer", async () => {
    const p = await queueWithMessages("sdk-backlog", 300);
    // The broker sends a prefetch's worth of deliveries ahead of the subscription's confirmation:
    // pausing the stream for them before it came would wait for the confirmation forever.
    const subscribing = client.consume("sdk-backlog", { prefetch: 500, maxBuffered: 50 });
    const consumer = await Promise.race([subscribing, new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the subscription was never confirmed")), 10_000))]);
    const seen: number[] = [];
    for await (const d of consumer) {
      seen.push(Number(d.text()));
      d.ack();
      if (seen.length === 300) break;
    }
    expect(seen).toEqual(Array.from({ length: 300 }, (_, i) => i));
    await p.close();
  });

  it("settles many deliveries with one multiple ack, and changes prefetch on a live consumer", async () => {
    const p = await queueWithMessages("sdk-multiple", 30);
    const consumer = await client.consume("sdk-multiple", { prefetch: 5 });
    const unacked = async () => (await client.queueInfo("sdk-multiple")).messagesUnacked;
    const iterator = consumer[Symbol.asyncIterator]();
    const take = async () => (await iterator.next()).value as Delivery;
    const first = await Promise.all(Array.from({ length: 5 }, take));
    expect(first.map((d) => d.text())).toEqual(["0", "1", "2", "3", "4"]);
    // The prefetch holds the rest back until something is settled.
    await eventually("5 unacked", async () => (await unacked()) === 5);
    expect(consumer.stats().buffered).toBe(0);
    first[4]?.ack({ multiple: true });
    expect(() => first[2]?.ack()).toThrow(PreconditionFailedError);
    const second = await Promise.all(Array.from({ length: 5 }, take));
    expect(second.map((d) => d.text())).toEqual(["5", "6", "7", "8", "9"]);
    // A larger prefetch lets more through at once, on the same stream.
    consumer.setPrefetch(15);
    const third = await Promise.all(Array.from({ length: 10 }, take));
    expect(third.map((d) => d.text())).toEqual(["10", "11", "12", "13", "14", "15", "16", "17", "18", "19"]);
    await eventually("15 unacked", async () => (await unacked()) === 15);
    // A multiple nack returns every earlier unsettled delivery, this one included, to its place
    // in the queue: 5 comes again, redelivered.
    third[9]?.nack({ multiple: true, requeue: true });
    expect(() => second[0]?.ack()).toThrow(PreconditionFailedError);
    const again = await take();
    expect([again.text(), again.redelivered]).toEqual(["5", true]);
    expect(() => consumer.setPrefetch(-1)).toThrow(RangeError);
    await consumer.close();
    await p.close();
  });

  it("consumes from an exclusive queue of its own, declared again after a leader change and deleted when it closes", async () => {
    const gone = async (queue: string) => client.queueInfo(queue).then(() => false, (err: unknown) => err instanceof NotFoundError);
    await client.declareExchange("sdk-events", "fanout");
    const consumer = await client.consumeExclusiveQueue({ bindings: [{ exchange: "sdk-events" }], prefetch: 10 });
    const first = consumer.queue;
    expect(first).toMatch(/^amq\.gen-/);
    expect(await client.queueInfo(first)).toMatchObject({ exclusive: true, durable: false });
    await expect(client.consume(first)).rejects.toThrow(PreconditionFailedError);
    const iterator = consumer[Symbol.asyncIterator]();
    await client.publish("sdk-events", "", "before");
    const d1 = (await iterator.next()).value as Delivery;
    expect([d1.text(), d1.queue]).toEqual(["before", first]);
    d1.ack();
    // A leader change ends the stream; the consumer declares and binds a new queue on the next.
    const before = await waitForReadyLeader(client);
    const moved = await client.transferLeadership();
    expect(moved).not.toBe(before);
    await waitForReadyLeader(client);
    await eventually(`a new exclusive queue (now ${consumer.queue}, ${JSON.stringify(consumer.stats())})`, async () => consumer.queue !== first);
    expect((await client.listBindings({ exchange: "sdk-events" })).map((b) => b.queue)).toContain(consumer.queue);
    expect(consumer.stats().resubscribes).toBeGreaterThan(0);
    await client.publish("sdk-events", "", "after");
    const d2 = (await iterator.next()).value as Delivery;
    expect([d2.text(), d2.queue]).toEqual(["after", consumer.queue]);
    d2.ack();
    // The old one went with its session.
    await eventually("the first queue deleted", () => gone(first));
    const second = consumer.queue;
    await consumer.close();
    await eventually("the second queue deleted", () => gone(second));
    await expect(client.consumeExclusiveQueue({ bindings: [{ exchange: "no-such-exchange" }] })).rejects.toThrow(NotFoundError);
  });

  it("keeps consuming across a leadership transfer without subscribing again; what it held comes again and cannot be settled", async () => {
    const publisher = await queueWithMessages("sdk-resume", 5);
    const consumer = await client.consume("sdk-resume", { prefetch: 5, ackDelayMs: null });
    const iterator = consumer[Symbol.asyncIterator]();
    const held: Delivery[] = [];
    for (let i = 0; i < 5; i++) held.push((await iterator.next()).value as Delivery);
    expect(held.map((d) => d.text())).toEqual(["0", "1", "2", "3", "4"]);
    const before = await waitForReadyLeader(client);
    expect(await client.transferLeadership()).not.toBe(before);
    await eventually("the stream resumed", async () => consumer.stats().resumes === 1);
    for (const d of held) expect(() => d.ack()).toThrow(StaleDeliveryError);
    await publisher.publish("", "sdk-resume", "5");
    const again: string[] = [];
    const tags: number[] = [];
    while (again.length < 6) {
      const d = (await iterator.next()).value as Delivery;
      again.push(`${d.text()}:${d.redelivered}`);
      tags.push(d.deliveryTag);
      d.ack();
    }
    expect(again.sort()).toEqual(["0:true", "1:true", "2:true", "3:true", "4:true", "5:false"]);
    // Tags kept rising across the sessions: none of the new session repeats an old one.
    expect(Math.min(...tags)).toBeGreaterThan(Math.max(...held.map((d) => d.deliveryTag)));
    expect(consumer.stats().resubscribes).toBe(0);
    await eventually("the queue drained", async () => {
      const q = await client.queueInfo("sdk-resume");
      return q.messagesReady === 0 && q.messagesUnacked === 0;
    });
    await consumer.close();
    await publisher.close();
  });

  it("runs the orders example", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "packages/client/examples/orders.ts"], {
      cwd: REPO_ROOT,
      env: { ...process.env, RAFTMQ_ADDRESSES: ids.map((id) => harness.clientAddress(id)).join(",") },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on("data", (c: Buffer) => {
      out += c.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(out).toContain("published 10 orders");
    for (let i = 1; i <= 10; i++) expect(out).toContain(`order ${i}: book`);
    expect(code).toBe(0);
  });
});

describe("failover", () => {
  it("publishes 10,000 with confirms through a SIGKILL and restart of the leader: nothing lost, nothing enqueued twice", async () => {
    const total = 10_000;
    const queue = "sdk-failover";
    await client.declareQueue(queue);
    const leader = await waitForReadyLeader(client);

    const deliveries = new Map<number, { first: number; redelivered: number }>();
    const consumer = await client.consume(queue, { prefetch: 500 });
    const consuming = (async () => {
      for await (const d of consumer) {
        const n = Number(d.text());
        const seen = deliveries.get(n) ?? { first: 0, redelivered: 0 };
        if (d.redelivered) seen.redelivered++;
        else seen.first++;
        deliveries.set(n, seen);
        try {
          d.ack();
        } catch (err) {
          if (!(err instanceof StaleDeliveryError)) throw err;
        }
      }
    })();

    const publisher = client.createPublisher({ window: 256 });
    let confirmed = 0;
    let killed = false;
    let restarted: Promise<unknown> = Promise.resolve();
    const confirms = Array.from({ length: total }, (_, i) =>
      publisher.publish("", queue, String(i)).then((c) => {
        confirmed++;
        if (!killed && confirmed >= 3000) {
          killed = true;
          restarted = harness.stop(leader, "SIGKILL").then(() => harness.start(leader, { members: ids }));
        }
        return c;
      }),
    );
    const results = await Promise.all(confirms);
    await restarted;
    expect(killed).toBe(true);
    expect(results.every((c) => c.routedQueues.includes(queue))).toBe(true);
    const stats = publisher.stats();
    expect(stats.streamFailures).toBeGreaterThan(0);
    // Messages in flight when the leader died were sent again with their original sequence.
    expect(stats.resent).toBeGreaterThan(0);
    const duplicates = results.filter((c) => c.duplicate).length;
    console.log(`failover: ${stats.streamFailures} broken streams, ${stats.resent} messages resent, ${duplicates} answered as duplicates`);

    const until = Date.now() + 60_000;
    while (deliveries.size < total && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    // Anything still unsettled must have drained too: the queue ends empty.
    let info = await client.queueInfo(queue);
    while ((info.messagesReady > 0 || info.messagesUnacked > 0) && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 200));
      info = await client.queueInfo(queue);
    }
    await consumer.close();
    await consuming;

    expect(deliveries.size).toBe(total);
    for (let i = 0; i < total; i++) {
      const seen = deliveries.get(i);
      expect(seen, `message ${i}`).toBeDefined();
      // A second copy enqueued would arrive as a first delivery again.
      expect(seen?.first ?? 0, `first deliveries of message ${i}`).toBeLessThanOrEqual(1);
    }
    expect(info.messagesReady).toBe(0);
    expect(info.messagesUnacked).toBe(0);
    expect(consumer.stats().resubscribes).toBeGreaterThan(0);
    const redelivered = [...deliveries.values()].filter((d) => d.redelivered > 0).length;
    console.log(`failover: consumer resubscribed ${consumer.stats().resubscribes} times, ${redelivered} messages redelivered`);
    await publisher.close();
  });
});
