// Broker.liveBodies: every body key a message in the state refers to, ascending, each once,
// whatever mix of queues, held deliveries, requeued messages and gets holds them.
import { describe, expect, it } from "vitest";
import { liveBodyKeys } from "../src/index.ts";
import { Driver, deliveries } from "./broker-driver.ts";

describe("liveBodies", () => {
  it("lists the keys of every unsettled message, ascending and once, across queues, consumers, requeues and gets", () => {
    const d = new Driver();
    for (const q of ["q1", "q2", "q3"]) d.queue(q);
    d.exchange("fan", 2); // fanout: one body shared by the copies in q2 and q3
    d.bind("fan", "q2");
    d.bind("fan", "q3");
    // Keys are handed out in publish order, one per routed publish with a body.
    const keyOf: string[] = [];
    for (let i = 0; i < 3000; i++) {
      if (i % 5 === 4) {
        d.publish("fan", "", `f${i}`);
        keyOf.push("fan");
      } else {
        const q = ["q1", "q2", "q3"][i % 3] as string;
        d.publish("", q, `m${i}`);
        keyOf.push(q);
      }
    }
    // A consumer on q1 takes 100, acks the first 40 and requeues 10 of the rest.
    d.subscribe("c1", "q1", 100);
    for (let tag = 1; tag <= 40; tag++) d.ok({ ack: { consumerId: "c1", deliveryTag: tag } });
    for (let tag = 41; tag <= 50; tag++) d.ok({ nack: { consumerId: "c1", deliveryTag: tag, requeue: true } });
    // Gets from q2: some held by a session, some acked at once.
    for (let i = 0; i < 5; i++) d.ok({ get: { queue: "q2", sessionId: "s1" } });
    for (let i = 0; i < 5; i++) d.ok({ get: { queue: "q2", noAck: true } });
    const live = d.broker.liveBodies();
    const keys = [...liveBodyKeys(live)];
    expect(keys).toEqual([...keys].sort((a, b) => a - b));
    expect(new Set(keys).size).toBe(keys.length);
    expect(live.frontier).toBe(keyOf.length + 1);
    // Settled: the 40 acked from q1, and those of the 5 got from q2 without ack that went to q2
    // alone (a fanout body is still referred to by its copy in q3).
    const q1Keys = keyOf.map((q, i) => (q === "q1" ? i + 1 : 0)).filter((k) => k > 0);
    const q2Order = keyOf.map((q, i) => (q === "q2" || q === "fan" ? i + 1 : 0)).filter((k) => k > 0);
    const gotWithoutAck = q2Order.slice(5, 10).filter((k) => keyOf[k - 1] === "q2");
    const settled = new Set([...q1Keys.slice(0, 40), ...gotWithoutAck]);
    const expected = keyOf.map((_, i) => i + 1).filter((k) => !settled.has(k));
    expect(keys).toEqual(expected);
  });

  it("lists a queue of messages published one after another as one range, whatever its depth", () => {
    const d = new Driver();
    d.queue("deep");
    d.queue("other");
    const n = 50_000;
    for (let i = 0; i < n; i++) d.publish("", "deep", "x".repeat(20));
    let live = d.broker.liveBodies();
    expect(Array.from(live.ranges)).toEqual([1, n + 1]);
    expect(live.count).toBe(n);
    // Another queue's messages interleave; a consumer holds the head; a message is put back.
    for (let i = 0; i < 10; i++) {
      d.publish("", "other", "o");
      d.publish("", "deep", "x".repeat(20));
    }
    const taken = deliveries(d.subscribe("c", "deep", 100).effects);
    for (const t of taken.slice(0, 60)) d.ok({ ack: { consumerId: "c", deliveryTag: t.deliveryTag } });
    d.ok({ nack: { consumerId: "c", deliveryTag: (taken[70] as (typeof taken)[number]).deliveryTag, requeue: true } });
    live = d.broker.liveBodies();
    // Keys 1-60 acked; 61 up to the last key held, in one range with the other queue's.
    expect(Array.from(live.ranges)).toEqual([61, n + 21]);
    expect(live.count).toBe(n + 20 - 60);
    // Acking the other queue's messages away splits what follows into single keys.
    d.subscribe("c2", "other", 0, { noAck: true });
    live = d.broker.liveBodies();
    const expected: number[] = [];
    for (let k = 61; k <= n; k++) expected.push(k);
    for (let i = 0; i < 10; i++) expected.push(n + 2 + 2 * i);
    expect([...liveBodyKeys(live)]).toEqual(expected);
    expect(live.ranges.length / 2).toBe(11);
  });
});
