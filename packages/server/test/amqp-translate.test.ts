// AMQP headers through the broker's HeaderValue and back, across the protobuf encoding the log
// uses: every field type comes out with the tag and value it went in with.
import type { FieldTable, FieldValue } from "@raftmq/amqp";
import { raftmq } from "@raftmq/proto";
import { describe, expect, it } from "vitest";
import { fromHeaderValue, fromMessageProperties, queueArguments, tableToHeaders, toHeaderValue, toMessageProperties } from "../src/amqp/amqp-translate.ts";
import { AmqpError } from "../src/amqp/amqp-errors.ts";

/** Through protobuf bytes, as a header is stored in the log. */
function stored(v: raftmq.v1.HeaderValue.$Properties): raftmq.v1.HeaderValue {
  return raftmq.v1.HeaderValue.decode(raftmq.v1.HeaderValue.encode(v).finish());
}

const nested: FieldTable = Object.assign(Object.create(null), { a: { type: "I", value: 1 }, b: { type: "A", value: [{ type: "S", value: "x" }] } });

const VALUES: FieldValue[] = [
  { type: "t", value: true },
  { type: "b", value: -5 },
  { type: "B", value: 200 },
  { type: "s", value: -1234 },
  { type: "u", value: 65_000 },
  { type: "I", value: -70_000 },
  { type: "i", value: 4_000_000_000 },
  { type: "l", value: 2 ** 40 },
  { type: "l", value: 2n ** 62n + 1n },
  { type: "L", value: -(2 ** 33) },
  { type: "f", value: 1.5 },
  { type: "d", value: 2.25 },
  { type: "D", value: { scale: 2, value: 12_345 } },
  { type: "S", value: "text ✓" },
  { type: "x", value: Buffer.from([0, 1, 255]) },
  { type: "A", value: [{ type: "I", value: 1 }, { type: "V", value: null }] },
  { type: "T", value: 1_700_000_000 },
  { type: "F", value: nested },
  { type: "V", value: null },
];

describe("AMQP headers in the broker", () => {
  it.each(VALUES.map((v) => [v.type, v] as const))("keeps a %s value's tag and value through the log", (_tag, v) => {
    expect(fromHeaderValue(stored(toHeaderValue(v)))).toEqual(v);
  });

  it("shows gRPC consumers integers and floats as int_value and double_value", () => {
    expect(stored(toHeaderValue({ type: "I", value: 7 })).intValue).toBe(7);
    expect(stored(toHeaderValue({ type: "f", value: 0.5 })).doubleValue).toBe(0.5);
    expect(stored(toHeaderValue({ type: "S", value: "s" })).stringValue).toBe("s");
  });

  it("sends a gRPC publisher's int64 as an AMQP long, beyond 2^53 too", () => {
    expect(fromHeaderValue(stored({ intValue: 42 }))).toEqual({ type: "l", value: 42 });
    expect(fromHeaderValue({ intValue: 2 ** 60 })).toEqual({ type: "l", value: 2n ** 60n });
  });

  it("carries every property, and dead-letter records as x-death", () => {
    const props = {
      contentType: "a/b",
      contentEncoding: "gzip",
      headers: Object.assign(Object.create(null), { k: { type: "s", value: 3 } }) as FieldTable,
      deliveryMode: 2,
      priority: 4,
      correlationId: "c",
      replyTo: "r",
      expiration: "1000",
      messageId: "m",
      timestamp: 1_700_000_000,
      type: "t",
      userId: "u",
      appId: "a",
    };
    const m = raftmq.v1.MessageProperties.decode(raftmq.v1.MessageProperties.encode(toMessageProperties(props)).finish());
    expect(fromMessageProperties(m)).toEqual(props);
    const dead = fromMessageProperties({ deaths: [{ queue: "q", reason: "rejected", count: 2, exchange: "e", routingKeys: ["k"], timeMs: 5000 }] });
    const xDeath = dead.headers?.["x-death"];
    expect(xDeath?.type).toBe("A");
    expect(dead.headers?.["x-first-death-reason"]).toEqual({ type: "S", value: "rejected" });
  });

  it("reads queue arguments, refusing ones of the wrong type with 406", () => {
    const table = (o: Record<string, FieldValue>): FieldTable => Object.assign(Object.create(null), o);
    expect(queueArguments(table({ "x-message-ttl": { type: "I", value: 60_000 }, "x-overflow": { type: "S", value: "reject-publish" }, "x-queue-type": { type: "S", value: "classic" } }))).toEqual({
      messageTtlMs: 60_000,
      overflow: raftmq.v1.Overflow.OVERFLOW_REJECT_PUBLISH,
    });
    const bad = () => queueArguments(table({ "x-max-length": { type: "S", value: "ten" } }));
    expect(bad).toThrow(AmqpError);
    expect(() => queueArguments(table({ "x-overflow": { type: "S", value: "drop-tail" } }))).toThrow(/x-overflow/);
    expect(tableToHeaders(table({ "x-priority": { type: "I", value: 1 } }))).toEqual([{ key: "x-priority", value: { intValue: 1, amqpType: "I" } }]);
  });
});
