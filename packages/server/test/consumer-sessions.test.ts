import type { Effect } from "@raftmq/broker";
import type { raftmq } from "@raftmq/proto";
import { describe, expect, it } from "vitest";
import { ConsumerSessions } from "../src/consumer-sessions.ts";
import { toGrpcFailure } from "../src/grpc-status.ts";
import { NodeUnavailableError } from "../src/node-errors.ts";

function sink() {
  const written: raftmq.v1.ConsumeResponse.$Properties[] = [];
  const ended: (number | null)[] = [];
  return { written, ended, write: (r: raftmq.v1.ConsumeResponse.$Properties) => written.push(r), end: (f: { code: number } | null) => ended.push(f?.code ?? null) };
}

const message = { exchange: "x", routingKey: "k", properties: {}, body: new Uint8Array([1]) };

describe("consumer sessions", () => {
  it("routes each delivery to the stream whose session owns the consumer", () => {
    const sessions = new ConsumerSessions("1.boot", 10);
    const a = sink();
    const b = sink();
    const sa = sessions.open(a) as string;
    const sb = sessions.open(b) as string;
    expect(sa).not.toBe(sb);
    const effects: Effect[] = [
      { kind: "deliver", consumerId: `${sb}/tag/with/slash`, deliveryTag: 7, queue: "q", message, redelivered: true, deliveryCount: 2 },
      { kind: "deliver", consumerId: `${sa}/c1`, deliveryTag: 1, queue: "q", message, redelivered: false, deliveryCount: 1 },
      { kind: "deliver", consumerId: "gone-session/c1", deliveryTag: 1, queue: "q", message, redelivered: false, deliveryCount: 1 },
      { kind: "consumerCancelled", consumerId: `${sa}/c1`, reason: "queue deleted" },
    ];
    sessions.route(effects);
    expect(b.written).toEqual([{ delivery: expect.objectContaining({ consumerTag: "tag/with/slash", deliveryTag: 7, redelivered: true, deliveryCount: 2 }) }]);
    expect(a.written.map((w) => Object.keys(w)[0])).toEqual(["delivery", "cancelled"]);
    expect(sessions.delivered).toBe(2);
  });

  it("bounds the number of sessions and ends them all with one status", () => {
    const sessions = new ConsumerSessions("1.boot", 2);
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
