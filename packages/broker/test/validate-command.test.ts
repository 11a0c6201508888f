import { raftmq } from "@raftmq/proto";
import { describe, expect, it } from "vitest";
import { Broker, commandKind, defaultLimits, MAX_ACK_TAGS, validateCommand } from "../src/index.ts";

const limits = { ...defaultLimits, maxHeaders: 2 };

describe("validateCommand rejects bad input before it reaches the log", () => {
  const cases: [string, raftmq.v1.Command.$Properties][] = [
    ["no operation", {}],
    ["two operations", { tick: {}, cancel: { consumerId: "c" } }],
    ["exchange without a type", { declareExchange: { name: "e" } }],
    ["queue type other than quorum", { declareQueue: { name: "q", arguments: { queueType: "stream" } } }],
    ["negative ttl", { declareQueue: { name: "q", arguments: { messageTtlMs: -1 } } }],
    ["exclusive queue without owner", { declareQueue: { name: "q", exclusive: true } }],
    ["name over 255 bytes", { declareQueue: { name: "é".repeat(200) } }],
    ["too many headers", { publish: { properties: { headers: [{ key: "a" }, { key: "b" }, { key: "c" }] } } }],
    ["bad expiration", { publish: { properties: { expiration: "soon" } } }],
    ["bad x-match", { bind: { exchange: "e", queue: "q", arguments: [{ key: "x-match", value: { stringValue: "some" } }] } }],
    ["ack naming consumer and session", { ack: { consumerId: "c", sessionId: "s", deliveryTag: 1 } }],
    ["subscribe without session", { subscribe: { consumerId: "c", queue: "q" } }],
  ];
  for (const [what, cmd] of cases) {
    it(`rejects ${what}`, () => {
      expect(validateCommand(cmd, limits)).toMatchObject({ code: "INVALID_ARGUMENT" });
    });
  }

  it("names the one operation of a command, built in code or decoded, and none when two are set", () => {
    expect(commandKind({ tick: {}, cancel: undefined, ack: null })).toBe("tick");
    expect(commandKind(raftmq.v1.Command.decode(raftmq.v1.Command.encode({ ackTags: { consumerId: "c", deliveryTags: [1] } }).finish()))).toBe("ackTags");
    expect(commandKind({ tick: {}, cancel: { consumerId: "c" } })).toBeNull();
    expect(commandKind({})).toBeNull();
    // Two operations on the wire (two messages concatenated merge into one): the last one stands,
    // as proto3 merges a oneof, and every node decodes the entry alike.
    const two = new Uint8Array([...raftmq.v1.Command.encode({ tick: {} }).finish(), ...raftmq.v1.Command.encode({ cancel: { consumerId: "c" } }).finish()]);
    expect(commandKind(raftmq.v1.Command.decode(two))).toBe("cancel");
  });

  it("accepts well-formed commands, including decoded ones with default 64-bit fields", () => {
    const cmd = raftmq.v1.Command.decode(raftmq.v1.Command.encode({ publish: { routingKey: "q", body: new Uint8Array([1]) } }).finish());
    expect(validateCommand(cmd, limits)).toBeNull();
    expect(validateCommand({ ack: { consumerId: "c", deliveryTag: 3, multiple: true } }, limits)).toBeNull();
    expect(validateCommand({ ackTags: { consumerId: "c", deliveryTags: [1, 2] } }, limits)).toBeNull();
    expect(validateCommand({ ackTags: { consumerId: "c", deliveryTags: [] } }, limits)?.message).toBe("ack_tags needs at least one delivery tag");
    expect(validateCommand({ ackTags: { consumerId: "c", deliveryTags: [1, 0] } }, limits)?.message).toBe("ack_tags names delivery tag 0; tags start at 1");
    expect(validateCommand({ ackTags: { consumerId: "c", deliveryTags: Array.from({ length: MAX_ACK_TAGS + 1 }, (_, i) => i + 1) } }, limits)?.message).toMatch(/at most 4096/);
    expect(validateCommand({ ackTags: { consumerId: "", deliveryTags: [1] } }, limits)?.code).toBe("INVALID_ARGUMENT");
  });

  it("apply re-checks: an invalid command in an entry answers an error and changes nothing", () => {
    const b = new Broker();
    const data = raftmq.v1.CommandBatch.encode({ timestampMs: 5, commands: [{ declareQueue: { name: "q", arguments: { queueType: "classic" } } }, { tick: {} }] }).finish();
    const out = b.applyEntry(1, data);
    expect(out.results[0]).toMatchObject({ ok: false, error: { code: "INVALID_ARGUMENT" } });
    expect(out.results[1]).toEqual({ ok: true, kind: "tick" });
    expect(b.listQueues()).toEqual([]);
    expect(b.lastTimestamp()).toBe(5);
  });
});
