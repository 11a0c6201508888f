// Broker.liveBodies: every body key a message in the state refers to, ascending, each once,
// whatever mix of queues, held deliveries, requeued messages and gets holds them.
import { describe, expect, it } from "vitest";
import { Driver } from "./broker-driver.ts";

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
    const keys = Array.from(live.keys);
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
});
