import type { BodyRef, Effect } from "@raftmq/broker";
import type { raftmq } from "@raftmq/proto";
import { describe, expect, it } from "vitest";
import { ConsumerSessions, MAX_BATCH_BODY_BYTES, MAX_BATCH_DELIVERIES } from "../src/consumer-sessions.ts";
import { toGrpcFailure } from "../src/grpc-status.ts";
import { NodeUnavailableError } from "../src/node-errors.ts";

function sink(batchedTags: string[] = []) {
  const written: raftmq.v1.ConsumeResponse.$Properties[] = [];
  const ended: (number | null)[] = [];
  const paused = { count: 0 };
  return {
    written,
    ended,
    paused,
    write: (r: raftmq.v1.ConsumeResponse.$Properties) => written.push(r),
    batched: (tag: string) => batchedTags.includes(tag),
    deliveryPaused: () => paused.count++,
    end: (f: { code: number } | null) => ended.push(f?.code ?? null),
  };
}

const consumerOf = (sessionId: string, consumerTag: string) => ({ id: `${sessionId}/${consumerTag}`, sessionId, consumerTag });

/** Bodies as a node's body store holds them, by key. */
const stored = new Map<number, Uint8Array>();
const stash = (bytes: Uint8Array): BodyRef => {
  const key = stored.size + 1;
  stored.set(key, bytes);
  return { bodyKey: key, bodySize: bytes.length };
};
const readBody = (ref: BodyRef): Uint8Array => stored.get(ref.bodyKey) ?? new Uint8Array(0);

const message = { exchange: "x", routingKey: "k", properties: {}, ...stash(new Uint8Array([1])) };

describe("consumer sessions", () => {
  it("routes each delivery to the stream whose session owns the consumer", () => {
    const sessions = new ConsumerSessions("1.boot", 10, readBody);
    const a = sink();
    const b = sink();
    const sa = sessions.open(a) as string;
    const sb = sessions.open(b) as string;
    expect(sa).not.toBe(sb);
    const effects: Effect[] = [
      { kind: "deliver", consumer: consumerOf(sb, "tag/with/slash"), deliveryTag: 7, queue: "q", message, redelivered: true, deliveryCount: 2 },
      { kind: "deliver", consumer: consumerOf(sa, "c1"), deliveryTag: 1, queue: "q", message, redelivered: false, deliveryCount: 1 },
      { kind: "deliver", consumer: consumerOf("gone-session", "c1"), deliveryTag: 1, queue: "q", message, redelivered: false, deliveryCount: 1 },
      { kind: "consumerCancelled", consumer: consumerOf(sa, "c1"), reason: "queueDeleted", queue: "orders.eu" },
      { kind: "deliveryPaused", consumer: consumerOf(sb, "tag/with/slash"), queue: "q" },
      { kind: "deliveryPaused", consumer: consumerOf("gone-session", "c1"), queue: "q" },
    ];
    sessions.route(effects);
    expect(b.written).toEqual([{ delivery: expect.objectContaining({ consumerTag: "tag/with/slash", deliveryTag: 7, redelivered: true, deliveryCount: 2 }) }]);
    expect(b.paused.count).toBe(1);
    expect(a.written).toEqual([
      { delivery: expect.objectContaining({ consumerTag: "c1", deliveryTag: 1 }) },
      { cancelled: { consumerTag: "c1", reason: 'queue "orders.eu" was deleted' } },
    ]);
    expect(a.paused.count).toBe(0);
    expect(sessions.delivered).toBe(2);
  });

  it("routes by the session and tag the effect names, whatever the consumer id looks like", () => {
    const sessions = new ConsumerSessions("1.boot", 10, readBody);
    const a = sink();
    const sa = sessions.open(a) as string;
    sessions.route([{ kind: "deliver", consumer: { id: "opaque", sessionId: sa, consumerTag: "t" }, deliveryTag: 1, queue: "q", message, redelivered: false, deliveryCount: 1 }]);
    expect(a.written).toEqual([{ delivery: expect.objectContaining({ consumerTag: "t" }) }]);
  });

  it("sends a run of deliveries to a consumer that takes batches as one message, in order, bounded in count and bytes", () => {
    const sessions = new ConsumerSessions("1.boot", 10, readBody);
    const a = sink(["batched"]);
    const sa = sessions.open(a) as string;
    const deliver = (tag: string, deliveryTag: number, body: BodyRef = message): Effect => ({ kind: "deliver", consumer: consumerOf(sa, tag), deliveryTag, queue: "q", message: { ...message, bodyKey: body.bodyKey, bodySize: body.bodySize }, redelivered: false, deliveryCount: 1 });
    const big = new Uint8Array(MAX_BATCH_BODY_BYTES);
    const effects: Effect[] = [
      deliver("batched", 1),
      deliver("batched", 2),
      deliver("single", 1),
      deliver("single", 2),
      deliver("batched", 3),
      { kind: "consumerCancelled", consumer: consumerOf(sa, "single"), reason: "queueDeleted", queue: "q" },
      ...Array.from({ length: MAX_BATCH_DELIVERIES + 1 }, (_, i) => deliver("batched", 4 + i)),
      deliver("batched", 1000, stash(big)),
      deliver("batched", 1001),
    ];
    sessions.route(effects);
    const shape = a.written.map((r) => {
      if (r.delivery) return `${r.delivery.consumerTag}:${r.delivery.deliveryTag}`;
      if (r.deliveries) return `${r.deliveries.deliveries?.[0]?.consumerTag}:[${r.deliveries.deliveries?.map((d) => d.deliveryTag).join(",")}]`;
      return `cancelled:${r.cancelled?.consumerTag}`;
    });
    const full = Array.from({ length: MAX_BATCH_DELIVERIES }, (_, i) => 4 + i).join(",");
    expect(shape).toEqual([
      "batched:[1,2]",
      "single:1",
      "single:2",
      "batched:3",
      "cancelled:single",
      `batched:[${full}]`,
      `batched:${4 + MAX_BATCH_DELIVERIES}`,
      "batched:1000",
      "batched:1001",
    ]);
    expect(sessions.delivered).toBe(effects.length - 1);
  });

  it("bounds the number of sessions and ends them all with one status", () => {
    const sessions = new ConsumerSessions("1.boot", 2, readBody);
    const a = sink();
    const b = sink();
    sessions.open(a);
    sessions.open(b);
    expect(sessions.open(sink())).toBeNull();
    const ids = sessions.endAll(toGrpcFailure(new NodeUnavailableError("moved")));
    expect(ids).toHaveLength(2);
    expect([...a.ended, ...b.ended]).toEqual([14, 14]);
    expect(sessions.size).toBe(0);
  });
});
